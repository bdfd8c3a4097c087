"""Grid search in W&B's order and with W&B's identity rules (spec §6)."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

from nbsweep._runs import RunRecord
from nbsweep.config import SweepConfig
from nbsweep.search._base import Searcher
from nbsweep.space import GRID_DISTRIBUTIONS


class GridSearch(Searcher):
    """Every combination once, last parameter varying fastest; any run consumes its point.

    A run in any state (failed and killed included) blocks its point, as in W&B: to retry a
    point, remove its run. A run missing one of the grid parameters consumes nothing.

    With conditional parameters (``when``) the grid holds the valid combinations only: a
    parameter comes after those it depends on, and an inactive one is left out of the run.
    """

    def __init__(self, config: SweepConfig, seed: int | None = None) -> None:
        super().__init__(config, seed)
        self.space = config.space
        for p in self.space.parameters:
            if p.distribution not in GRID_DISTRIBUTIONS:
                p.grid_values()  # raises the ConfigError naming the parameter
        # Without conditions the order is W&B's.
        self._axes = [p for p in self.space.order if not p.is_constant]
        self._points = [p.grid_points() for p in self._axes]

    def __len__(self) -> int:
        if self.space.conditional:
            return self.space.grid_size()
        return math.prod(len(keys) for keys, _ in self._points)

    def _combinations(self) -> Iterator[tuple[int, ...]]:
        """Indices into each axis's points (``-1``: inactive), the last axis fastest."""
        if not self.space.conditional:
            return itertools.product(*(range(len(keys)) for keys, _ in self._points))
        return self._branches(0, {}, ())

    def _branches(
        self, start: int, values: dict[tuple[str, ...], Any], combo: tuple[int, ...]
    ) -> Iterator[tuple[int, ...]]:
        order = self.space.order
        for k in range(start, len(order)):
            p = order[k]
            if not self.space.is_active(p, values):
                if not p.is_constant:
                    combo = (*combo, -1)
            elif p.is_constant:
                values = {**values, p.path: p.spec["value"]}
            else:
                j = len(combo)
                for i, value in enumerate(self._points[j][1]):
                    yield from self._branches(k + 1, {**values, p.path: value}, (*combo, i))
                return
        yield combo

    def _seen(self, runs: Sequence[RunRecord]) -> set[tuple[str, ...]]:
        seen = set()
        for run in runs:
            flat = self.space.flatten(run.config)
            on = self.space.active(flat) if self.space.conditional else flat
            if all(p.path in flat for p in self._axes if p.path in on):
                seen.add(
                    tuple(p.identity(flat[p.path]) if p.path in on else "" for p in self._axes)
                )
        return seen

    def suggest(self, runs: Sequence[RunRecord], n: int = 1) -> list[dict[str, Any]]:
        """The next ``n`` unseen grid points; fewer (down to none) once the grid is exhausted."""
        seen = self._seen(runs)
        out: list[dict[str, Any]] = []
        if n <= 0:
            return out
        for combo in self._combinations():
            keys = tuple(self._points[j][0][i] if i >= 0 else "" for j, i in enumerate(combo))
            if keys in seen:
                continue
            seen.add(keys)
            flat = {
                # A private copy, so a train function mutating its config cannot change the grid.
                p.path: copy.deepcopy(self._points[j][1][i])
                for j, (p, i) in enumerate(zip(self._axes, combo, strict=True))
                if i >= 0
            }
            out.append(self.space.nest(flat))
            if len(out) == n:
                break
        return out
