"""Sweep configs: W&B's schema, distribution inference, validation with key paths, YAML."""

from __future__ import annotations

from nbsweep._errors import ConfigError
from nbsweep.config._distributions import (
    DISTRIBUTIONS,
    GRID_DISTRIBUTIONS,
    V1_LOG_DISTRIBUTIONS,
    DistributionSpec,
)
from nbsweep.config._validate import ConfigWarning, validate
from nbsweep.config._yaml import load_yaml

__all__ = [
    "DISTRIBUTIONS",
    "GRID_DISTRIBUTIONS",
    "V1_LOG_DISTRIBUTIONS",
    "ConfigError",
    "ConfigWarning",
    "DistributionSpec",
    "load_yaml",
    "validate",
]
