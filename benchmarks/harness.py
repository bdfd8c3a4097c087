"""Drive any search method, nbsweep's in-process or a peer's over JSON lines, on a task.

Every method is used the way its users would use it: ask for a config, the harness evaluates
the objective (cached, so all methods see the same numbers), tell the result. With several
agents the harness keeps that many trials in flight, so each suggestion is made while the
other agents' runs are still pending.

On a conditional space (``when``, docs/config.md) every config is evaluated with only its
active parameters: nbsweep leaves the inactive ones out itself; a peer that takes ``when``
(Optuna, define-by-run) does too; any other peer gets the flat space, samples every
parameter, and the harness drops the inactive ones before evaluating.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.peers import METHOD_ENV, Peer
from benchmarks.tasks import Task

NBSWEEP_METHODS = ("nbsweep-random", "nbsweep-grid", "nbsweep-bayes")
PEER_METHODS = ("wandb-bayes", "optuna-tpe", "optuna-gp", "hyperopt-tpe")
SEARCH_METHODS = NBSWEEP_METHODS + PEER_METHODS
# Peers whose server is given ``when`` and may build the space define-by-run; the others get
# the flat space (W&B's ``sweeps`` refuses the key). The server's ``init`` answer says what
# it did (``"conditions": "define-by-run"``), and the trace records it.
TAKES_WHEN = ("optuna-tpe", "optuna-gp")
NATIVE = "native (`when`)"
DEFINE_BY_RUN = "define-by-run: suggests a parameter only when its condition holds"
FLAT = "flat: samples every parameter; the harness drops the inactive ones"


@dataclass
class Trace:
    """One search: objective values in completion order and each suggestion's seconds."""

    task: str
    method: str
    seed: int
    agents: int
    values: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    space: str = ""  # how the method took a conditional space ("" for any other)

    def best_after(self, budget: int) -> float:
        """The best value among the first ``budget`` completed trials."""
        return min(self.values[:budget]) if self.values else math.inf

    def running_best(self) -> list[float]:
        return list(np.minimum.accumulate(self.values)) if self.values else []


class Session(ABC):
    """One live search: ask for configs, tell results, or add results it did not ask for."""

    space = NATIVE  # how it takes a conditional space

    @abstractmethod
    def ask(self, n: int) -> tuple[list[tuple[Any, dict[str, Any]]], float]:
        """Up to ``n`` (trial id, config) pairs and the seconds the suggestion took."""

    @abstractmethod
    def tell(self, trial_id: Any, value: float) -> None: ...

    @abstractmethod
    def add(self, config: Mapping[str, Any], value: float) -> None: ...

    def close(self) -> None:  # noqa: B027 - only peer sessions hold something to release
        """Release what the session holds (a peer process)."""


def is_conditional(parameters: Mapping[str, Any]) -> bool:
    return any("when" in spec for spec in parameters.values())


def flat_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The space without its conditions: what a peer that cannot express them is given."""
    return {
        name: {k: v for k, v in spec.items() if k != "when"} for name, spec in parameters.items()
    }


class Activity:
    """Which parameters a config's own values switch on, as nbsweep reads ``when``."""

    def __init__(self, parameters: Mapping[str, Any]) -> None:
        import nbsweep

        self.space = nbsweep.validate({"method": "random", "parameters": dict(parameters)}).space

    def active(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` without its inactive parameters."""
        return self.space.nest(self.space.flatten(config))


def grid_parameters(parameters: Mapping[str, Any], budget: int) -> dict[str, Any]:
    """A W&B grid over a continuous space: ``k`` cell centres per numeric axis, within budget.

    Grid search only takes discrete values, so each numeric parameter becomes ``values`` at the
    centres of ``k`` equal cells (in log space for log-scale ones), with ``k`` the largest that
    keeps the whole grid within ``budget`` trials (at least 2). A parameter's ``when`` is kept,
    and a conditional grid is sized by its valid combinations (nbsweep counts them).
    """
    categorical = 1
    numeric = []
    for name, spec in parameters.items():
        if spec["distribution"] == "categorical":
            categorical *= len(spec["values"])
        else:
            numeric.append(name)
    k = max(2, int((budget / categorical) ** (1 / max(1, len(numeric))) + 1e-9))
    if not is_conditional(parameters):
        return _grid(parameters, k)
    while numeric and Activity(_grid(parameters, k + 1)).space.grid_size() <= budget:
        k += 1
    return _grid(parameters, k)


# nbsweep refuses a grid of more points than this (docs/config.md, Limits).
GRID_LIMIT = 1_000_000


def _grid(parameters: Mapping[str, Any], k: int) -> dict[str, Any]:
    """``k`` cell centres per numeric axis; where that grid would pass nbsweep's limit (2
    points on each of 20 axes), the last axes keep only their middle point."""
    size = math.prod(
        len(spec["values"]) if spec["distribution"] == "categorical" else k
        for spec in parameters.values()
    )
    grid: dict[str, Any] = {}
    for name, spec in reversed(list(parameters.items())):
        kind = spec["distribution"]
        if kind == "categorical":
            grid[name] = dict(spec)
            continue
        axis = k
        if size > GRID_LIMIT:
            size //= k
            axis = 1
        centres = (np.arange(axis) + 0.5) / axis
        lo, hi = spec["min"], spec["max"]
        if kind == "log_uniform_values":
            points = [
                float(math.exp(math.log(lo) + c * (math.log(hi) - math.log(lo)))) for c in centres
            ]
        elif kind == "int_uniform":
            points = sorted({int(round(lo - 0.5 + c * (hi - lo + 1))) for c in centres})
        else:
            points = [float(lo + c * (hi - lo)) for c in centres]
        grid[name] = {"distribution": "categorical", "values": points}
        if "when" in spec:
            grid[name]["when"] = spec["when"]
    return {name: grid[name] for name in parameters}


class NbsweepSession(Session):
    """nbsweep's searcher, in process, on plain run records (what its controller passes)."""

    def __init__(self, task: Task, method: str, seed: int, budget: int) -> None:
        import nbsweep
        from nbsweep.search import make_searcher

        kind = method.split("-", 1)[1]
        config = task.sweep_config(kind, seed=seed)
        if kind == "grid":
            config["parameters"] = grid_parameters(task.parameters, budget)
        self.config = nbsweep.validate(config)
        self.searcher = make_searcher(self.config, seed)
        self.runs: dict[str, Any] = {}

    def _record(self, run_id: str, config: Mapping[str, Any], value: float | None) -> Any:
        from nbsweep._runs import RunRecord
        from nbsweep._states import RunState

        if value is None:
            return RunRecord(id=run_id, config=dict(config), state=RunState.PENDING)
        return RunRecord(
            id=run_id,
            config=dict(config),
            state=RunState.FINISHED,
            metric_history=(value,),
            summary_metric=value,
        )

    def ask(self, n: int) -> tuple[list[tuple[Any, dict[str, Any]]], float]:
        start = time.perf_counter()
        configs = self.searcher.suggest(list(self.runs.values()), n)
        seconds = time.perf_counter() - start
        out = []
        for config in configs:
            run_id = f"r{len(self.runs)}"
            self.runs[run_id] = self._record(run_id, config, None)
            out.append((run_id, dict(config)))
        return out, seconds

    def tell(self, trial_id: Any, value: float) -> None:
        self.runs[trial_id] = self._record(trial_id, self.runs[trial_id].config, value)

    def add(self, config: Mapping[str, Any], value: float) -> None:
        run_id = f"r{len(self.runs)}"
        self.runs[run_id] = self._record(run_id, config, value)


class PeerSession(Session):
    """A peer's search in its own environment (see ``benchmarks/peer_server.py``)."""

    def __init__(self, task: Task, method: str, seed: int, budget: int) -> None:
        conditional = is_conditional(task.parameters)
        parameters = task.parameters
        if conditional and method not in TAKES_WHEN:
            parameters = flat_parameters(parameters)
        self.peer = Peer(METHOD_ENV[method])
        answer = self.peer.call(
            {"op": "init", "method": method, "parameters": parameters, "seed": seed}
        )
        self.activity = Activity(task.parameters) if conditional else None
        self.space = DEFINE_BY_RUN if answer.get("conditions") == "define-by-run" else FLAT

    def ask(self, n: int) -> tuple[list[tuple[Any, dict[str, Any]]], float]:
        answer = self.peer.call({"op": "ask", "n": n})
        trials = [(t["id"], t["config"]) for t in answer["trials"]]
        if self.activity is not None:
            trials = [(i, self.activity.active(config)) for i, config in trials]
        return trials, answer["seconds"]

    def tell(self, trial_id: Any, value: float) -> None:
        self.peer.call({"op": "tell", "id": trial_id, "value": value})

    def add(self, config: Mapping[str, Any], value: float) -> None:
        self.peer.call({"op": "add", "config": dict(config), "value": value})

    def close(self) -> None:
        self.peer.close()


def open_session(task: Task, method: str, seed: int, budget: int) -> Session:
    if method in NBSWEEP_METHODS:
        return NbsweepSession(task, method, seed, budget)
    if method in METHOD_ENV:
        return PeerSession(task, method, seed, budget)
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(SEARCH_METHODS)}")


def run_search(
    task: Task,
    method: str,
    seed: int,
    budget: int,
    agents: int = 1,
    session: Session | None = None,
) -> Trace:
    """Run ``budget`` trials with ``agents`` in flight; the oldest pending trial ends first.

    ``session`` is the method's search when the caller opened it itself.
    """
    session = session or open_session(task, method, seed, budget)
    trace = Trace(task.name, method, seed, agents)
    if is_conditional(task.parameters):
        trace.space = session.space
    try:
        in_flight: deque[tuple[Any, dict[str, Any]]] = deque()
        asked = 0
        exhausted = False
        while len(trace.values) < budget:
            want = min(agents - len(in_flight), budget - asked)
            if want > 0 and not exhausted:
                trials, seconds = session.ask(want)
                trace.latencies.append(seconds)
                asked += len(trials)
                in_flight.extend(trials)
                exhausted = len(trials) < want
            if not in_flight:
                break  # a grid smaller than the budget is done
            trial_id, config = in_flight.popleft()
            value = float(task.objective(config, seed))
            session.tell(trial_id, value)
            trace.values.append(value)
    finally:
        session.close()
    return trace


def sample_config(parameters: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """A uniform draw from a W&B space, independent of every method under test; on a
    conditional space every parameter is drawn and the inactive ones dropped."""
    config: dict[str, Any] = {}
    for name, spec in parameters.items():
        kind = spec["distribution"]
        if kind == "categorical":
            config[name] = spec["values"][int(rng.integers(len(spec["values"])))]
        elif kind == "int_uniform":
            config[name] = int(rng.integers(spec["min"], spec["max"] + 1))
        elif kind == "log_uniform_values":
            config[name] = float(np.exp(rng.uniform(np.log(spec["min"]), np.log(spec["max"]))))
        else:
            config[name] = float(rng.uniform(spec["min"], spec["max"]))
    return Activity(parameters).active(config) if is_conditional(parameters) else config


def suggestion_latency(
    task: Task, method: str, completed: int, samples: int, seed: int = 0
) -> list[float]:
    """Seconds per single suggestion once ``completed`` trials are finished.

    The history is ``completed`` uniform random configs with their true values, added to the
    method as finished trials; each timed suggestion is then evaluated and told, as in a sweep.
    """
    rng = np.random.default_rng(seed)
    session = open_session(task, method, seed, completed + samples)
    try:
        for _ in range(completed):
            config = sample_config(task.parameters, rng)
            session.add(config, float(task.objective(config, seed)))
        seconds = []
        # One untimed suggestion first: lazy imports (torch, sklearn) are not suggestion time.
        for _ in range(samples + 1):
            trials, elapsed = session.ask(1)
            seconds.append(elapsed)
            for trial_id, config in trials:
                session.tell(trial_id, float(task.objective(config, seed)))
        return seconds[1:]
    finally:
        session.close()


def random_configs(task: Task, count: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(10_000 + seed)
    return [sample_config(task.parameters, rng) for _ in range(count)]
