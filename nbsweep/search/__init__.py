"""Search methods: from the runs so far, suggest the next run configs (grid, random, bayes)."""

from __future__ import annotations

from nbsweep._errors import SweepError
from nbsweep.config import SweepConfig
from nbsweep.search._base import Searcher
from nbsweep.search._bayes import BayesSearch
from nbsweep.search._grid import GridSearch
from nbsweep.search._multifidelity import MultiFidelitySearch
from nbsweep.search._random import RandomSearch

__all__ = [
    "BayesSearch",
    "GridSearch",
    "MultiFidelitySearch",
    "RandomSearch",
    "Searcher",
    "make_searcher",
]

_METHODS: dict[str, type[Searcher]] = {
    "grid": GridSearch,
    "random": RandomSearch,
    "bayes": BayesSearch,
}


def make_searcher(config: SweepConfig, seed: int | None = None) -> Searcher:
    """The searcher for the config's ``method``; ``seed`` overrides the config's ``seed``."""
    method = config.method
    if method == "custom":
        raise SweepError(
            "method 'custom' needs a scheduler; none is registered yet: "
            "use method grid, random or bayes"
        )
    cls = _METHODS.get(method)
    early_terminate = config.early_terminate
    if (
        method == "bayes"
        and early_terminate is not None
        and early_terminate.type == "multifidelity"
    ):
        # Bayes learns from every run's curve, stopped runs included (docs/config.md).
        cls = MultiFidelitySearch
    if cls is None:
        raise SweepError(f"method: unknown search method {method!r}; use grid, random or bayes")
    return cls(config, seed)
