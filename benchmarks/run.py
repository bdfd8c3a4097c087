"""``python -m benchmarks.run [--quick]``: the whole comparison, then ``docs/benchmarks.md``.

Results are appended to ``.bench/results-<mode>.jsonl`` as each search finishes, so an
interrupted run resumes where it stopped and ``--report-only`` redraws from what is there.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import SEARCH_METHODS, Trace, run_search, suggestion_latency
from benchmarks.peers import (
    BENCH_DIR,
    ENVS,
    METHOD_ENV,
    ROOT,
    Peer,
    ensure_venv,
    peer_versions,
    venv_ready,
)
from benchmarks.stopping import STOP_METHODS, StopTrace, run_stopping
from benchmarks.tasks import CONDITIONAL, DEVELOPMENT, HELD_OUT, TASKS


@dataclass(frozen=True)
class Plan:
    """How much of everything to run."""

    mode: str
    seeds: int
    budget: int  # trials per search (best@10/25/50/100 read from it)
    target_trials: int  # random trials behind each task's target
    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    agents: int  # parallel agents simulated for nbsweep-bayes
    latency: dict[int, int]  # completed trials -> timed suggestions
    latency_task: str
    latency_methods: tuple[str, ...]
    latency_1000_methods: tuple[str, ...]
    latency_10000_methods: tuple[str, ...]
    stop_task: str
    stop_seeds: int
    stop_configs: int
    stop_workers: int

    @property
    def budgets(self) -> list[int]:
        return sorted({b for b in (10, 25, 50, 100) if b <= self.budget} | {self.budget})


FULL = Plan(
    mode="full",
    seeds=20,
    budget=100,
    target_trials=200,
    tasks=tuple(TASKS),
    methods=SEARCH_METHODS,
    agents=4,
    latency={10: 20, 100: 10, 1000: 3, 10_000: 3},
    latency_task="hartmann6",
    latency_methods=SEARCH_METHODS,
    latency_1000_methods=SEARCH_METHODS,
    # Issue 16's bound at 10,000 runs is nbsweep's own; the peers take hours there.
    latency_10000_methods=("nbsweep-bayes",),
    stop_task="sgd_digits",
    stop_seeds=20,
    stop_configs=54,
    stop_workers=4,
)

# A few minutes on two idle cores: 2 seeds × 15 trials, the SGD search left out (a curve costs
# 0.3 s), and only a couple of 1,000-trial latency samples, for nbsweep's bayes alone.
QUICK = dataclasses.replace(
    FULL,
    mode="quick",
    seeds=2,
    budget=15,
    target_trials=50,
    tasks=tuple(t for t in TASKS if t != "sgd_digits"),
    latency={10: 2, 100: 2, 1000: 2, 10_000: 2},
    latency_1000_methods=("nbsweep-bayes",),
    stop_seeds=2,
    stop_configs=27,
)


TASK_SETS = {"development": DEVELOPMENT, "held-out": HELD_OUT, "conditional": CONDITIONAL}


class Results:
    """Append-only JSON lines, keyed so that a rerun skips what is already measured."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[row["key"]] = row

    def has(self, key: str) -> bool:
        return key in self.rows

    def add(self, key: str, kind: str, data: dict[str, Any]) -> None:
        row = {"key": key, "kind": kind, **data}
        self.rows[key] = row
        with self.path.open("a") as out:
            out.write(json.dumps(row) + "\n")

    def drop(self, keep: Any) -> int:
        """Forget (and rewrite the file without) the rows whose key ``keep`` rejects."""
        gone = [key for key in self.rows if not keep(key)]
        for key in gone:
            del self.rows[key]
        self.path.write_text("".join(json.dumps(row) + "\n" for row in self.rows.values()))
        return len(gone)

    def of_kind(self, kind: str) -> Iterator[dict[str, Any]]:
        return (row for row in self.rows.values() if row["kind"] == kind)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def search_budget(plan: Plan, method: str) -> int:
    """Random search runs to the target's budget; its first trials are the method's."""
    return max(plan.budget, plan.target_trials) if method == "nbsweep-random" else plan.budget


def search_runs(plan: Plan) -> Iterator[tuple[str, str, str, int, int]]:
    """(key, task, method, agents, seed) of every search the plan asks for, in run order."""
    for task in plan.tasks:
        for method in plan.methods:
            for agents in [1, plan.agents] if method == "nbsweep-bayes" else [1]:
                budget = search_budget(plan, method)
                for seed in range(plan.seeds):
                    yield (
                        f"search/{task}/{method}/{agents}/{seed}/{budget}",
                        task,
                        method,
                        agents,
                        seed,
                    )


def latency_runs(plan: Plan) -> Iterator[tuple[str, str, int, int]]:
    for method in plan.latency_methods:
        for completed, samples in plan.latency.items():
            large = plan.latency_1000_methods if completed <= 1000 else plan.latency_10000_methods
            if completed < 1000 or method in large:
                key = f"latency/{plan.latency_task}/{method}/{completed}/{samples}"
                yield key, method, completed, samples


def stop_runs(plan: Plan) -> Iterator[tuple[str, str, int]]:
    for seed in range(plan.stop_seeds):
        for method in STOP_METHODS:
            key = f"stop/{plan.stop_task}/{method}/{seed}/{plan.stop_configs}/{plan.stop_workers}"
            yield key, method, seed


def run_searches(plan: Plan, results: Results) -> None:
    group, started = None, time.perf_counter()
    for key, task, method, agents, seed in search_runs(plan):
        if (task, method, agents) != group:
            if group is not None:
                _log(f"search {' '.join(map(str, group))}: {time.perf_counter() - started:.0f}s")
            group, started = (task, method, agents), time.perf_counter()
        if not results.has(key):
            trace = run_search(TASKS[task], method, seed, search_budget(plan, method), agents)
            results.add(key, "search", dataclasses.asdict(trace))
    if group is not None:
        _log(f"search {' '.join(map(str, group))}: {time.perf_counter() - started:.0f}s")


def run_latency(plan: Plan, results: Results) -> None:
    task = TASKS[plan.latency_task]
    for key, method, completed, samples in latency_runs(plan):
        if results.has(key):
            continue
        seconds = suggestion_latency(task, method, completed, samples)
        results.add(
            key,
            "latency",
            {"task": task.name, "method": method, "completed": completed, "seconds": seconds},
        )
        _log(f"latency {method} at {completed}: {sorted(seconds)[len(seconds) // 2]:.3f}s")


def run_early_termination(plan: Plan, results: Results) -> None:
    task = TASKS[plan.stop_task]
    todo = [run for run in stop_runs(plan) if not results.has(run[0])]
    if not todo:
        return
    with Peer(METHOD_ENV["wandb-hyperband"]) as check:
        for key, method, seed in todo:
            trace = run_stopping(
                task, method, seed, plan.stop_configs, plan.stop_workers, check=check
            )
            results.add(key, "stop", dataclasses.asdict(trace))
    _log(f"early termination: {len(todo)} replays")


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip()


def code_state() -> dict[str, Any]:
    """The nbsweep code a run measures: HEAD, uncommitted changes, and a hash of the sources."""
    digest = hashlib.sha1()
    for path in sorted((ROOT / "nbsweep").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return {
        "nbsweep_commit": _git("rev-parse", "HEAD"),
        "nbsweep_dirty": bool(_git("status", "--porcelain", "--", "nbsweep")),
        "nbsweep_sources": digest.hexdigest(),
        "loadavg": os.getloadavg()[1],
    }


def _is_nbsweep_row(key: str) -> bool:
    parts = key.split("/")
    return len(parts) > 2 and parts[2].startswith("nbsweep-")


def environment() -> dict[str, Any]:
    """What the numbers were measured with: nbsweep's commit, peer versions, the machine.

    Only a built peer environment is asked: one that was never built measured nothing, and
    a report must not install packages (its peers' cells then say "not measured").
    """
    versions = {env: peer_versions(env) for env in ENVS if venv_ready(env)}
    from importlib import metadata

    return {
        **code_state(),
        "peers": versions,
        "harness": {
            p: metadata.version(p) for p in ("numpy", "scipy", "scikit-learn", "matplotlib")
        },
        "python": platform.python_version(),
        # Timings are only comparable within one report: say how busy the machine was.
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}, "
        f"load average {os.getloadavg()[1]:.1f} over the 5 minutes before the report",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def load(results: Results, plan: Plan) -> dict[str, Any]:
    """What this plan measured (other plans' rows in the same file are left out)."""

    def rows(keys: Iterator[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [results.rows[k[0]] for k in keys if results.has(k[0])]

    trace_fields = [f.name for f in dataclasses.fields(Trace)]
    return {
        # Rows saved before a field existed take its default.
        "search": [
            Trace(**{k: row[k] for k in trace_fields if k in row})
            for row in rows(search_runs(plan))
        ],
        "latency": rows(latency_runs(plan)),
        "meta": sorted(results.of_kind("meta"), key=lambda row: row["started"])[-1:],
        "stop": [
            StopTrace(**{f.name: row[f.name] for f in dataclasses.fields(StopTrace)})
            for row in rows(stop_runs(plan))
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the few-minute version")
    parser.add_argument("--seeds", type=int, help="override the number of seeds")
    parser.add_argument("--stop-seeds", type=int, help="override the early-termination seeds")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), help="only these tasks")
    parser.add_argument(
        "--set",
        choices=list(TASK_SETS),
        help="only the development tasks (the ones to tune on), only the held-out ones, or only "
        "the conditional one",
    )
    parser.add_argument("--methods", nargs="+", choices=list(SEARCH_METHODS))
    parser.add_argument("--skip", nargs="+", default=[], choices=["search", "latency", "stop"])
    parser.add_argument("--report-only", action="store_true", help="redraw from saved results")
    parser.add_argument("--out", type=Path, help="the markdown report to write")
    parser.add_argument(
        "--held-out-report",
        action="store_true",
        help="write issue 16's held-out targets alone (default docs/benchmarks-held-out.md), "
        "leaving docs/benchmarks.md and its plots as they are",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="the results file (default .bench/results-<mode>.jsonl); several runs of parts of "
        "a plan may each write their own, to be joined into the default before --report-only",
    )
    args = parser.parse_args(argv)

    plan = QUICK if args.quick else FULL
    if args.seeds:
        plan = dataclasses.replace(plan, seeds=args.seeds, stop_seeds=args.seeds)
    if args.stop_seeds:
        plan = dataclasses.replace(plan, stop_seeds=args.stop_seeds)
    if args.set:
        plan = dataclasses.replace(
            plan, tasks=tuple(t for t in plan.tasks if t in TASK_SETS[args.set])
        )
    if args.tasks:
        plan = dataclasses.replace(plan, tasks=tuple(args.tasks))
    if args.methods:
        # The latency of a method left out is not measured either.
        plan = dataclasses.replace(
            plan,
            methods=tuple(args.methods),
            latency_methods=tuple(m for m in plan.latency_methods if m in args.methods),
        )
    # The quick report goes beside the results, so it never overwrites the full one in docs/.
    name = (
        "benchmarks"
        + ("-quick" if plan.mode == "quick" else "")
        + ("-held-out" if args.held_out_report else "")
    )
    out = args.out or (ROOT / "docs" if plan.mode == "full" else BENCH_DIR) / f"{name}.md"
    BENCH_DIR.mkdir(exist_ok=True)
    results = Results(args.results or BENCH_DIR / f"results-{plan.mode}.jsonl")

    started = time.perf_counter()
    if not args.report_only:
        # Peer results accumulate across runs; nbsweep's are measured again when its code
        # changed since the last run, so a report never mixes two versions of nbsweep.
        state = code_state()
        previous = sorted(results.of_kind("meta"), key=lambda row: row["started"])
        if not previous or previous[-1].get("nbsweep_sources") != state["nbsweep_sources"]:
            dropped = results.drop(lambda key: not _is_nbsweep_row(key))
            if dropped:
                _log(f"nbsweep changed since the last run: measuring its {dropped} results again")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        results.add(f"meta/{stamp}", "meta", {"started": stamp, **state})
        for env in ENVS:
            ensure_venv(env, log=sys.stderr)
        # Cheapest first, so that a run cut short still answers most targets.
        if "latency" not in args.skip:
            run_latency(plan, results)
        if "stop" not in args.skip:
            run_early_termination(plan, results)
        if "search" not in args.skip:
            run_searches(plan, results)

    from benchmarks.report import write_held_out_report, write_report

    if args.held_out_report:
        command = " ".join(["python -m benchmarks.run", *(argv or sys.argv[1:])])
        write_held_out_report(plan, load(results, plan), environment(), out, command)
    else:
        write_report(plan, load(results, plan), environment(), out)
    _log(f"wrote {out} in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
