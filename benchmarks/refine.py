"""Coarse to fine: a random sweep, ``refine(top=0.2)``, then bayes on the narrowed config.

The multi-stage pattern of the seed documents, measured on the benchmark tasks: how many
runs the fine stage needs to reach the best value the coarse sweep found, against a bayes
sweep of the whole space with the same seed (and against the coarse sweep itself, which
needed as many runs as it took to find that best). The refined bayes sweep runs twice: on
its own, and warm-started with the coarse runs that lie inside the narrowed space.

It runs in process with nbsweep's engine, not as full sweeps: the searchers of
``nbsweep.search`` get run records as a sweep's controller passes them (one run in flight),
``nbsweep.analysis.refine`` gets the coarse runs as ``Sweep.runs`` shows them, and warm
start projects the coarse runs as ``nbsweep.sweep(..., warm_start=)`` does. Same
suggestions, no agents. Writes the section ``## Refine: coarse to fine`` of
``docs/benchmarks.md`` (nothing else).

    python -m benchmarks.refine [--seeds 20] [--coarse 30] [--fine 30] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from benchmarks.report import write_section
from benchmarks.tasks import TASKS, Task

HEADING = "## Refine: coarse to fine"
TASK_NAMES = ("svr_diabetes", "hartmann6")
TOP = 0.2
STAGES = {
    "fresh": "bayes, whole space",
    "refined": "bayes, refined config",
    "warm": "bayes, refined config + warm start",
}


def search(
    config: Mapping[str, Any],
    task: Task,
    seed: int,
    budget: int,
    warm: Sequence[Any] = (),
) -> tuple[list[dict[str, Any]], list[float]]:
    """``budget`` runs one after another, each suggested from all before it (and ``warm``)."""
    import nbsweep
    from nbsweep._runs import RunRecord
    from nbsweep._states import RunState
    from nbsweep.search import make_searcher

    searcher = make_searcher(nbsweep.validate(dict(config)), seed)
    runs: list[RunRecord] = []
    for index in range(budget):
        [suggested] = searcher.suggest([*warm, *runs], 1)
        value = float(task.objective(suggested, seed))
        runs.append(RunRecord(f"r{index}", suggested, RunState.FINISHED, (value,), value))
    return [dict(r.config) for r in runs], [float(r.summary_metric) for r in runs]


def runs_frame(configs: list[dict[str, Any]], values: list[float], metric: str) -> pd.DataFrame:
    """The coarse runs as ``Sweep.runs`` shows them (flat parameters here)."""
    return pd.DataFrame(
        [
            {"run_id": f"r{i}", "state": "finished", **{f"config/{k}": v for k, v in c.items()}}
            | {f"summary/{metric}": y}
            for i, (c, y) in enumerate(zip(configs, values, strict=True))
        ]
    )


def runs_to_reach(values: list[float], target: float) -> int | None:
    """The 1-based run at which ``values`` first reach ``target`` (minimised), or None."""
    return next((i + 1 for i, v in enumerate(values) if v <= target + 1e-12), None)


def one_seed(task: Task, seed: int, coarse: int, fine: int) -> dict[str, Any]:
    from nbsweep._runs import RunRecord
    from nbsweep._states import RunState
    from nbsweep._warm_start import _project
    from nbsweep.analysis import refine

    coarse_config = task.sweep_config("random", seed=seed)
    configs, values = search(coarse_config, task, seed, coarse)
    best = min(values)
    refined = refine(coarse_config, runs_frame(configs, values, task.metric), top=TOP)
    refined = refined.replace(method="bayes")
    space = refined.space
    warm = []
    for index, (config, value) in enumerate(zip(configs, values, strict=True)):
        projected = _project(space, config)
        if not isinstance(projected, str):
            warm.append(RunRecord(f"w{index}", projected, RunState.FINISHED, (value,), value))
    out: dict[str, Any] = {
        "best": best,
        "coarse": runs_to_reach(values, best),
        "warm_used": len(warm),
        "fixed": sum(1 for p in space.parameters if p.is_constant),
    }
    stages = {
        "fresh": (task.sweep_config("bayes", seed=seed), ()),
        "refined": (refined, ()),
        "warm": (refined, warm),
    }
    for stage, (config, observed) in stages.items():
        _, found = search(config, task, seed, fine, observed)
        out[stage] = runs_to_reach(found, best)
        out[f"{stage}_best"] = min(found)
    return out


def _median_runs(results: list[dict[str, Any]], key: str, budget: int) -> str:
    """Median runs to reach, counting a miss as more than the budget."""
    counts = [r[key] if r[key] is not None else budget + 1 for r in results]
    middle = statistics.median(counts)
    return f">{budget}" if middle > budget else f"{middle:g}"


def section(
    results: dict[str, list[dict[str, Any]]], seeds: int, coarse: int, fine: int, seconds: float
) -> list[str]:
    lines = [
        f"Coarse stage: {coarse} random runs over the task's whole space. `refine(top={TOP})`"
        f" narrows the config around the best {TOP:.0%} of them (ranges shrink to their span,"
        " widened 10%, in log space for log parameters; a parameter flat across them is"
        f" fixed). Fine stage: {fine} bayes runs on the refined config, alone and warm-started"
        " with the coarse runs inside the refined space, against a bayes sweep of the whole"
        f" space with the same seed. The target is the coarse sweep's best value; the fine"
        f" stages' runs come on top of the coarse runs that found it. {seeds}"
        f" seeds per task; medians over seeds, a miss counting as more than {fine} runs. Run in"
        " process with nbsweep's engine (`nbsweep.search` searchers on run records,"
        " `nbsweep.analysis.refine` on the runs frame, warm start as `warm_start=` projects"
        " runs), not as full sweeps: the same suggestions without agents"
        f" ({seconds:.0f} s in all). `python -m benchmarks.refine`.",
        "",
        "| task | stage | runs to reach the coarse best (median) | seeds reaching it |"
        " median best after the stage |",
        "|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        best = statistics.median(r["best"] for r in rows)
        lines.append(
            f"| {name} | coarse: random, {coarse} runs |"
            f" {statistics.median(r['coarse'] for r in rows):g} | {len(rows)}/{len(rows)} |"
            f" {best:.4g} |"
        )
        for stage, label in STAGES.items():
            reached = sum(1 for r in rows if r[stage] is not None)
            after = statistics.median(r[f"{stage}_best"] for r in rows)
            lines.append(
                f"| {name} | {label}, {fine} runs | {_median_runs(rows, stage, fine)} |"
                f" {reached}/{len(rows)} | {after:.4g} |"
            )
    lines.append("")
    for name, rows in results.items():
        used = statistics.median(r["warm_used"] for r in rows)
        fixed = statistics.median(r["fixed"] for r in rows)
        first = statistics.median(r["coarse"] for r in rows)
        verdicts = []
        for stage in ("refined", "warm"):
            runs = _median_runs(rows, stage, fine)
            fewer = runs[0] != ">" and float(runs) < first
            verdicts.append(f"{STAGES[stage]}: {'fewer' if fewer else 'not fewer'} ({runs})")
        lines.append(
            f"- {name}: runs to reach the coarse best, against the {first:g} the coarse sweep"
            f" needed: {'; '.join(verdicts)}. The refined config fixed {fixed:g} of"
            f" {len(TASKS[name].parameters)} parameters; warm start used {used:g} of {coarse}"
            " coarse runs (medians)."
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.refine")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--coarse", type=int, default=30, help="runs of the random sweep")
    parser.add_argument("--fine", type=int, default=30, help="runs of each bayes sweep")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=sorted(TASKS))
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()
    start = time.perf_counter()
    results = {
        name: [one_seed(TASKS[name], seed, args.coarse, args.fine) for seed in range(args.seeds)]
        for name in args.tasks
    }
    lines = section(results, args.seeds, args.coarse, args.fine, time.perf_counter() - start)
    print("\n".join(lines))
    if not args.no_write:
        write_section(HEADING, lines)


if __name__ == "__main__":
    main()
