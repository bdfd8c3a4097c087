"""The Optuna scheduler's pruners against nbsweep's hyperband, through the scheduler interface.

The replay of ``benchmarks/stopping.py`` (its cached learning curves of ``sgd_digits``, its
simulated sweep: random configs, ``workers`` runs in flight, one epoch per tick), with each
rule being a sweep config turned into a scheduler by ``nbsweep.schedulers.make_scheduler`` and
asked ``Scheduler.stop`` on every tick, as the sweep controller asks it. Writes the section
``## Optuna scheduler vs hyperband`` of ``docs/benchmarks.md`` (nothing else).

    python -m benchmarks.schedulers [--seeds 10] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from benchmarks.harness import random_configs
from benchmarks.report import write_section
from benchmarks.stopping import ETA, MIN_ITER, Rule, SimRun, replay, shared_curves
from benchmarks.tasks import TASKS, Task

HEADING = "## Optuna scheduler vs hyperband"
TASK = "sgd_digits"
CONFIGS = 54  # as the early-termination benchmark
WORKERS = 4
OPTUNA_JOB = "wandb/sweep-jobs/job-optuna-sweep-scheduler:latest"
# Optuna reports steps from 0: a pruner's warm-up of MIN_ITER - 1 steps judges a run first at
# its MIN_ITER-th value, the epoch hyperband's first band judges it.
WARMUP = MIN_ITER - 1


def _pruner(kind: str, **args: Any) -> dict[str, Any]:
    return {"type": kind, "args": args}


# The rules compared: each the early-termination part of a sweep config.
RULES: dict[str, dict[str, Any]] = {
    "nbsweep hyperband": {
        "method": "random",
        "early_terminate": {"type": "hyperband", "min_iter": MIN_ITER, "eta": ETA},
    },
    "optuna MedianPruner": {"pruner": _pruner("MedianPruner", n_warmup_steps=WARMUP)},
    "optuna PercentilePruner 25%": {
        "pruner": _pruner("PercentilePruner", percentile=25.0, n_warmup_steps=WARMUP)
    },
    "optuna PercentilePruner 25%, warm-up 10 (seed doc)": {
        "pruner": _pruner("PercentilePruner", percentile=25.0, n_warmup_steps=10)
    },
}


def sweep_config(task: Task, rule: Mapping[str, Any]) -> dict[str, Any]:
    """The validated sweep config of one rule on ``task``."""
    import nbsweep

    config: dict[str, Any] = {
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": dict(task.parameters),
    }
    if "early_terminate" in rule:
        config.update(rule)
    else:
        config["scheduler"] = {"job": OPTUNA_JOB, "settings": dict(rule)}
    return nbsweep.validate(config)


class SchedulerRule(Rule):
    """A ``nbsweep.schedulers`` scheduler deciding stops from the runs' records."""

    def __init__(self, config: Mapping[str, Any], configs: Sequence[Mapping[str, Any]]) -> None:
        from nbsweep.schedulers import make_scheduler

        self.scheduler = make_scheduler(config, seed=0)
        self.configs = {f"run{i}": dict(c) for i, c in enumerate(configs)}
        self.seconds = 0.0
        self.calls = 0

    def step(
        self,
        runs: Sequence[SimRun],
        starts: list[str],
        reports: list[tuple[str, int, float]],
        finishes: list[tuple[str, float]],
    ) -> list[str]:
        from nbsweep._runs import RunRecord

        records = [
            RunRecord(r.id, self.configs[r.id], r.state, tuple(r.history), r.history[-1])
            for r in runs
        ]
        began = time.perf_counter()
        stop = list(self.scheduler.stop(records))
        self.seconds += time.perf_counter() - began
        self.calls += 1
        return stop


def run(seeds: int) -> dict[str, dict[str, Any]]:
    task = TASKS[TASK]
    out: dict[str, dict[str, Any]] = {name: {"traces": []} for name in RULES}
    for seed in range(seeds):
        curves = shared_curves(task, CONFIGS, seed)
        configs = random_configs(task, CONFIGS, seed)
        full_best = min(min(curve) for curve in curves)
        for name, rule in RULES.items():
            scheduler = SchedulerRule(sweep_config(task, rule), configs)
            runs = replay(curves, scheduler, WORKERS)
            best = min(min(r.history) for r in runs)
            out[name]["traces"].append(
                {
                    "seed": seed,
                    "used": sum(len(r.history) for r in runs),
                    "full": sum(len(c) for c in curves),
                    "best": best,
                    "regret": best - full_best,
                    "kept": best == full_best,
                    "stopped": sum(r.state == "stopped" for r in runs),
                    "ms_per_call": 1000 * scheduler.seconds / max(1, scheduler.calls),
                }
            )
    return out


def section(results: Mapping[str, Mapping[str, Any]], seeds: int) -> list[str]:
    epochs = len(shared_curves(TASKS[TASK], 1, 0)[0])
    lines = [
        "_Written by `python -m benchmarks.schedulers`; measured, never asserted in tests._",
        "",
        f"The same sweep of `{TASK}` under nbsweep's own scheduler with hyperband and under"
        " the Optuna scheduler (`scheduler.job: wandb/sweep-jobs/job-optuna-sweep-scheduler"
        ":latest`) with its pruners. As in the early-termination section: for each of"
        f" {seeds} seeds, {CONFIGS} random configs trained in full once (curves cached), then"
        f" replayed with {WORKERS} runs in flight, one epoch of {epochs} per tick; every tick"
        " each scheduler is asked `Scheduler.stop` with the runs' records, exactly as the"
        " sweep controller asks it, and the runs it names stop. Hyperband:"
        f" `{{type: hyperband, min_iter: {MIN_ITER}, eta: {ETA}}}`. Optuna reports each"
        " logged value as step 0, 1, 2, ...; `n_warmup_steps: 2` lets a pruner judge a run"
        f" first at its {MIN_ITER}rd value, where hyperband's first band is; the last row"
        " keeps the seed document's `n_warmup_steps: 10`. Optuna's pruners wait for"
        " `n_startup_trials: 5` finished runs (their default). 'Best kept': the best value"
        " seen equals full training's best over the same configs.",
        "",
        "| scheduler | epochs used (share) | max share | seeds keeping the best |"
        " median regret | runs stopped (median) | ms per stop decision |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    shares = {}
    for name, result in results.items():
        traces = result["traces"]
        share = shares[name] = sum(t["used"] for t in traces) / sum(t["full"] for t in traces)
        worst = max(t["used"] / t["full"] for t in traces)
        kept = np.mean([t["kept"] for t in traces])
        lines.append(
            f"| {name} | {share:.1%} | {worst:.1%} | {kept:.0%} ({len(traces)}) |"
            f" {np.median([t['regret'] for t in traces]):.3g} |"
            f" {np.median([t['stopped'] for t in traces]):.0f} |"
            f" {np.mean([t['ms_per_call'] for t in traces]):.2f} |"
        )
    ours = shares.pop("nbsweep hyperband")
    cheapest = min(shares, key=shares.__getitem__)
    lines += [
        "",
        f"With the same grace, nbsweep's hyperband trained {ours:.1%} of full training's epochs"
        f" and the cheapest Optuna pruner, {cheapest}, {shares[cheapest]:.1%}"
        f" ({shares[cheapest] / ours:.2f}x as many). The hyperband row is the early-termination"
        " section's `nbsweep-hyperband` row again: the same rule on the same curves, now asked"
        " through the scheduler interface. Stop decisions were timed on"
        f" {os.cpu_count()} cores shared with other work (load average"
        f" {os.getloadavg()[0]:.1f} at the end).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.schedulers")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()
    lines = section(run(args.seeds), args.seeds)
    print("\n".join(lines))
    if not args.no_write:
        write_section(HEADING, lines)


if __name__ == "__main__":
    main()
