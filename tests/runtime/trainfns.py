"""Train functions the runtime tests sweep; importable, so they travel by reference."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import nbsweep


def quadratic(config: Any) -> dict[str, float]:
    """Logs ``loss`` for ``epochs`` steps; the loss is ``(x - 3)^2`` plus a decay."""
    epochs = int(config.get("epochs", 1))
    loss = 0.0
    for epoch in range(epochs):
        loss = (config.x - 3) ** 2 + 1.0 / (epoch + 1)
        nbsweep.log({"loss": loss, "epoch": epoch})
    return {"final": loss}


def slow(config: Any) -> None:
    """Logs a row every 50 ms for ``epochs`` rows (long enough to steer mid-run)."""
    for epoch in range(int(config.get("epochs", 100))):
        nbsweep.log({"loss": float(config.x), "epoch": epoch})
        time.sleep(0.05)


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
    """Returns the GPU environment the agent received."""
    time.sleep(0.2)  # long enough that every agent takes a run
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


def slow_target(config: Any) -> None:
    """One row of ``(x - 3)^2``, then a pause, so a target reached stops the sweep early."""
    nbsweep.log({"loss": float((config.x - 3) ** 2)})
    time.sleep(0.1)
