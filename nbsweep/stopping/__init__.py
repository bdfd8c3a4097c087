"""Early termination: which running runs stop, and the bands a view draws.

``hyperband`` is W&B's rule, kept exactly; ``asha`` is nbsweep's asynchronous successive
halving. Both are stateless: every call gets every run of the sweep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nbsweep._errors import ConfigError
from nbsweep.stopping._asha import Asha, asha_rungs
from nbsweep.stopping._base import Band, StopDecision, Stopper
from nbsweep.stopping._hyperband import Hyperband, hyperband_bands

__all__ = [
    "Asha",
    "Band",
    "Hyperband",
    "StopDecision",
    "Stopper",
    "asha_rungs",
    "hyperband_bands",
    "make_stopper",
]

_STOPPERS: dict[str, type[Stopper]] = {"hyperband": Hyperband, "asha": Asha}


def make_stopper(config: Mapping[str, Any]) -> Stopper | None:
    """The stopper a sweep config asks for in ``early_terminate``; None when it has none."""
    early_terminate = config.get("early_terminate")
    if not early_terminate:
        return None
    kind = early_terminate.get("type") if isinstance(early_terminate, Mapping) else None
    if kind not in _STOPPERS:
        raise ConfigError(
            f"early_terminate.type: {kind!r} is not one of {', '.join(sorted(_STOPPERS))}"
        )
    return _STOPPERS[kind](config)
