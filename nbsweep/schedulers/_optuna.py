"""The Optuna scheduler: an Optuna sampler suggests runs, an Optuna pruner stops them.

What W&B's Optuna scheduler job (``wandb/sweep-jobs/job-optuna-sweep-scheduler``) does, in the
kernel: each run is an Optuna trial; every valid value of ``metric.name`` a run logs is
reported as the trial's next step (0, 1, 2, ...); when the pruner says so, the controller stops
the run exactly as it stops a run hyperband rejects. A finished run completes its trial with
its summary value of the metric, a stopped one is pruned, a failed one fails.

The study lives in memory and is rebuilt from the store: runs this scheduler did not suggest
(a resumed sweep, a requeued run) become trials with their own parameters.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from nbsweep._errors import ConfigError, SweepError
from nbsweep._runs import RunRecord, is_valid_metric
from nbsweep._runs import valid_metric_values as valid_values
from nbsweep._states import RUN_ENDED, RunState
from nbsweep.config import SweepConfig
from nbsweep.schedulers._base import Scheduler
from nbsweep.space import CATEGORICAL, CATEGORICAL_PROB, INT_UNIFORM, Parameter
from nbsweep.store import as_stored

DEFAULTS = {"sampler": "TPESampler", "pruner": "MedianPruner"}
# W&B distributions Optuna has natively; every other one is searched on its quantile in
# [0, 1] (the same unit cube bayes uses), which keeps its shape exactly.
NATIVE = {"uniform": False, "log_uniform_values": True}


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SweepError(
            "the Optuna scheduler needs Optuna: pip install 'nbsweep[optuna]'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _build(module: Any, base: type, key: str, spec: Mapping[str, Any] | None, seed: Any) -> Any:
    """An Optuna sampler or pruner from ``{type: ClassName, args: {...}}``.

    An argument that is itself ``{type, args}`` is built the same way (``PatientPruner``'s
    ``wrapped_pruner``, ``PartialFixedSampler``'s ``base_sampler``).
    """
    path = f"scheduler.settings.{key}"
    spec = spec or {"type": DEFAULTS[key]}
    name = spec["type"]
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, base) and cls is not base):
        known = [n for n in dir(module) if isinstance(getattr(module, n), type)]
        known = [
            n for n in known if issubclass(getattr(module, n), base) and not n.startswith("Base")
        ]
        match = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {match[0]!r}?" if match else f" (one of: {', '.join(known)})"
        raise ConfigError(f"{path}.type: Optuna has no {key} {name!r}{hint}")
    args = {
        arg: _build(module, base, key, value, seed)
        if isinstance(value, Mapping) and "type" in value
        else value
        for arg, value in (spec.get("args") or {}).items()
    }
    if seed is not None and "seed" in inspect.signature(cls).parameters:
        args.setdefault("seed", seed)
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}.args: {name}({_show(args)}) refused them: {exc}") from None


def _show(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


class OptunaScheduler(Scheduler):
    """Optuna's ``settings.sampler`` (TPESampler by default) and ``settings.pruner``
    (MedianPruner by default), any class by name with its constructor ``args``."""

    reads_histories = True
    queue_ahead = False
    in_agents = False  # the study lives in the controller's process: only it asks

    def __init__(self, config: SweepConfig, seed: int | None = None) -> None:
        super().__init__(config, seed)
        optuna = import_optuna()
        metric = config.metric
        if metric is None:
            raise ConfigError("metric: the Optuna scheduler learns and prunes on metric.name")
        self.metric = metric.name
        settings = config.scheduler.settings
        sampler = _build(
            optuna.samplers,
            optuna.samplers.BaseSampler,
            "sampler",
            settings.get("sampler"),
            self.seed,
        )
        pruner = _build(
            optuna.pruners, optuna.pruners.BasePruner, "pruner", settings.get("pruner"), None
        )
        self.pruner = type(pruner).__name__
        self.study = optuna.create_study(
            direction=metric.goal,
            sampler=sampler,
            pruner=pruner,
        )
        self._state = optuna.trial.TrialState
        self.space = config.space
        self.distributions = {p.name: _distribution(optuna, p) for p in self.space.searchable}
        self._trials: dict[str, Any] = {}  # run id -> its trial
        self._asked: list[tuple[Any, dict[str, Any]]] = []  # (trial, config) not yet a run
        self._reported: dict[str, int] = {}  # run id -> steps reported
        self._judged: dict[str, int] = {}  # run id -> steps when should_prune last asked
        self._over: set[str] = set()  # runs whose trial is told (or that cannot be one)

    def suggest(self, runs: Sequence[RunRecord], n: int) -> list[dict[str, Any]]:
        self._sync(runs)
        # Suggestions the controller could not queue (the sweep paused meanwhile) go first.
        configs = [config for _, config in self._asked[:n]]
        while len(configs) < n:
            trial = self.study.ask(self.distributions)
            config = as_stored(self._config(trial.params))  # to know it again as a run's
            self._asked.append((trial, config))
            configs.append(config)
        return configs

    def on_result(self, run: RunRecord, runs: Sequence[RunRecord]) -> str | None:
        self._sync(runs)
        return self._judge(run)

    def stop(self, runs: Sequence[RunRecord]) -> dict[str, str]:
        self._sync(runs)
        decided = {run.id: self._judge(run) for run in runs}
        return {run_id: why for run_id, why in decided.items() if why is not None}

    def _judge(self, run: RunRecord) -> str | None:
        """The pruner's verdict on a running run, once per step it reported."""
        steps = self._reported.get(run.id, 0)
        if run.state != RunState.RUNNING or run.id in self._over or not steps:
            return None
        if self._judged.get(run.id) == steps:
            return None
        self._judged[run.id] = steps
        if not self._trials[run.id].should_prune():
            return None
        value = valid_values(run.metric_history)[-1]
        return f"optuna {self.pruner}: pruned at step {steps - 1} ({self.metric}={value:g})"

    # -- the study follows the runs ---------------------------------------------------------

    def _sync(self, runs: Sequence[RunRecord]) -> None:
        """Report new metric values; tell Optuna how ended runs ended."""
        for run in runs:
            if run.id in self._over:
                continue
            trial = self._trials.get(run.id) or self._bind(run)
            if trial is None:
                continue
            values = valid_values(run.metric_history)
            for step in range(self._reported.get(run.id, 0), len(values)):
                trial.report(values[step], step)
            self._reported[run.id] = len(values)
            if run.state in RUN_ENDED:
                self._tell(run, trial, values)

    def _bind(self, run: RunRecord) -> Any:
        """The trial of a run: the suggestion it came from, or a new trial with its config."""
        for i, (trial, asked) in enumerate(self._asked):
            if asked == run.config:
                del self._asked[i]
                self._trials[run.id] = trial
                return trial
        try:
            params = self._params(run.config)
        except (KeyError, ValueError):
            self._over.add(run.id)  # outside this search space (an edited or foreign run)
            return None
        self.study.enqueue_trial(params, skip_if_exists=False)
        trial = self._trials[run.id] = self.study.ask(self.distributions)
        return trial

    def _tell(self, run: RunRecord, trial: Any, values: list[float]) -> None:
        self._over.add(run.id)
        value = run.summary_metric if is_valid_metric(run.summary_metric) else None
        if value is None and values:
            value = values[-1]
        if run.state == RunState.STOPPED:
            self.study.tell(trial, state=self._state.PRUNED)
        elif run.state == RunState.FINISHED and value is not None:
            self.study.tell(trial, float(value))
        else:
            self.study.tell(trial, state=self._state.FAIL)

    # -- W&B parameters <-> Optuna parameters -----------------------------------------------

    def _config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.space.nest({p.path: _value(p, params[p.name]) for p in self.space.searchable})

    def _params(self, config: Mapping[str, Any]) -> dict[str, Any]:
        flat = self.space.flatten(config)
        return {p.name: _param(p, flat[p.path]) for p in self.space.searchable}


def _distribution(optuna: Any, p: Parameter) -> Any:
    d = optuna.distributions
    if p.distribution in (CATEGORICAL, CATEGORICAL_PROB):
        return d.CategoricalDistribution(list(range(len(p.spec["values"]))))
    if p.distribution == INT_UNIFORM:
        return d.IntDistribution(p.spec["min"], p.spec["max"])
    if p.distribution in NATIVE:
        return d.FloatDistribution(p.spec["min"], p.spec["max"], log=NATIVE[p.distribution])
    return d.FloatDistribution(0.0, 1.0)


def _value(p: Parameter, x: Any) -> Any:
    """The run-config value of Optuna's parameter value ``x``."""
    if p.is_categorical:
        return p.spec["values"][x]
    if p.distribution == INT_UNIFORM:
        return int(x)
    if p.distribution in NATIVE:
        return float(x)
    return p.ppf(x)


def _param(p: Parameter, value: Any) -> Any:
    """Optuna's parameter value for a run-config value (ValueError when outside the space)."""
    if p.is_categorical:
        return p.index_of(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{p.key_path}: {value!r} is not a number")
    if p.distribution in NATIVE or p.distribution == INT_UNIFORM:
        if not p.spec["min"] <= value <= p.spec["max"]:
            raise ValueError(f"{p.key_path}: {value!r} is outside [min, max]")
        return value
    return p.cdf(value)
