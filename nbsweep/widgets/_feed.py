"""Snapshots of a live sweep for its dashboards, each costing what changed since the last.

A dashboard refresher calls ``changed()`` (one aggregate query, see ``Store.probe``) and takes
a ``snapshot()`` only when it says so. A snapshot re-reads from the store only the runs that
can still change: from the lowest unsettled run on (queued, running, or ended by someone
else than its agent a moment ago; claims go in queue order, so that is the tail of the
queue). The settled runs before it are kept as read. One runs frame per snapshot, shared by
the header, the table and every tab.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from nbsweep import views
from nbsweep._cost import sweep_cost
from nbsweep._errors import SweepNotFoundError
from nbsweep._frames import progress_of, run_record, runs_frame
from nbsweep._states import SWEEP_LIVE, RunState
from nbsweep._timing import SETTLE_S
from nbsweep.store import StoredRun

# A run its agent ended (finished, failed) is final: the summary came with the state. One
# stopped, killed or crashed under its agent gets its summary and GPU figures when the agent
# reports, once the program has exited: that run can change for a while.
FINAL = frozenset({RunState.FINISHED, RunState.FAILED})


class SweepFeed:
    """The store side of a live dashboard: a cheap change probe and incremental snapshots."""

    def __init__(self, sweep: Any) -> None:
        self.sweep = sweep
        self._store = sweep.store
        self._lock = threading.Lock()  # the refresher thread and the kernel's own redraws
        self._probe: tuple[Any, ...] | None = None
        self._rows: dict[str, StoredRun] = {}  # runs by id, in queue order
        self._records: dict[str, dict[str, Any]] = {}  # their ``Sweep.runs`` records
        self._alive = False  # whether the sweep was live at the last snapshot
        self._warm_start: Any = None
        self.checks = 0  # probes of the store
        self.snapshots = 0  # snapshots taken
        self.full_reads = 0  # snapshots that read every run of the sweep
        self.runs_read = 0  # store rows of runs read back, over all snapshots

    def changed(self) -> bool:
        """Whether the store changed since the last call (the first call says True)."""
        probe = self._store.probe(self.sweep.id)
        with self._lock:
            self.checks += 1
            if probe == self._probe:
                return False
            self._probe = probe
            return True

    def snapshot(self, history: bool = False) -> views.Snapshot:
        """The sweep now; ``history`` adds the logged rows and the bands (the largest reads)."""
        row = self._store.sweep(self.sweep.id)
        if row is None:
            store = self._store.where
            raise SweepNotFoundError(f"sweep {self.sweep.id} is no longer in store {store}")
        state = str(row.state)
        with self._lock:
            # The first look and the look that sees the sweep end read every run, so that
            # the final view is exact whatever settled late.
            full = not self._rows or (self._alive and state not in SWEEP_LIVE)
            self._read_runs(full)
            self._alive = state in SWEEP_LIVE
            if full:
                self._warm_start = self.sweep.warm_start
            rows = list(self._rows.values())
            records = list(self._records.values())
            self.snapshots += 1
        config = row.config
        return views.Snapshot(
            id=str(self.sweep.id),
            name=str(row.name or ""),
            method=str(row.method),
            state=state,
            message=str(row.message or ""),
            config=config,
            created_at=float(row.created_at),
            progress=progress_of(config, rows),
            runs=runs_frame(records),
            agents=self.sweep.agents,
            bands=list(self.sweep.bands()) if history else [],
            history=self.sweep.history() if history else None,
            cost=sweep_cost(config, rows),
            gpu_pool=self.sweep.gpu_pool,
            warm_start=self._warm_start,
        )

    def _read_runs(self, full: bool) -> None:
        start = 0 if full else self._first_unsettled()
        found = self._store.runs(self.sweep.id, min_seq=start)
        # The tail read again replaces the one kept; a kept run missing from it was dropped
        # (pending runs of a stopped sweep are deleted).
        for run_id in [i for i, r in self._rows.items() if r.seq >= start]:
            del self._rows[run_id], self._records[run_id]
        now = time.time()
        for r in found:
            self._rows[r.id] = r
            self._records[r.id] = run_record(r, now)
        self.runs_read += len(found)
        self.full_reads += full

    def _first_unsettled(self) -> int:
        """The queue position from which runs can still change (past the last: new runs)."""
        settled_before = time.time() - SETTLE_S
        for r in self._rows.values():
            ended = r.ended_at
            if r.state not in FINAL and (ended is None or ended > settled_before):
                return int(r.seq)
        return max((int(r.seq) for r in self._rows.values()), default=0) + 1


# The most of the wall time a refresher may spend refreshing: it waits ten times as long as
# its last refresh took, so a slow redraw (10,000 runs, a big plot) never starves the kernel.
BUSY_SHARE = 0.1


def next_wait(interval: float, took: float) -> float:
    """Seconds until the next refresh: ``interval``, or longer after a slow refresh."""
    return max(interval, took / BUSY_SHARE)
