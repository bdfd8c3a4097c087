"""W&B's names for the sweep workflow, on nbsweep: ``from nbsweep import wandb``.

Code written for W&B Sweeps runs with that one changed line: ``wandb.sweep`` creates the
sweep in the store, ``wandb.agent`` runs it in agent processes, and inside each run
``wandb.init``, ``wandb.config``, ``wandb.log``, ``run.summary`` and ``wandb.finish`` record
into it. Nothing is sent to W&B's servers. docs/wandb.md has the table of supported calls.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nbsweep.wandb import _sdk
from nbsweep.wandb._sdk import (
    IGNORED_CALLS,
    IGNORED_CLASSES,
    AlertLevel,
    CommError,
    ConfigError,
    Error,
    Run,
    UsageError,
    WandbNote,
    alert,
    define_metric,
    finish,
    init,
    log,
    log_artifact,
    login,
    plot,
    restore,
    save,
    termerror,
    termlog,
    termwarn,
    unwatch,
    use_artifact,
    watch,
)

if TYPE_CHECKING:
    from nbsweep.wandb._sweeps import agent, sweep

__all__ = [
    "AlertLevel",
    "CommError",
    "ConfigError",
    "Error",
    "Run",
    "WandbNote",
    "agent",
    "alert",
    "define_metric",
    "finish",
    "init",
    "log",
    "log_artifact",
    "login",
    "plot",
    "restore",
    "save",
    "sweep",
    "termerror",
    "termlog",
    "termwarn",
    "UsageError",
    "unwatch",
    "use_artifact",
    "watch",
    *IGNORED_CALLS,
    *IGNORED_CLASSES,
]

globals().update({name: getattr(_sdk, name) for name in (*IGNORED_CALLS, *IGNORED_CLASSES)})


def __getattr__(name: str) -> Any:
    """``wandb.run``, ``wandb.config``, ``wandb.summary`` (the current run's), and
    ``sweep``/``agent``, loaded on first use: agents import this package for every run."""
    if name in ("sweep", "agent"):
        return getattr(importlib.import_module("nbsweep.wandb._sweeps"), name)
    return _sdk.__getattr__(name)
