"""Train functions that fail in every way a real one does; importable, so agents find them.

Each logs two rows and then, for the run whose ``x`` equals ``config.fault_at``, stops at a
gate (``config.gate``: a directory) until the test has noted the rows logged so far, and only
then meets its fault.
"""

from __future__ import annotations

import datetime
import decimal
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import nbsweep

# A ``program:`` that logs once, then ignores SIGTERM and runs until it is SIGKILLed.
STUBBORN_PROGRAM = (
    "import signal, time, nbsweep\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "nbsweep.log({'loss': 1.0})\n"
    "while True:\n"
    "    time.sleep(1)\n"
)


def _rows(config: Any) -> None:
    for step in range(2):
        nbsweep.log({"loss": float(config.x) + step / 10, "epoch": step})


def _at_fault(config: Any) -> bool:
    """True for the faulty run, once the test let it through the gate."""
    if config.x != config.get("fault_at"):
        return False
    gate = Path(config.gate)
    (gate / "ready").touch()
    deadline = time.monotonic() + 60
    while not (gate / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return True


def _child(config: Any) -> None:
    """A process the run starts (a data loader, a server) that would run for 10 minutes:
    its command line names the test's directory, so the matrix counts it if it is left."""
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", config.gate])


def raises(config: Any) -> None:
    _rows(config)
    if _at_fault(config):
        raise ValueError(f"x={config.x} is cursed")


def exits(config: Any) -> None:
    """Starts a child, then ends its agent as a segfaulting library would."""
    _rows(config)
    if _at_fault(config):
        _child(config)
        print("about to exit", flush=True)
        os._exit(7)


def sigkills(config: Any) -> None:
    """Starts a child, then ends its agent as the OOM killer would."""
    _rows(config)
    if _at_fault(config):
        _child(config)
        os.kill(os.getpid(), signal.SIGKILL)


def hangs(config: Any) -> None:
    """Starts a child, then hangs for good: ignores SIGTERM, swallows RunStopped, never
    logs again."""
    _rows(config)
    if _at_fault(config):
        _child(config)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            try:
                time.sleep(3600)
            except BaseException:  # noqa: B036 - the point: nothing stops it but SIGKILL
                continue


def eats_memory(config: Any) -> None:
    """Runs out of address space: the run gets 256 MiB more than the agent already uses."""
    _rows(config)
    if _at_fault(config):
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        in_use = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGESIZE")
        resource.setrlimit(resource.RLIMIT_AS, (in_use + 256 * 2**20, hard))
        try:
            weights = bytearray(8 * 2**30)  # an 8 GiB model
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        nbsweep.log({"loss": float(len(weights))})


def odd_metrics(config: Any) -> None:
    """``loss`` as NaN, inf, a string, never, or a number, by ``config.kind``."""
    kind = config.kind
    values = {"nan": float("nan"), "inf": float("inf"), "text": "high", "number": 0.25}
    for step in range(3):
        row: dict[str, Any] = {"acc": 0.5 + step / 10, "epoch": step}
        if kind in values:
            row["loss"] = values[kind]
        nbsweep.log(row)


def _refused() -> list[tuple[dict[str, Any], Any, str]]:
    """What ``nbsweep.log`` must refuse, with the name its error must give."""
    loop: list[Any] = [1.0]
    loop.append(loop)
    return [
        ({"loss": 1.0}, "5", "step"),
        ({"loss": 1.0}, 2**70, "step"),
        ({"loss": 1.0}, 2.5, "step"),
        ({"loss": 1.0}, -1, "step"),
        ({"run_id": "elsewhere"}, None, "'run_id'"),
        ({"_step": 3}, None, "'_step'"),
        ({"price": decimal.Decimal("1.5")}, None, "'price'"),
        ({"when": datetime.datetime(2024, 1, 1)}, None, "'when'"),
        ({"raw": b"bytes"}, None, "'raw'"),
        ({"pairs": {(1, 2): 1.0}}, None, "'pairs'"),
        ({"loop": loop}, None, "'loop[1]'"),
    ]


def odd_logs(config: Any) -> dict[str, int]:
    """``nbsweep.log`` as a careless user calls it: 100 rows from four threads at once, every
    value, step and name the value policy refuses (each must raise ``ValueError`` naming
    it), then a numpy step and one past 2**31. Returns how many were refused by name."""

    def rows() -> None:
        for _ in range(25):
            nbsweep.log({"loss": float(config.x), "thread": threading.get_ident() % 1000})

    threads = [threading.Thread(target=rows) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tried = _refused()
    named = 0
    for row, step, name in tried:
        try:
            nbsweep.log(row, step=step)
        except ValueError as exc:
            named += name in str(exc)
    nbsweep.log({"loss": 0.5}, step=np.int64(1000))
    nbsweep.log({"loss": 0.25}, step=2**40)
    return {"tried": len(tried), "refused_by_name": named}


def held(config: Any) -> None:
    """``config.epochs`` rows; after the third it waits until the test opens ``config.gate``.

    So the test acts (kills, restarts, opens the sweep elsewhere) while runs are mid-way.
    """
    go = Path(config.gate) / "go"
    deadline = time.monotonic() + 120
    for epoch in range(int(config.epochs)):
        nbsweep.log({"loss": float(config.x), "epoch": epoch})
        while epoch == 2 and not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)


def noop(config: Any) -> None:
    """Does nothing: the sweep machinery alone."""


def one_row(config: Any) -> None:
    """One row: the sweep machinery and the store, little else."""
    nbsweep.log({"loss": float(config.x + config.y)})
