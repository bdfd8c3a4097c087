"""The training side of the API: ``@nbsweep.train``, ``nbsweep.log`` and the current run.

``log`` writes each row to the store before it returns (nothing logged is lost) and raises
``RunStopped`` when the run must stop. When a row makes the run reach a hyperband band, the
stopping rule is evaluated right there, from the store, in the same transaction: a run that
must stop at a band never logs a row past it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from nbsweep._errors import RunStopped, SweepError
from nbsweep._runs import RUNNING, RunRecord, is_valid_metric
from nbsweep.stopping import Stopper
from nbsweep.store import Store

F = TypeVar("F", bound=Callable[..., Any])

_last_train: Callable[..., Any] | None = None
_current: RunContext | None = None


def train(fn: F) -> F:
    """Mark ``fn`` as a sweep's train function (bare decorator); ``%%sweep`` finds the last one."""
    global _last_train
    fn.__nbsweep_train__ = True  # type: ignore[attr-defined]
    _last_train = fn
    return fn


def last_train_function() -> Callable[..., Any] | None:
    """The function most recently decorated with ``@nbsweep.train`` in this process."""
    return _last_train


class Config(dict):  # type: ignore[type-arg]
    """A run's config: a dict that also reads as attributes (``config.lr``), nested too."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        for key, value in (data or {}).items():
            self[key] = Config(value) if isinstance(value, Mapping) else value

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"the run config has no parameter {name!r} (it has {', '.join(self) or 'none'})"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class RunContext:
    """What ``log`` needs to know about the run this process is executing."""

    def __init__(
        self,
        store: Store,
        sweep_id: str,
        run_id: str,
        metric: str | None,
        stopper: Stopper | None,
    ) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self.run_id = run_id
        self.metric = metric
        self.stopper = stopper
        self.bands = frozenset(getattr(stopper, "bands", ()) or ())
        self.summary: dict[str, Any] = {}
        self.values: list[float] = []  # the valid metric values so far (the iterations)
        self.steps = 0
        self.started = time.time()
        self._step = -1
        self._row: int | None = None
        self._row_data: dict[str, Any] = {}
        self._row_has_metric = False

    def log(self, data: Mapping[str, Any], step: int | None) -> None:
        if not isinstance(data, Mapping):
            raise TypeError(f"nbsweep.log() takes a dict of values, not {type(data).__name__}")
        if step is None:
            step = self._step + 1
        elif step < self._step:
            warnings.warn(
                f"nbsweep.log: step {step} is before the run's current step {self._step};"
                " the row is dropped (as W&B does)",
                stacklevel=3,
            )
            return
        merge = step == self._step and self._row is not None
        row = {**self._row_data, **data} if merge else dict(data)
        value = data.get(self.metric) if self.metric is not None else None
        values = list(self.values)
        metric = None
        iteration = None
        if is_valid_metric(value):
            metric = float(value)  # type: ignore[arg-type]
            if merge and self._row_has_metric:
                values[-1] = metric
            else:
                values.append(metric)
            iteration = len(values)
        elif merge and self._row_has_metric:
            metric, iteration = values[-1], len(values)
        judge = None
        new_iteration = iteration is not None and iteration > len(self.values)
        if new_iteration and iteration in self.bands and self.stopper is not None:
            judge = (iteration, self._judge(values))
        summary = {**self.summary, **data, "_step": step}
        steps = self.steps if merge else self.steps + 1
        row_id, reason = self.store.log_row(
            self.sweep_id,
            self.run_id,
            step=step,
            data=row,
            metric=metric,
            metric_iter=iteration,
            steps=steps,
            summary=summary,
            replace_row=self._row if merge else None,
            judge=judge,
        )
        if row_id is None:
            state = self.store.run_state(self.run_id)
            raise RunStopped(f"run {self.run_id} is {state}: it must stop")
        self._step, self._row, self._row_data = step, row_id, row
        self._row_has_metric = iteration is not None
        self.values, self.summary, self.steps = values, summary, steps
        if reason is not None:
            raise RunStopped(reason)

    def _judge(self, values: list[float]) -> Callable[[dict[str, list[float]]], str | None]:
        """The stopping rule for this run at the band it just reached, given the others."""
        stopper = self.stopper
        assert stopper is not None
        run_id = self.run_id
        band = len(values)

        def rule(others: dict[str, list[float]]) -> str | None:
            # Histories cut at the band are all a band's threshold depends on; the others are
            # marked finished so that only this run is judged.
            records = [
                RunRecord(id=other, config={}, state="finished", metric_history=history)
                for other, history in others.items()
            ]
            records.append(RunRecord(id=run_id, config={}, state=RUNNING, metric_history=values))
            decision = stopper.decide(records)
            if run_id not in decision.stop:
                return None
            threshold = next((b.threshold for b in decision.bands if b.iteration == band), None)
            return (
                f"early_terminate: stopped at band {band} ({self.metric}={values[band - 1]:g},"
                f" threshold {threshold:g})"
            )

        return rule


def current_run() -> RunContext | None:
    """The run this process is executing, or None outside a run."""
    return _current


def set_current_run(context: RunContext | None) -> None:
    global _current
    _current = context


def log(data: Mapping[str, Any], step: int | None = None) -> None:
    """Log a history row for the current run (W&B's ``wandb.log``); durable on return.

    ``step`` defaults to one more than the last row's; a row with the last step again is
    merged into that row. Raises ``nbsweep.RunStopped`` when the run must stop: let it
    propagate (it is a ``BaseException``, so ``except Exception`` does not catch it).
    """
    if _current is None:
        from nbsweep._command import run_from_env

        # A program of a ``program:`` sweep finds its run in the NBSWEEP_* variables.
        set_current_run(run_from_env())
    if _current is None:
        raise SweepError(
            "nbsweep.log() was called outside a sweep run: call it from the train function"
            " that nbsweep.sweep() or nbsweep.agent() runs"
        )
    _current.log(data, step)
