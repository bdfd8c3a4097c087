"""The parameter distributions of W&B sweep configs: which keys each takes, and defaults."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple


class DistributionSpec(NamedTuple):
    """Keys one distribution takes: ``required`` ones, and optional ones with their defaults."""

    required: tuple[str, ...]
    defaults: Mapping[str, Any]

    @property
    def keys(self) -> frozenset[str]:
        """Every key the spec may hold besides ``distribution``."""
        return frozenset(self.required) | frozenset(self.defaults)


def _spec(*required: str, **defaults: Any) -> DistributionSpec:
    return DistributionSpec(tuple(required), MappingProxyType(defaults))


_Q = {"q": 1.0}  # a float default: an omitted q gives float values, as in W&B
_NORMAL = {"mu": 0.0, "sigma": 1.0}
_BETA = {"a": 1, "b": 1}

# Spec §5.2. Order matters only for messages that list candidates.
DISTRIBUTIONS: Mapping[str, DistributionSpec] = MappingProxyType(
    {
        "constant": _spec("value"),
        "categorical": _spec("values"),
        "categorical_w_probabilities": _spec("values", "probabilities"),
        "int_uniform": _spec("min", "max"),
        "uniform": _spec("min", "max"),
        "q_uniform": _spec("min", "max", **_Q),
        "log_uniform_values": _spec("min", "max"),
        "q_log_uniform_values": _spec("min", "max", **_Q),
        "inv_log_uniform_values": _spec("min", "max"),
        "normal": _spec(**_NORMAL),
        "q_normal": _spec(**_Q, **_NORMAL),
        "log_normal": _spec(**_NORMAL),
        "q_log_normal": _spec(**_Q, **_NORMAL),
        "beta": _spec(**_BETA),
        "q_beta": _spec(**_BETA, **_Q),
        "log_uniform": _spec("min", "max"),
        "q_log_uniform": _spec("min", "max", **_Q),
        "inv_log_uniform": _spec("min", "max"),
    }
)

# What grid search can enumerate (spec §6); nested blocks of these are fine too.
GRID_DISTRIBUTIONS: frozenset[str] = frozenset(
    {"constant", "categorical", "int_uniform", "q_uniform"}
)

# W&B's v1 log distributions take natural-log exponents as min/max; each maps to the
# `_values` variant that takes the values themselves.
V1_LOG_DISTRIBUTIONS: Mapping[str, str] = MappingProxyType(
    {
        "log_uniform": "log_uniform_values",
        "q_log_uniform": "q_log_uniform_values",
        "inv_log_uniform": "inv_log_uniform_values",
    }
)

# min is a value whose logarithm is taken, so it must be > 0.
POSITIVE_MIN_DISTRIBUTIONS: frozenset[str] = frozenset(
    {"log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values"}
)

# Every key some parameter spec may hold; a key outside it gets a did-you-mean.
PARAMETER_KEYS: frozenset[str] = frozenset(
    {"distribution", "parameters"}.union(*(spec.keys for spec in DISTRIBUTIONS.values()))
)
