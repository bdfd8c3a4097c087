"""Random search: every parameter at ``ppf(U)``, U uniform, as W&B samples (spec §7)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nbsweep._runs import RunRecord
from nbsweep.config import SweepConfig
from nbsweep.search._base import Searcher


def derive_rng(seed: int | None, *keys: int) -> np.random.Generator:
    """A generator fixed by ``seed`` and ``keys``, or fresh entropy when ``seed`` is None.

    Searchers keep no state between calls, so their randomness is keyed by what the call
    sees (how many runs exist, which suggestion of the batch): a restarted controller that
    asks again with the same runs gets the same answer.
    """
    if seed is None:
        return np.random.default_rng()
    # SeedSequence takes non-negative words only; negative seeds map to distinct words.
    words = [int(seed) % 2**64, *(int(k) for k in keys)]
    return np.random.default_rng(np.random.SeedSequence(words))


class RandomSearch(Searcher):
    """Independent draws from each parameter's distribution; never exhausted."""

    def __init__(self, config: SweepConfig, seed: int | None = None) -> None:
        super().__init__(config, seed)
        self.space = config.space

    def suggest(self, runs: Sequence[RunRecord], n: int = 1) -> list[dict[str, Any]]:
        """``n`` fresh samples; with a seed, the k-th run of the sweep is keyed by (seed, k).

        Keying by the run's position alone (not by batch) makes a seeded sweep draw the same
        configs however the controller happens to batch its requests.
        """
        if self.seed is None:
            rng = np.random.default_rng()
            return [self.space.sample(rng) for _ in range(n)]
        return [self.space.sample(derive_rng(self.seed, len(runs) + i)) for i in range(n)]
