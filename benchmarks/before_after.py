"""``python -m benchmarks.before_after --base REV``: trials/s of this tree against REV, in one run.

A refactor must not slow the runtime down. This checks out ``REV`` into a temporary git
worktree and measures both trees with ``benchmarks.throughput.nbsweep_rate`` (no-op trials and
one-row trials, 2 spawned agents, a SQLite store), alternating base and head round by round so
that drift in the machine's load falls on both. Each measurement runs in its own interpreter
whose ``PYTHONPATH`` is that tree, so the agents it spawns import the same tree; both run this
tree's ``benchmarks/throughput.py``, so that only ``nbsweep/`` differs. Prints the
median rate of each and the ratio head/base, and writes them into the ``## Throughput before
and after`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.report import write_section

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("noop", "one_row")
HEADING = "## Throughput before and after"
TARGET = 0.95  # issue 12: the refactor keeps at least this share of the trials/s

_MEASURE = """
import json, sys
from benchmarks import throughput
rate = throughput.nbsweep_rate(getattr(throughput, sys.argv[1]), int(sys.argv[2]), sys.argv[3])
print(json.dumps(rate))
"""


def measure(tree: Path, kind: str, trials: int, store: Path) -> float:
    """Trials per second of ``kind`` trials in ``tree``, in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("NBSWEEP_STORE", None)
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, kind, str(trials), str(store)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["rate"])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.before_after")
    parser.add_argument("--base", required=True, help="the git revision to compare against")
    parser.add_argument("--trials", type=int, default=2000, help="trials per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="base/head pairs per kind")
    args = parser.parse_args()
    rates: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="nbsweep-ab-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), args.base],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        # One harness for both: this tree's train functions and rate, so that only nbsweep/
        # differs (the agents import the train functions' module, and its imports count).
        shutil.copy(ROOT / "benchmarks" / "throughput.py", base / "benchmarks" / "throughput.py")
        try:
            for round_ in range(args.rounds):
                for kind in KINDS:
                    for name, tree in (("base", base), ("head", ROOT)):
                        store = Path(tmp) / f"{name}-{kind}-{round_}.db"
                        rate = measure(tree, kind, args.trials, store)
                        rates.setdefault((kind, name), []).append(rate)
                        print(f"round {round_ + 1} {kind} {name}: {rate:.0f} trials/s", flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False
            )
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f}")
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"_Written by `python -m benchmarks.before_after --base {args.base} --trials"
        f" {args.trials} --rounds {args.rounds}`: {args.base} (before the typed boundaries of"
        f" issue 12) against this tree ({head}, with any uncommitted changes), {args.rounds}"
        " rounds alternating the two, 2 spawned agents, a SQLite store; load average"
        f" {load:.1f} at the end._",
        "",
        "| trials | base trials/s (median) | head trials/s (median) | head/base |",
        "|---|---:|---:|---:|",
    ]
    ratios = []
    for kind in KINDS:
        before = statistics.median(rates[(kind, "base")])
        after = statistics.median(rates[(kind, "head")])
        ratios.append(after / before)
        print(
            f"{kind}: base {before:.0f} trials/s, head {after:.0f} trials/s,"
            f" head/base {after / before:.2f}"
        )
        lines.append(
            f"| {kind.replace('_', '-')} | {before:.0f} | {after:.0f} | {after / before:.2f} |"
        )
    verdict = "met" if min(ratios) >= TARGET else "missed"
    lines += [
        "",
        f"Target: head/base at least {TARGET} for both: **{verdict}** (lowest {min(ratios):.2f}).",
    ]
    write_section(HEADING, lines)


if __name__ == "__main__":
    main()
