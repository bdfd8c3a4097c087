"""Train functions that misbehave as real ones do; importable, so agents find them by reference.

Each does its thing for the run whose ``x`` equals ``config.at`` and finishes the others.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbsweep
from nbsweep.agents._gpus import get_nvml
from tests.waiting import held_until

# Grows by one per run its process executes: a leak the next run of the same process sees.
LEAK: list[bytes] = []


class Ended(BaseException):
    """Not an Exception: what a library's own control flow might raise."""


def ends_badly(config: Any) -> Any:
    """Run ``at`` ends as ``config.how`` says; every run reports the process it ran in."""
    nbsweep.log({"loss": float(config.x), "pid": os.getpid()})
    if config.x != config.at:
        return {"pid": os.getpid()}
    how = config.how
    if how == "object":
        return {"loss": 0.5, "model": object()}
    if how == "keyboard":
        raise KeyboardInterrupt
    if how == "exit":
        sys.exit(3)
    if how == "base":
        raise Ended("a BaseException of its own")
    if how == "oom":
        uuid = os.environ.get("CUDA_VISIBLE_DEVICES")
        if uuid:
            get_nvml().set(uuid, used=15 * 2**30)
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    raise AssertionError(f"unknown how={how!r}")


def spawns(config: Any) -> None:
    """Run ``at`` starts ``sleep`` children, a grandchild and a child in a session of its own,
    writes their pids to ``config.pids``, then ends as ``config.how`` says; the others wait
    at ``config.gate``."""
    nbsweep.log({"loss": float(config.x)})
    if config.x != config.at:
        held_until(config.gate)
        return
    pids = Path(config.pids)
    sleeper = subprocess.Popen(["sleep", "1000"])
    grand = pids / "grandchild"
    parent = subprocess.Popen(["sh", "-c", f"sleep 1002 & echo $! > {grand}.tmp; wait"])
    held_until(f"{grand}.tmp")
    while not Path(f"{grand}.tmp").read_text().strip():
        pass  # sh writes the pid right after creating the file
    os.replace(f"{grand}.tmp", grand)
    found = [sleeper.pid, parent.pid, int(grand.read_text())]
    if config.how != "dies":  # nothing can reach it once its agent is SIGKILLed
        found.append(subprocess.Popen(["sleep", "1001"], start_new_session=True).pid)
    (pids / "all").write_text(" ".join(map(str, found)))
    if config.how == "hold":
        held_until(config.gate)
    elif config.how == "dies":
        os._exit(9)


def stalls(config: Any) -> None:
    """The first run waits at ``config.gate`` (where the test stops its agent); the run
    queued again in its place, and every other, finishes."""
    ready = Path(config.gate).with_name("ready")
    if not ready.exists():
        ready.write_text(str(os.getpid()))
        held_until(config.gate)
    nbsweep.log({"loss": float(config.x)})


def leaks(config: Any) -> None:
    """Keeps something of every run in the process: what ``fresh_process`` throws away."""
    LEAK.append(b"weights")
    nbsweep.log({"loss": float(config.x), "kept": len(LEAK), "pid": os.getpid()})


def holds_gpu_memory(config: Any) -> None:
    """Leaves 1 GiB more on its (fake) GPU than it found: the next run starts on it."""
    nvml = get_nvml()
    uuid = os.environ["CUDA_VISIBLE_DEVICES"]
    used = nvml.gpus[0]["used"]
    nvml.set(uuid, used=used + 2**30)
    nbsweep.log({"loss": float(config.x), "torch": "torch" in sys.modules})
