"""``python -m benchmarks.dev``: a quick look at nbsweep's bayes on the development tasks.

For tuning the search: a few seeds and a small budget against Optuna's GP and TPE samplers,
run in this process from the harness's own environment (Optuna and torch must be installed
there; ``make bench`` runs them in their pinned environment instead). It refuses the held-out
tasks: they are for the report alone. The peers' traces are saved in ``.bench/dev.jsonl`` and
reused; nbsweep's are measured afresh on every call, under a label of your choosing.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmarks.harness import Session, Trace, run_search
from benchmarks.peers import BENCH_DIR
from benchmarks.tasks import DEVELOPMENT, TASKS, Task

PEERS = ("optuna-gp", "optuna-tpe")


class InProcessOptuna(Session):
    """The peer server's Optuna search, called directly (no JSON lines, no peer venv)."""

    def __init__(self, task: Task, method: str, seed: int) -> None:
        from benchmarks.peer_server import OptunaSearch

        self.search = OptunaSearch(method, task.parameters, seed)

    def ask(self, n: int) -> tuple[list[tuple[Any, dict[str, Any]]], float]:
        start = time.perf_counter()
        trials = self.search.ask(n)
        return [(t["id"], t["config"]) for t in trials], time.perf_counter() - start

    def tell(self, trial_id: Any, value: float) -> None:
        self.search.tell(trial_id, value)

    def add(self, config: Mapping[str, Any], value: float) -> None:
        self.search.add(dict(config), value)


def peer_trace(task: Task, method: str, seed: int, budget: int) -> Trace:
    """One peer search, from ``.bench/dev.jsonl`` when it was run before."""
    path = BENCH_DIR / "dev.jsonl"
    key = f"{task.name}/{method}/{seed}/{budget}"
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["key"] == key:
                return Trace(task.name, method, seed, 1, row["values"])
    trace = run_search(task, method, seed, budget, session=InProcessOptuna(task, method, seed))
    BENCH_DIR.mkdir(exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps({"key": key, "values": trace.values}) + "\n")
    return trace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dev", description=__doc__)
    parser.add_argument("--tasks", nargs="+", choices=DEVELOPMENT, default=list(DEVELOPMENT))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--label", default="nbsweep-bayes", help="names this nbsweep variant")
    parser.add_argument("--peers", nargs="*", choices=PEERS, default=list(PEERS))
    args = parser.parse_args(argv)

    # Per peer: tasks where bayes's median is ≤ the peer's, strictly below it, and measured.
    wins = {peer: [0, 0, 0] for peer in args.peers}
    for name in args.tasks:
        task = TASKS[name]
        started = time.perf_counter()
        mine = [run_search(task, "nbsweep-bayes", s, args.budget) for s in range(args.seeds)]
        seconds = time.perf_counter() - started
        medians = {args.label: float(np.median([t.best_after(args.budget) for t in mine]))}
        for peer in args.peers:
            traces = [peer_trace(task, peer, s, args.budget) for s in range(args.seeds)]
            medians[peer] = float(np.median([t.best_after(args.budget) for t in traces]))
            wins[peer][0] += medians[args.label] <= medians[peer]
            wins[peer][1] += medians[args.label] < medians[peer]
            wins[peer][2] += 1
        cells = "  ".join(f"{m} {v:.5g}" for m, v in medians.items())
        print(f"{name:20s} {cells}  ({seconds:.0f}s)", flush=True)
    for peer, (as_low, lower, total) in wins.items():
        print(f"{args.label}: median ≤ {peer}'s on {as_low}, < on {lower}, of {total} tasks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
