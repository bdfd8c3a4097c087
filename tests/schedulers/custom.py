"""A custom scheduler the tests register by name or declare by entry point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbsweep._runs import RunRecord
from nbsweep.schedulers import Scheduler


class Countdown(Scheduler):
    """Suggests x = 1, 2, 3, then nothing; stops the run of x == 2 at its first value."""

    def suggest(self, runs: Sequence[RunRecord], n: int) -> list[dict[str, Any]]:
        return [{"x": x, "epochs": 5} for x in (1, 2, 3)[len(runs) : len(runs) + n]]

    def stop(self, runs: Sequence[RunRecord]) -> dict[str, str]:
        return {
            r.id: "countdown: x is 2"
            for r in runs
            if r.state == "running" and r.config["x"] == 2 and r.metric_history
        }


class Checkpoint(Scheduler):
    """Suggests x = 1, 2, 3, then nothing; stops the run of x == 2 at its 2nd value."""

    checkpoints = frozenset({2})

    def suggest(self, runs: Sequence[RunRecord], n: int) -> list[dict[str, Any]]:
        return [{"x": x, "epochs": 5} for x in (1, 2, 3)[len(runs) : len(runs) + n]]

    def on_result(self, run: RunRecord, runs: Sequence[RunRecord]) -> str | None:
        if run.config["x"] == 2 and len(run.metric_history) >= 2:
            return "checkpoint: x is 2"
        return None
