"""Errors users can catch; each message says what to change."""

from __future__ import annotations


class NbsweepError(Exception):
    """Base class of every error nbsweep raises on purpose."""


class ConfigError(NbsweepError, ValueError):
    """A sweep config is invalid; ``problems`` lists every ``key.path: message``."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        count = len(self.problems)
        head = "invalid sweep config" if count == 1 else f"invalid sweep config ({count} problems)"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


class RunStopped(BaseException):  # noqa: N818 - the user's word for it
    """Raised by ``nbsweep.log`` when the run must stop (early termination, stop, cancel).

    A ``BaseException`` so that ``except Exception`` in training code does not swallow it.
    """


class StoreError(NbsweepError):
    """The store cannot be opened or used (bad URL, foreign or newer schema, corrupt file)."""


class StoreFault(StoreError):
    """The store stopped taking writes for a while (its disk is full, it is read-only, its
    server is gone); the message says what to fix. What was written before is kept."""


class SweepError(NbsweepError):
    """A sweep-level problem; the precise kinds below are subclasses, so this catches all."""


class SweepNotFoundError(SweepError, LookupError):
    """No sweep with this id in the store: check the id, and that the store is the one it
    was started in (``nbsweep.list_sweeps(store=...)`` lists the sweeps of a store)."""


class ShippingError(SweepError):
    """The train function cannot reach the agents: it cannot be pickled, imported or called
    with a run config; the message names the culprit and how to fix it."""


class PlacementError(SweepError):
    """Agents cannot be placed as asked: GPUs (``workers``, ``gpus_per_run``,
    ``CUDA_VISIBLE_DEVICES``), queues (``register_queue``) or the Dask cluster."""


class SweepStateError(SweepError):
    """The sweep is in the wrong state for the action (resuming a finished sweep, taking over
    one another live process controls); the message says what to do instead."""
