"""Train functions the runtime tests sweep; importable, so they travel by reference."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import nbsweep
from tests.waiting import held_until, meet


def quadratic(config: Any) -> dict[str, float]:
    """Logs ``loss`` for ``epochs`` steps; the loss is ``(x - 3)^2`` plus a decay."""
    epochs = int(config.get("epochs", 1))
    loss = 0.0
    for epoch in range(epochs):
        loss = (config.x - 3) ** 2 + 1.0 / (epoch + 1)
        nbsweep.log({"loss": loss, "epoch": epoch})
    return {"final": loss}


def gated(config: Any) -> None:
    """Logs ``epochs`` rows, stopping after ``hold_at`` of them (default 0) until the test
    opens the file ``gate``: so the test steers the run mid-way. Only runs whose x is at
    least ``hold_from`` stop there, when given."""
    held = config.x >= config.get("hold_from", config.x)
    for epoch in range(int(config.epochs)):
        if held and epoch == config.get("hold_at", 0):
            held_until(config.gate)
        nbsweep.log({"loss": float(config.x), "epoch": epoch})


def fails(config: Any) -> None:
    nbsweep.log({"loss": 1.0})
    raise ValueError(f"bad x {config.x}")


def fails_while_flagged(config: Any) -> None:
    """Fails while the file ``config.flag`` exists (a bug fixed between two tries)."""
    nbsweep.log({"loss": float(config.x)})
    if Path(config.flag).exists():
        raise ValueError(f"bad x {config.x}")


def exits(config: Any) -> None:
    """Crashes the agent process when x == 1 (as a segfaulting library would)."""
    nbsweep.log({"loss": 1.0})
    if config.x == 1:
        print("about to exit", flush=True)
        os._exit(7)


def sigkills(config: Any) -> None:
    """Kills its own agent with SIGKILL when x == 1 (as the OOM killer would)."""
    if config.x == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    nbsweep.log({"loss": float(config.x)})


def environment(config: Any) -> dict[str, str]:
    """Returns the GPU environment the agent received; with ``meet``, once two runs met there
    (so each of two agents takes one)."""
    if config.get("meet"):
        meet(config.meet, 2)
    return {
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"),
        "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER", "<unset>"),
    }


def curve(config: Any) -> None:
    """``epochs`` values of ``config.x`` each: a flat learning curve at level x."""
    for epoch in range(int(config.epochs)):
        nbsweep.log({"loss": float(config.x), "epoch": epoch})


def noop(config: Any) -> None:
    """Does nothing: measures the sweep machinery itself."""


def stubborn_curve(config: Any) -> None:
    """A flat curve at level x whose author wraps ``log`` in ``except Exception``."""
    swallowed = 0
    for epoch in range(int(config.epochs)):
        try:
            nbsweep.log({"loss": float(config.x), "epoch": epoch})
        except Exception:  # the point: RunStopped must not land here
            swallowed += 1
    nbsweep.log({"swallowed": swallowed})


def durable(config: Any) -> dict[str, list[int]]:
    """After each log, counts this run's rows through a brand-new connection."""
    import sqlalchemy as sa

    from nbsweep._train import current_run

    run = current_run()
    assert run is not None
    engine = sa.create_engine(run.store.url)
    seen = []
    for epoch in range(3):
        nbsweep.log({"loss": float(epoch)})
        with engine.connect() as conn:
            seen.append(
                conn.execute(
                    sa.text("SELECT count(*) FROM nbsweep_rows WHERE run_id = :r"),
                    {"r": run.run_id},
                ).scalar()
            )
    engine.dispose()
    return {"seen": seen}


def target_then_gate(config: Any) -> None:
    """One row of ``(x - 3)^2``; the runs after x == 3, which reaches the target, wait at
    ``gate``: so the rest of the grid cannot run before the sweep notices the target."""
    nbsweep.log({"loss": float((config.x - 3) ** 2)})
    if config.x > 3:
        held_until(config.gate)
