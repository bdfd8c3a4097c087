"""Grid search in W&B's order and with W&B's identity rules (spec §6)."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nbsweep._runs import RunRecord
from nbsweep.search._base import Searcher
from nbsweep.space import GRID_DISTRIBUTIONS, Parameter, Space


def _axis(param: Parameter) -> tuple[list[str], list[Any]]:
    """The distinct grid points of one parameter: identity keys and the values emitted.

    Duplicates (by W&B identity) keep the position of their first occurrence and emit the
    value listed last, as W&B's dict-based dedupe does.
    """
    emitted: dict[str, Any] = {}
    for value in param.grid_values():
        key = param.identity(value)
        emitted[key] = value
    return list(emitted), list(emitted.values())


class GridSearch(Searcher):
    """Every combination once, last parameter varying fastest; any run consumes its point.

    A run in any state (failed and killed included) blocks its point, as in W&B: to retry a
    point, remove its run. A run missing one of the grid parameters consumes nothing.
    """

    def __init__(self, config: Mapping[str, Any], seed: int | None = None) -> None:
        super().__init__(config, seed)
        self.space = Space.from_config(config)
        for p in self.space.parameters:
            if p.distribution not in GRID_DISTRIBUTIONS:
                p.grid_values()  # raises the ConfigError naming the parameter
        self._axes = [p for p in self.space.parameters if not p.is_constant]
        self._points = [_axis(p) for p in self._axes]

    def __len__(self) -> int:
        return math.prod(len(keys) for keys, _ in self._points)

    def _combinations(self) -> Iterator[tuple[int, ...]]:
        return itertools.product(*(range(len(keys)) for keys, _ in self._points))

    def _seen(self, runs: Sequence[RunRecord]) -> set[tuple[str, ...]]:
        seen = set()
        for run in runs:
            flat = self.space.flatten(run.config)
            if all(p.path in flat for p in self._axes):
                seen.add(tuple(p.identity(flat[p.path]) for p in self._axes))
        return seen

    def suggest(self, runs: Sequence[RunRecord], n: int = 1) -> list[dict[str, Any]]:
        """The next ``n`` unseen grid points; fewer (down to none) once the grid is exhausted."""
        seen = self._seen(runs)
        out: list[dict[str, Any]] = []
        if n <= 0:
            return out
        for combo in self._combinations():
            keys = tuple(self._points[j][0][i] for j, i in enumerate(combo))
            if keys in seen:
                continue
            seen.add(keys)
            flat = {
                # A private copy, so a train function mutating its config cannot change the grid.
                p.path: copy.deepcopy(self._points[j][1][i])
                for j, (p, i) in enumerate(zip(self._axes, combo, strict=True))
            }
            out.append(self.space.nest(flat))
            if len(out) == n:
                break
        return out


def grid_size(config: Mapping[str, Any]) -> int:
    """How many runs a grid sweep over ``config`` makes in all (1 for an all-constant grid)."""
    return len(GridSearch(config))
