"""``python -m benchmarks.before_after --base REV``: trials/s of this tree against REV, in one run.

A refactor must not slow the runtime down. This checks out ``REV`` into a temporary git
worktree and measures both trees with ``benchmarks.throughput.nbsweep_rate`` (no-op trials and
one-row trials, 2 spawned agents, a SQLite store), alternating base and head round by round so
that drift in the machine's load falls on both. Each measurement runs in its own interpreter
whose ``PYTHONPATH`` is that tree, so the agents it spawns import the same tree. Prints the
median rate of each and the ratio head/base.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("noop", "one_row")

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
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for kind in KINDS:
        before = statistics.median(rates[(kind, "base")])
        after = statistics.median(rates[(kind, "head")])
        print(
            f"{kind}: base {before:.0f} trials/s, head {after:.0f} trials/s,"
            f" head/base {after / before:.2f}"
        )


if __name__ == "__main__":
    main()
