"""Process entry points for store tests (spawned, so they must be importable)."""

from __future__ import annotations

from nbsweep.store import Finish, open_store


def claim_all(url: str, sweep_id: str, agent: int) -> list[str]:
    """Claim and finish runs until none is left; returns the ids this process claimed."""
    store = open_store(url)
    claimed: list[str] = []
    finish = None
    while True:
        claim = store.claim(sweep_id, agent, finish=finish)
        if claim is None:
            return claimed
        claimed.append(claim.run_id)
        finish = Finish(claim.run_id, "finished", {"agent": agent})
