"""Every duration nbsweep waits out, in seconds, in one place.

Two kinds. Deadlines say how long until something is judged gone or given up: a controller's
lease, an agent's silence, an idle GPU kept from a waiting sweep, the grace of a stopped
program. Cadences say how often something is renewed or looked at; each one that keeps a
deadline alive (a lease renewal, a heartbeat) stays a fixed share of it.

``NBSWEEP_TIME_SCALE`` (a positive number, default 1) multiplies both kinds. The tests set
it (agents spawned by them inherit it), so that a lease lapses, an agent falls silent and an
idle GPU changes hands sooner, while everything keeps its proportions. Users leave it unset.
The poll sleeps of busy loops are not scaled: they are short already, and shorter ones would
only burn the CPU the processes being waited for need.
"""

from __future__ import annotations

import os

SCALE_ENV = "NBSWEEP_TIME_SCALE"
SCALE = float(os.environ.get(SCALE_ENV) or 1.0)
if not SCALE > 0:
    raise ValueError(f"{SCALE_ENV}={os.environ[SCALE_ENV]!r}: give a factor above 0 (1: real time)")


def _s(seconds: float) -> float:
    return seconds * SCALE


# -- the controller ------------------------------------------------------------------------
# A sweep's controller lease (and its GPUs of the pool): taken over by another process once
# this long without a renewal, which comes every LEASE_RENEW_S.
LEASE_TTL_S = _s(5.0)
LEASE_RENEW_S = _s(1.0)
# A run on an agent this controller does not supervise is crashed after this much silence
# (its machine vanished, or the agent was killed) and its config is queued again.
STALE_RUN_S = _s(60.0)
# How often a sweep waiting for GPUs of the pool asks again.
POOL_POLL_S = _s(0.1)

# -- agents --------------------------------------------------------------------------------
# An agent's heartbeat: what keeps its runs from counting as silent (STALE_RUN_S).
HEARTBEAT_S = _s(1.0)
# An agent without a run for this long lets a waiting sweep have its GPU.
IDLE_YIELD_S = _s(5.0)
# An agent on GPUs asks whether a waiting sweep should have them at most this often.
GIVE_WAY_S = _s(0.25)
# How long a controller that ends waits for its agents to leave before it kills them.
AGENT_GRACE_S = _s(5.0)
# How long a program gets to end after its agent's controller died.
PROGRAM_GRACE_S = _s(5.0)
# How long an agent waits, after a run, for the processes the run left to die of SIGKILL.
LEFTOVER_S = _s(5.0)
# Between two samples of a run's GPUs (utilisation, memory).
GPU_SAMPLE_S = _s(0.5)
# How often the Dask executor asks the scheduler which workers are gone.
DASK_WATCH_S = _s(1.0)

# -- programs (``program:`` sweeps) ----------------------------------------------------------
# A stopped program has this long to end by itself before it gets SIGTERM.
STOP_NOTICE_S = _s(2.0)
# Between SIGTERM and SIGKILL when a run is stopped; W&B's ``KILL_DELAY``.
KILL_GRACE_S = _s(30.0)

# -- the store -----------------------------------------------------------------------------
# How long a SQLite connection waits for another's lock (its busy timeout). Not scaled: a
# shorter wait would only fail the writers of a loaded machine, never speed a test up.
BUSY_S = 30.0
# How long an agent's write waits for a lost database connection to come back (a server
# restart, a failover) before the run fails.
RECONNECT_S = _s(60.0)

# -- views ---------------------------------------------------------------------------------
# A stopped, killed or crashed run can still get its summary and GPU figures this long after
# it ended (its agent reports once the program has exited); the dashboard reads it again.
SETTLE_S = _s(60.0)
# How often ``nbsweep run``/``watch`` redraw in a terminal.
CLI_REFRESH_S = _s(1.0)
# A live dashboard's elapsed time moves on this often between redraws.
TICK_S = _s(1.0)
# How often a dashboard asks whether a controller still runs its sweep.
CONTROLLER_CHECK_S = _s(2.0)
# The least time between two redraws of a dashboard's visible figure (plotly builds and diffs
# a figure in Python, 0.1-1 s): it waits ten times its own cost too, apart from the table.
FIGURE_INTERVAL_S = _s(2.0)
