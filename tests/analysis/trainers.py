"""Train functions of the analysis tests; importable, so agents load them by name."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np

import nbsweep


def noisy(config: Any) -> dict[str, Any]:
    """loss = (x - 3)^2 plus noise from the global generators the confirmation seeds."""
    noise = random.random() + float(np.random.random())
    nbsweep.log({"loss": (config.x - 3) ** 2 + 0.01 * noise})
    return {
        "seed_env": os.environ.get("NBSWEEP_SEED"),
        "hash_env": os.environ.get("PYTHONHASHSEED"),
    }


def expected(x: float, seed: int) -> float:
    """What ``noisy`` logs for ``x`` once its generators are seeded with ``seed``."""
    noise = random.Random(seed).random() + float(np.random.RandomState(seed).random_sample())
    return (x - 3) ** 2 + 0.01 * noise


def unseeded(config: Any) -> None:
    """The same measurement, logged under another name the confirmation does not know."""
    nbsweep.log({"other": 1.0})


def bowl(config: Any) -> None:
    """A 3-parameter objective: best at lr=1e-2, depth=4, opt='adam'."""
    loss = (np.log10(config.lr) + 2) ** 2 + 0.1 * (config.depth - 4) ** 2
    nbsweep.log({"loss": loss + (0.0 if config.opt == "adam" else 0.5)})


def branches(config: Any) -> None:
    """Two optimizers, momentum only for sgd: best with adam, then sgd at momentum 0.8."""
    if config.optimizer == "adam":
        assert "momentum" not in config  # inactive: absent from the run's config
        nbsweep.log({"loss": 0.0})
    else:
        nbsweep.log({"loss": 1.0 + (config.momentum - 0.8) ** 2})
