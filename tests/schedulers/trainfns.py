"""Train functions of the Launch tests; importable, so agents load them by reference."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbsweep
from tests.waiting import meet, wait_for

# Every metric.name the seed documents' configs use.
SEED_METRICS = (
    "loss_metric",
    "epoch/val_loss",
    "val_loss",
    "val_f1_score",
    "val_perplexity",
    "vqa_accuracy",
)


def _level(config: Mapping[str, Any]) -> float:
    numbers = [
        v for v in config.values() if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    return sum(abs(float(v)) for v in numbers) % 10.0


def seed_job(config: Any) -> None:
    """Three epochs of every seed-document metric, at a level set by the run's parameters."""
    level = _level(config)
    for epoch in range(3):
        nbsweep.log({**{name: level + 1.0 / (epoch + 1) for name in SEED_METRICS}, "epoch": epoch})


def learning_curve(config: Any) -> None:
    """``epochs`` epochs of 30 ms; the farther ``lr`` is from 1e-2, the worse every epoch."""
    for epoch in range(int(config.epochs)):
        time.sleep(0.03)
        loss = (math.log10(config.lr) + 2.0) ** 2 + 1.0 / (epoch + 1)
        nbsweep.log({"loss": loss, "epoch": epoch})


def quick(config: Any) -> None:
    """``epochs`` rows at once."""
    for epoch in range(int(config.epochs)):
        nbsweep.log({"loss": float(config.x), "epoch": epoch})


def busy(config: Any) -> None:
    """``epochs`` rows 0.1 s apart: a run that holds its agent a while. With ``gate`` (a
    directory), run x starts only once the test created ``<gate>/<x>`` or ``<gate>/all``."""
    if config.get("gate"):
        gate = Path(config.gate)
        wait_for(lambda: (gate / str(config.x)).exists() or (gate / "all").exists(), "gate", 120)
    for epoch in range(int(config.epochs)):
        time.sleep(0.1)
        nbsweep.log({"loss": float(config.x), "epoch": epoch})


def environment(config: Any) -> dict[str, str]:
    """What the run sees of its environment: a forwarded variable and its GPUs; with
    ``meet``, once two runs met there (so each of two agents takes one)."""
    if config.get("meet"):
        meet(config.meet, 2)
    nbsweep.log({"loss": float(config.x)})
    return {
        "token": os.environ.get("NBSWEEP_TEST_TOKEN", "<unset>"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"),
    }
