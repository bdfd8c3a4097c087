"""Train functions of the GPU pool and cost tests; importable, so they travel by reference."""

from __future__ import annotations

import os
import time
from typing import Any

import nbsweep
from nbsweep.agents._gpus import get_nvml


def busy(config: Any) -> None:
    """``epochs`` rows 0.1 s apart: a run that holds its GPU a while."""
    for epoch in range(int(config.epochs)):
        time.sleep(0.1)
        nbsweep.log({"loss": float(config.x), "epoch": epoch})


def loads_gpu(config: Any) -> None:
    """Puts ``util`` % and ``mem_mb`` MiB on its (fake) GPU, then half the memory."""
    gpu = get_nvml()
    uuid = os.environ["CUDA_VISIBLE_DEVICES"]
    gpu.set(uuid, util=config.util, used=config.mem_mb * 2**20)
    for epoch in range(6):
        if epoch == 3:
            gpu.set(uuid, used=config.mem_mb * 2**19)
        time.sleep(0.1)
        nbsweep.log({"loss": float(config.util), "epoch": epoch})


def learns(config: Any) -> None:
    """``epochs`` epochs 50 ms each of a curve at level ``x``: worse x, worse at every epoch."""
    for epoch in range(int(config.epochs)):
        time.sleep(0.05)
        nbsweep.log({"loss": float(config.x) + 1.0 / (epoch + 1), "epoch": epoch})
