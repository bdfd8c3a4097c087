"""Train functions of the GPU pool and cost tests; importable, so they travel by reference."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import nbsweep
from nbsweep.agents._gpus import get_nvml
from tests.waiting import held_until


def busy(config: Any) -> None:
    """``epochs`` rows 0.1 s apart: a run that holds its GPU a while; with ``gate``, it
    starts only once the test opened it."""
    if config.get("gate"):
        held_until(config.gate)
    for epoch in range(int(config.epochs)):
        time.sleep(0.1)
        nbsweep.log({"loss": float(config.x), "epoch": epoch})


def loads_gpu(config: Any) -> None:
    """Fills ``mem_mb`` MiB of its (fake) GPU, then half of it, then frees it."""
    gpu = get_nvml()
    uuid = os.environ["CUDA_VISIBLE_DEVICES"]
    for epoch, used in enumerate([config.mem_mb] * 3 + [config.mem_mb // 2] * 3):
        gpu.set(uuid, used=used * 2**20)
        time.sleep(0.1)
        nbsweep.log({"loss": float(used), "epoch": epoch})
    gpu.set(uuid, used=0)


def learns(config: Any) -> None:
    """``epochs`` epochs 50 ms each of a curve at level ``x``: worse x, worse at every epoch."""
    for epoch in range(int(config.epochs)):
        time.sleep(0.05)
        nbsweep.log({"loss": float(config.x) + 1.0 / (epoch + 1), "epoch": epoch})


def together(config: Any) -> dict[str, str]:
    """Waits until ``config.n`` runs have started (files in ``config.meet``), so they can only
    finish if that many agents run at once; returns the GPUs its agent was given."""
    meet = Path(config.meet)
    (meet / f"{os.getpid()}-{time.monotonic_ns()}").touch()
    deadline = time.monotonic() + 60
    while len(list(meet.iterdir())) < int(config.n):
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(list(meet.iterdir()))} of {config.n} runs met")
        time.sleep(0.02)
    nbsweep.log({"loss": float(config.x)})
    return {"cuda_visible_devices": os.environ["CUDA_VISIBLE_DEVICES"]}
