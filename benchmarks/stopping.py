"""Early termination on shared learning curves: nbsweep's asha and hyperband against the peers.

For each seed the same random configs are trained in full once (their curves are cached), then
every rule replays those curves in the same simulated sweep: ``workers`` runs in flight, one
epoch per tick, finished or stopped runs replaced by the next config. A rule only decides which
running runs stop; what it costs (epochs) and whether the sweep still finds full training's
best value are measured the same way for all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.harness import random_configs
from benchmarks.peers import METHOD_ENV, Peer
from benchmarks.tasks import Task

STOP_METHODS = (
    "nbsweep-asha",
    "nbsweep-hyperband",
    "wandb-hyperband",
    "optuna-sha",
    "optuna-hyperband",
)
MIN_ITER = 3
ETA = 3


@dataclass
class SimRun:
    id: str
    curve: list[float]
    state: str = "running"
    history: list[float] = field(default_factory=list)


@dataclass
class StopTrace:
    """One replayed sweep under one rule."""

    method: str
    seed: int
    configs: int
    epochs_used: int
    epochs_full: int
    best: float
    full_best: float
    stopped: int
    decisions_compared: int = 0  # hyperband only: ticks where W&B's rule was asked too
    decisions_differing: int = 0

    @property
    def epoch_share(self) -> float:
        return self.epochs_used / self.epochs_full

    @property
    def kept_best(self) -> bool:
        return self.best == self.full_best


def early_terminate(kind: str, epochs: int) -> dict[str, Any]:
    """The ``early_terminate`` block every rule is configured from (same grace and eta)."""
    block: dict[str, Any] = {"type": kind, "min_iter": MIN_ITER, "eta": ETA}
    if kind == "asha":
        block["max_iter"] = epochs
    return block


class Rule(ABC):
    """One early-termination rule, told what happened in a tick, answering which runs stop."""

    @abstractmethod
    def step(
        self,
        runs: Sequence[SimRun],
        starts: list[str],
        reports: list[tuple[str, int, float]],
        finishes: list[tuple[str, float]],
    ) -> list[str]: ...

    def close(self) -> None:  # noqa: B027 - only peer rules hold a process
        """Release what the rule holds."""


def _wandb_runs(runs: Sequence[SimRun]) -> list[dict[str, Any]]:
    # W&B has no "stopped" state: an early-terminated run ends up "killed" there.
    return [
        {"name": r.id, "state": "killed" if r.state == "stopped" else r.state, "history": r.history}
        for r in runs
    ]


class NbsweepRule(Rule):
    """nbsweep's stopper from a validated sweep config, on plain run records."""

    def __init__(self, task: Task, kind: str, epochs: int, check: Peer | None = None) -> None:
        import nbsweep
        from nbsweep.stopping import make_stopper

        config = task.sweep_config("random")
        config["early_terminate"] = early_terminate(kind, epochs)
        self.sweep_config = config
        self.stopper = make_stopper(nbsweep.validate(config))
        self.check = check  # W&B's own rule, asked the same question on every tick
        self.compared = 0
        self.differing = 0

    def step(
        self,
        runs: Sequence[SimRun],
        starts: list[str],
        reports: list[tuple[str, int, float]],
        finishes: list[tuple[str, float]],
    ) -> list[str]:
        from nbsweep._runs import RunRecord

        records = [
            RunRecord(id=r.id, config={}, state=r.state, metric_history=tuple(r.history))
            for r in runs
        ]
        assert self.stopper is not None
        stop = list(self.stopper.decide(records).stop)
        if self.check is not None:
            theirs = self.check.call(
                {"op": "hb_stop", "config": self.sweep_config, "runs": _wandb_runs(runs)}
            )["stop"]
            self.compared += 1
            self.differing += int(sorted(theirs) != sorted(stop))
        return stop


class WandbRule(Rule):
    """W&B's ``sweeps.stop_runs`` (hyperband) in its own environment."""

    def __init__(self, task: Task, epochs: int) -> None:
        self.peer = Peer(METHOD_ENV["wandb-hyperband"])
        config = task.sweep_config("random")
        config["early_terminate"] = early_terminate("hyperband", epochs)
        self.config = config

    def step(
        self,
        runs: Sequence[SimRun],
        starts: list[str],
        reports: list[tuple[str, int, float]],
        finishes: list[tuple[str, float]],
    ) -> list[str]:
        return self.peer.call({"op": "hb_stop", "config": self.config, "runs": _wandb_runs(runs)})[
            "stop"
        ]

    def close(self) -> None:
        self.peer.close()


class OptunaRule(Rule):
    """Optuna's SuccessiveHalvingPruner or HyperbandPruner, one ``report`` per epoch."""

    def __init__(self, method: str, epochs: int) -> None:
        self.peer = Peer(METHOD_ENV[method])
        self.peer.call(
            {
                "op": "es_init",
                "pruner": method,
                "min_resource": MIN_ITER,
                "max_resource": epochs,
                "eta": ETA,
            }
        )

    def step(
        self,
        runs: Sequence[SimRun],
        starts: list[str],
        reports: list[tuple[str, int, float]],
        finishes: list[tuple[str, float]],
    ) -> list[str]:
        answer = self.peer.call(
            {
                "op": "es_step",
                "starts": starts,
                "reports": [list(r) for r in reports],
                "finishes": [list(f) for f in finishes],
            }
        )
        return answer["prune"]

    def close(self) -> None:
        self.peer.close()


def open_rule(task: Task, method: str, epochs: int, check: Peer | None = None) -> Rule:
    if method == "nbsweep-asha":
        return NbsweepRule(task, "asha", epochs)
    if method == "nbsweep-hyperband":
        return NbsweepRule(task, "hyperband", epochs, check=check)
    if method == "wandb-hyperband":
        return WandbRule(task, epochs)
    if method in ("optuna-sha", "optuna-hyperband"):
        return OptunaRule(method, epochs)
    raise ValueError(f"unknown early-termination method {method!r}; choose from {STOP_METHODS}")


def replay(curves: Sequence[Sequence[float]], rule: Rule | None, workers: int) -> list[SimRun]:
    """Run the sweep tick by tick; ``rule=None`` is full training."""
    runs = [SimRun(f"run{i}", list(curve)) for i, curve in enumerate(curves)]
    queue = list(runs)
    active: list[SimRun] = []
    while queue or active:
        starts = []
        while queue and len(active) < workers:
            run = queue.pop(0)
            active.append(run)
            starts.append(run.id)
        reports, finishes = [], []
        for run in active:
            value = run.curve[len(run.history)]
            run.history.append(value)
            reports.append((run.id, len(run.history), value))
            if len(run.history) == len(run.curve):
                run.state = "finished"
                finishes.append((run.id, min(run.history)))
        active = [run for run in active if run.state == "running"]
        if rule is not None:
            seen = [run for run in runs if run.history]
            stop = set(rule.step(seen, starts, reports, finishes))
            for run in active:
                if run.id in stop:
                    run.state = "stopped"
            active = [run for run in active if run.state == "running"]
    return runs


def shared_curves(task: Task, count: int, seed: int) -> list[list[float]]:
    """The learning curves of ``count`` random configs for this seed (cached on disk)."""
    assert task.curve is not None, f"task {task.name} has no learning curve"
    return [task.curve(config, seed) for config in random_configs(task, count, seed)]


def run_stopping(
    task: Task, method: str, seed: int, count: int, workers: int, check: Peer | None = None
) -> StopTrace:
    curves = shared_curves(task, count, seed)
    epochs = len(curves[0])
    rule = open_rule(task, method, epochs, check=check)
    try:
        runs = replay(curves, rule, workers)
    finally:
        rule.close()
    full_best = min(min(curve) for curve in curves)
    trace = StopTrace(
        method=method,
        seed=seed,
        configs=count,
        epochs_used=sum(len(run.history) for run in runs),
        epochs_full=sum(len(curve) for curve in curves),
        best=min(min(run.history) for run in runs),
        full_best=full_best,
        stopped=sum(run.state == "stopped" for run in runs),
    )
    if isinstance(rule, NbsweepRule) and rule.check is not None:
        trace.decisions_compared = rule.compared
        trace.decisions_differing = rule.differing
    return trace


def summarize_stopping(traces: Sequence[StopTrace]) -> Mapping[str, Any]:
    """Per rule: median epoch share, share of seeds keeping the best, W&B agreement."""
    import numpy as np

    out: dict[str, Any] = {}
    for method in dict.fromkeys(t.method for t in traces):
        mine = [t for t in traces if t.method == method]
        out[method] = {
            "seeds": len(mine),
            "epoch_share_mean": float(
                sum(t.epochs_used for t in mine) / sum(t.epochs_full for t in mine)
            ),
            "epoch_share_max": float(max(t.epoch_share for t in mine)),
            "kept_best_share": float(np.mean([t.kept_best for t in mine])),
            "regret_median": float(np.median([t.best - t.full_best for t in mine])),
            "stopped_median": float(np.median([t.stopped for t in mine])),
            "decisions_compared": sum(t.decisions_compared for t in mine),
            "decisions_differing": sum(t.decisions_differing for t in mine),
        }
    return out
