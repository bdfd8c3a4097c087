"""nbsweep: W&B-style hyperparameter sweeps that live in a Jupyter notebook.

Public names are loaded on first use so ``import nbsweep`` stays cheap in agents and CLIs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nbsweep._errors import (
    ConfigError,
    NbsweepError,
    PlacementError,
    RunStopped,
    ShippingError,
    StoreError,
    StoreFault,
    SweepError,
    SweepNotFoundError,
    SweepStateError,
)

__version__ = "0.1.0"

_LAZY = {
    "validate": "nbsweep.config",
    "train": "nbsweep._train",
    "log": "nbsweep._train",
    "sweep": "nbsweep._sweep",
    "load": "nbsweep._sweep",
    "list_sweeps": "nbsweep._sweep",
    "Sweep": "nbsweep._sweep",
    "Run": "nbsweep._sweep",
    "agent": "nbsweep.agents",
    "register_scheduler": "nbsweep.schedulers",
    "register_queue": "nbsweep.schedulers._launch",
}

__all__ = [
    "ConfigError",
    "NbsweepError",
    "PlacementError",
    "Run",
    "RunStopped",
    "ShippingError",
    "StoreError",
    "StoreFault",
    "Sweep",
    "SweepError",
    "SweepNotFoundError",
    "SweepStateError",
    "agent",
    "list_sweeps",
    "load",
    "log",
    "register_queue",
    "register_scheduler",
    "sweep",
    "train",
    "validate",
]

if TYPE_CHECKING:
    from nbsweep._sweep import Run, Sweep, list_sweeps, load, sweep
    from nbsweep._train import log, train
    from nbsweep.agents import agent
    from nbsweep.config import validate
    from nbsweep.schedulers import register_scheduler
    from nbsweep.schedulers._launch import register_queue


def __getattr__(name: str) -> Any:
    if name == "wandb":  # the subpackage of W&B's names (``from nbsweep import wandb``)
        return importlib.import_module("nbsweep.wandb")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbsweep' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbsweep``: register ``%%sweep`` and ``%sweep`` (imported only now)."""
    from nbsweep.magic import register

    register(ipython)
