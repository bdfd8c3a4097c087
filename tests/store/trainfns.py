"""Train functions of the value-policy tests; importable, so they travel by reference."""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import torch

import nbsweep


def logs_every_kind(config: Any) -> dict[str, Any]:
    """Logs numpy steps and one value of each kind ``log`` accepts; the ``bad`` run returns a
    summary value the policy refuses."""
    for k in range(3):
        nbsweep.log(
            {
                "loss": np.float32(0.5 * k),
                "acc": torch.tensor(0.25),
                "count": np.int64(k),
                "grid": np.arange(4).reshape(2, 2),
                "nan": float("nan"),
                "note": "ok",
                "flag": np.bool_(True),
                "extra": {"lrs": [1e-3, None]},
            },
            step=np.int64(10 * k),
        )
    if config.x == "bad":
        return {"when": datetime.datetime(2024, 1, 1)}
    return {"best": np.float64(0.0)}
