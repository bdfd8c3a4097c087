"""Waiting for what real processes do in their own time: no test sleeps a fixed while, and no
test counts on a run or a sweep still going by the time it looks.

A test that needs a run in progress holds it at a gate: the train function calls
``held_until(config.gate)``, and the run goes on once the test opens the gate (creates the
file). A sweep that must still be running when the test acts on it has no end of its own
(random search, no ``run_cap``) or a run held at a gate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_for(condition: Callable[[], Any], what: str = "condition", timeout: float = 60.0) -> None:
    """Return once ``condition()`` is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met in {timeout:g} s"
        time.sleep(0.05)


def held_until(gate: str | os.PathLike[str], timeout: float = 120.0) -> None:
    """In a train function: return once the test opened ``gate`` (created the file)."""
    wait_for(Path(gate).exists, f"gate {gate} opened", timeout)


def meet(where: str | os.PathLike[str], count: int, timeout: float = 120.0) -> None:
    """In a train function: return once ``count`` runs have come to the directory ``where``,
    so that the first ``count`` runs can only end with ``count`` agents taking one each."""
    folder = Path(where)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{os.getpid()}-{time.monotonic_ns()}").touch()
    wait_for(lambda: len(list(folder.iterdir())) >= count, f"{count} runs at {where}", timeout)
