"""Sweep configs: W&B's schema, distribution inference, validation with key paths, YAML."""

from __future__ import annotations

from nbsweep._errors import ConfigError
from nbsweep.config._distributions import (
    DISTRIBUTIONS,
    GRID_DISTRIBUTIONS,
    V1_LOG_DISTRIBUTIONS,
    DistributionSpec,
)
from nbsweep.config._sweep_config import (
    EarlyTerminate,
    Metric,
    SchedulerSpec,
    SweepConfig,
    validate,
)
from nbsweep.config._validate import (
    SCHEDULER_GROUP,
    ConfigWarning,
    known_scheduler_names,
    register_scheduler_name,
)
from nbsweep.config._yaml import load_yaml

__all__ = [
    "DISTRIBUTIONS",
    "SCHEDULER_GROUP",
    "GRID_DISTRIBUTIONS",
    "V1_LOG_DISTRIBUTIONS",
    "ConfigError",
    "ConfigWarning",
    "DistributionSpec",
    "EarlyTerminate",
    "Metric",
    "SchedulerSpec",
    "SweepConfig",
    "known_scheduler_names",
    "load_yaml",
    "register_scheduler_name",
    "validate",
]
