"""Early termination: which running runs stop, and the bands a view draws.

``hyperband`` is W&B's rule, kept exactly; ``asha`` is nbsweep's asynchronous successive
halving; ``multifidelity`` is ASHA with a model of the curves that keeps slow starters. All are
stateless: every call gets every run of the sweep.
"""

from __future__ import annotations

from nbsweep.config import SweepConfig
from nbsweep.stopping._asha import Asha, asha_rungs
from nbsweep.stopping._base import Band, StopDecision, Stopper
from nbsweep.stopping._hyperband import Hyperband, hyperband_bands
from nbsweep.stopping._multifidelity import MultiFidelity

__all__ = [
    "Asha",
    "Band",
    "Hyperband",
    "MultiFidelity",
    "StopDecision",
    "Stopper",
    "asha_rungs",
    "hyperband_bands",
    "make_stopper",
]

_STOPPERS: dict[str, type[Stopper]] = {
    "hyperband": Hyperband,
    "asha": Asha,
    "multifidelity": MultiFidelity,
}


def make_stopper(config: SweepConfig) -> Stopper | None:
    """The stopper a sweep config asks for in ``early_terminate``; None when it has none."""
    if config.early_terminate is None:
        return None
    return _STOPPERS[config.early_terminate.type](config)
