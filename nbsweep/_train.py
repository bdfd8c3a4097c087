"""The training side of the API: ``@nbsweep.train``, ``nbsweep.log`` and the current run.

``log`` writes each row to the store before it returns (nothing logged is lost) and raises
``RunStopped`` when the run must stop. When a row makes the run reach a hyperband band, the
stopping rule is evaluated right there, from the store, in the same transaction: a run that
must stop at a band never logs a row past it.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from nbsweep._errors import RunStopped, SweepError, SweepNotFoundError
from nbsweep._runs import RunRecord, is_valid_metric
from nbsweep._states import RunState
from nbsweep.schedulers import Scheduler, agent_scheduler
from nbsweep.store import Store, logged_row, logged_step, open_store

F = TypeVar("F", bound=Callable[..., Any])

_last_train: Callable[..., Any] | None = None
_current: RunContext | None = None
_finding = threading.Lock()


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
        scheduler: Scheduler | None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """``scheduler``: asked inside the log transaction when a row reaches one of its
        checkpoints (``agent_scheduler``); ``config``: the run's, for it."""
        self.store = store
        self.sweep_id = sweep_id
        self.run_id = run_id
        self.metric = metric
        self.scheduler = scheduler
        self.config = config or {}
        self.checkpoints = frozenset(scheduler.checkpoints) if scheduler is not None else ()
        self.summary: dict[str, Any] = {}
        self.values: list[float] = []  # the valid metric values so far (the iterations)
        self.steps = 0
        self.started = time.time()
        self._step = -1
        self._row: int | None = None
        self._row_data: dict[str, Any] = {}
        self._row_has_metric = False
        self._lock = threading.Lock()

    def log(self, data: Mapping[str, Any], step: int | None) -> None:
        if not isinstance(data, Mapping):
            raise TypeError(f"nbsweep.log() takes a dict of values, not {type(data).__name__}")
        data = logged_row(data)  # checked at the call; plain values from here on
        if step is not None:
            step = logged_step(step)
        # Threads of one run log in turn: each reads the step and counts the previous one set.
        with self._lock:
            self._log(data, step)

    def _log(self, data: dict[str, Any], step: int | None) -> None:
        if step is None:
            step = self._step + 1
        elif step < self._step:
            warnings.warn(
                f"nbsweep.log: step {step} is before the run's current step {self._step};"
                " the row is dropped (as W&B does)",
                stacklevel=4,  # the caller of nbsweep.log
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
        if new_iteration and iteration in self.checkpoints:
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
        """The scheduler's verdict on this run at the checkpoint it just reached."""
        scheduler = self.scheduler
        assert scheduler is not None
        run = RunRecord(self.run_id, self.config, RunState.RUNNING, tuple(values))

        def rule(others: dict[str, list[float]]) -> str | None:
            # Histories cut at the checkpoint are all a decision there depends on; the others
            # are finished runs to it, so that only this run is judged.
            records = [
                RunRecord(id=other, config={}, state=RunState.FINISHED, metric_history=history)
                for other, history in others.items()
            ]
            return scheduler.on_result(run, records)

        return rule


def current_run() -> RunContext | None:
    """The run this process is executing, or None outside a run."""
    return _current


def set_current_run(context: RunContext | None) -> None:
    global _current
    _current = context


def run_from_env(environ: Mapping[str, str] | None = None) -> RunContext | None:
    """The run a program started by an agent is executing, from ``NBSWEEP_*`` variables.

    Returns a ``RunContext`` for ``nbsweep.log`` in the program, or None outside a script
    sweep.
    """
    env = os.environ if environ is None else environ
    names = ("NBSWEEP_STORE", "NBSWEEP_SWEEP_ID", "NBSWEEP_RUN_ID")
    if not all(env.get(name) for name in names):
        return None
    store_url, sweep_id, run_id = (env[name] for name in names)
    store = open_store(store_url, create=False)  # stale variables must not make a store
    sweep = store.sweep(sweep_id)
    if sweep is None:
        raise SweepNotFoundError(
            f"NBSWEEP_SWEEP_ID={sweep_id} is not in store {store.where}; this program was not "
            "started by an agent of that sweep (unset NBSWEEP_* to run it on its own)"
        )
    config = sweep.config
    scheduler = agent_scheduler(config, sweep.seed)
    run = store.run(run_id) if scheduler is not None else None
    return RunContext(
        store, sweep_id, run_id, config.metric_name, scheduler, run.config if run else None
    )


def log(data: Mapping[str, Any], step: int | None = None) -> None:
    """Log a history row for the current run (W&B's ``wandb.log``); durable on return.

    ``step`` defaults to one more than the last row's; a row with the last step again is
    merged into that row. Raises ``nbsweep.RunStopped`` when the run must stop: let it
    propagate (it is a ``BaseException``, so ``except Exception`` does not catch it).
    """
    if _current is None:
        with _finding:  # threads of a program find one run, not one each
            if _current is None:
                # A program of a ``program:`` sweep finds its run in the NBSWEEP_* variables.
                set_current_run(run_from_env())
    if _current is None:
        raise SweepError(
            "nbsweep.log() was called outside a sweep run: call it from the train function"
            " that nbsweep.sweep() or nbsweep.agent() runs"
        )
    _current.log(data, step)
