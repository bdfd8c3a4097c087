"""The controller: one background thread per sweep, in the process that started it.

Each tick it reads what changed in the store, applies the stopping rule, keeps a few pending
runs ahead of the agents, supervises the local agent processes and ends the sweep when W&B
would (grid exhausted, ``run_cap``, ``metric.target``, stop, cancel). All of its state can be
rebuilt from the store, so a new controller (``Sweep.resume``) takes over where one died. A
lease row with a heartbeat makes sure only one controller runs a sweep.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import traceback
import warnings
from typing import Any

from nbsweep._errors import StoreError, StoreFault
from nbsweep._runs import RunRecord, is_valid_metric
from nbsweep._states import (
    RUN_ALIVE,
    SWEEP_ACTIVE,
    AgentState,
    CrashReason,
    RunState,
    SweepState,
    cut_by_machine,
    describe_exit,
)
from nbsweep._timing import HEARTBEAT_S, LEASE_RENEW_S, LEASE_TTL_S, POOL_POLL_S, STALE_RUN_S
from nbsweep.agents._executor import Executor
from nbsweep.agents._gpus import Slot
from nbsweep.agents._loop import FRESH, log_path, scratch_path
from nbsweep.agents._pool import YIELDED, GpuPool, priority_of
from nbsweep.config import SweepConfig
from nbsweep.schedulers import Scheduler, make_scheduler
from nbsweep.schedulers._launch import queue_groups
from nbsweep.store import Store, StoredRun, StoredSweep, owner_id, pid_alive

MAX_SLEEP_S = 0.05
CHANGING_SLEEP_S = 0.01
# W&B-like failure guard: this many failed or crashed runs before any success pause the sweep.
INITIAL_FAILURES = 3
# The deepest queue of pending runs kept for grid and random (no-op trials need this many).
MAX_AHEAD = 1024


class Controller(threading.Thread):
    """Runs one sweep until it is finished or cancelled (or this process loses the lease)."""

    def __init__(
        self,
        store: Store,
        sweep_id: str,
        executor: Executor | None = None,
        slots: list[Slot] | None = None,
        gpu_groups: list[Slot] | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        """``gpu_groups``: every GPU group of the machine; with them, ``len(slots)`` agents
        get GPUs from the pool shared with other sweeps, spread over the groups it hands out
        (more agents than groups share them; see ``agents._pool``). ``scheduler``: the one
        ``nbsweep.sweep`` built to check the config (else built from it on first use)."""
        super().__init__(name=f"nbsweep-controller-{sweep_id}", daemon=True)
        self.store = store
        self.sweep_id = sweep_id
        self.executor = executor
        self.slots = list(slots or [])
        self.owner = owner_id()
        self.pool = (
            GpuPool(store, sweep_id, self.owner, gpu_groups, len(self.slots))
            if gpu_groups and executor is not None
            else None
        )
        self._want = len(self.slots)  # agents wanted from the pool
        # Agents drained by this controller (fewer planned, or their GPU given away).
        self._retiring: set[int] = set()
        self._priority = 0
        self._sweep_config: SweepConfig | None = None
        self._pool_at = 0.0
        sweep = store.sweep(sweep_id)
        assert sweep is not None
        self.config: SweepConfig = sweep.config
        self.seed = sweep.seed
        metric = self.config.metric
        self.metric: str | None = self.config.metric_name
        self.goal = metric.goal if metric is not None else "minimize"
        self.target = metric.target if metric is not None else None
        self.run_cap: int | None = self.config.run_cap
        self._scheduler = scheduler
        self._new_slots: list[Slot] | None = None  # handed over by Sweep.resume(config=...)
        self._warm: tuple[RunRecord, ...] | None = None
        self._warm_sources: list[str] = list(sweep.warm_start)
        self._wake = threading.Event()
        self._quit = False
        self.error: str | None = None
        # (message, event) of the pause the store refused to record so far (disk full...).
        self.fault: tuple[str, str] | None = None
        self._leaving = False  # the agents it stops now are not dying of themselves
        # What the store said at the last tick: runs by id.
        self._runs: dict[str, StoredRun] = {}
        self._records: dict[str, RunRecord] = {}
        self._replaced: set[str] = set()
        self._changed: list[StoredRun] = []
        self._observed = False
        self._cancelled = False
        self._dead_at_start = 0
        self._missing: list[Slot] = []  # slots whose agent is not replaced while paused
        self._silence_at = 0.0  # when to look for silent agents of ours again
        self._gone_at = 0.0  # when to look for gone agents of this host again
        # Kept per change so that a tick does not walk every run of a long sweep.
        self._alive: dict[str, str] = {}
        self._uncounted: set[str] = set()
        self._histories: dict[str, list[float]] = {}
        self._window = 0  # runs before this position are all over: never read again
        self._top = 0  # the highest position read so far
        self._exhausted = False
        self._ahead = 4
        self._decided_at: tuple[int, int] = (-1, -1)
        self._metric_checked = self.metric is None

    # -- lifecycle -------------------------------------------------------------------------

    def acquire(self) -> str | None:
        """Take the sweep's lease; returns the owner holding it when another controller runs."""
        return self.store.acquire_lease(self.sweep_id, self.owner, LEASE_TTL_S)

    def wake(self) -> None:
        self._wake.set()

    def quit(self) -> None:
        """Stop controlling (the sweep itself goes on when resumed elsewhere)."""
        self._quit = True
        self._wake.set()

    def run(self) -> None:
        try:
            if self.executor is not None and self.pool is None:
                for slot in self.slots:
                    self.executor.spawn(slot)
            renew = time.monotonic() + LEASE_RENEW_S
            sleep = 0.001
            while not self._quit:
                if time.monotonic() >= renew:
                    if not self.store.renew_lease(self.sweep_id, self.owner, LEASE_TTL_S):
                        self.store.add_event(
                            self.sweep_id, "controller", f"controller {self.owner} lost its lease"
                        )
                        return
                    if self.pool is not None:
                        self.pool.renew(self._priority, LEASE_TTL_S)
                    renew = time.monotonic() + LEASE_RENEW_S
                busy, done = self.tick()
                if done:
                    break
                # Acting (runs queued or stopped, agents replaced) polls again at once; runs
                # that merely progress are checked every 10 ms; a quiet sweep backs off more.
                cap = CHANGING_SLEEP_S if self._observed else MAX_SLEEP_S
                sleep = 0.001 if busy else min(sleep * 2, cap)
                self._wake.wait(sleep)
                self._wake.clear()
        except BaseException as exc:
            self.error = traceback.format_exc()
            if isinstance(exc, StoreFault):  # its message says what to fix, not a traceback
                self._pause(f"paused: {exc}, then sweep.resume()", "paused: the store failed")
            else:
                self._pause(
                    f"paused: the controller failed:\n{self.error}", "paused: the controller failed"
                )
        finally:
            self._leaving = True
            if self.executor is not None:
                self.executor.shutdown()
                with contextlib.suppress(StoreError):
                    self._reap(respawn=False)  # the runs of agents it had to kill are crashed
            if self.pool is not None:
                with contextlib.suppress(StoreError):
                    self.pool.leave()
            # A store that takes no writes now (a full disk, read-only) may take them again:
            # the pause is recorded then, so the sweep says why, and resume() takes it over.
            while self.fault is not None and not self._quit:
                self._wake.wait(LEASE_RENEW_S)
                self._wake.clear()
                self._pause(*self.fault)
            with contextlib.suppress(StoreError):
                self.store.release_lease(self.sweep_id, self.owner)

    def recorded(self) -> bool:
        """Whether the store took the pause it stopped with; asks it again now if not."""
        fault = self.fault
        if fault is not None:
            self._pause(*fault)  # as the thread does: the update changes a running sweep once
        return self.fault is None

    def _pause(self, message: str, event: str) -> None:
        """Record that the controller stopped; ``fault`` keeps it while the store refuses."""
        self.fault = None
        try:
            self.store.update_sweep(
                self.sweep_id,
                only_from=[SweepState.RUNNING, SweepState.STOPPING],
                state=SweepState.PAUSED,
                message=message,
                event=event,
            )
        except StoreFault:
            self.fault = (message, event)
        except StoreError:
            pass  # a store removed under us takes no more writes, ever

    # -- one tick --------------------------------------------------------------------------

    def tick(self) -> tuple[bool, bool]:
        """One round; returns (something happened, the sweep is over)."""
        sweep = self.store.sweep(self.sweep_id)
        if sweep is None:
            return False, True
        state = sweep.state
        if self._new_slots is not None:
            self._reconfigured()
        busy = self._reap(respawn=state in SWEEP_ACTIVE)
        busy |= self._kill_silent_agents()
        self._observed = self._refresh()
        if not self._metric_checked:
            self._check_metric_logged()
        if state in SWEEP_ACTIVE and self._requeue_cut_runs():
            # Read back next tick: the search must see the copies, or it suggests them again.
            return True, False
        if state == SweepState.CANCELLED:
            self._cancel()
            return True, True
        if state == SweepState.FINISHED:
            return True, True
        if state == SweepState.RUNNING and self._missing and self.executor is not None:
            for slot in self._missing:
                self.executor.spawn(slot)
            self._missing = []
            busy = True
        if self.pool is not None:
            busy |= self._share_gpus(sweep)
        if state == SweepState.RUNNING:
            busy |= self._early_terminate()
            state = self._checks(sweep)
            if state != SweepState.RUNNING:  # its message changed: the one to end with
                sweep = self.store.sweep(self.sweep_id) or sweep
        if state == SweepState.RUNNING and self._fill(guarded=bool(sweep.failure_guard)):
            return True, False  # the new runs are read back (and counted) next tick
        if state in (SweepState.RUNNING, SweepState.STOPPING) and self._over(state):
            self.store.update_sweep(
                self.sweep_id,
                only_from=[SweepState.RUNNING, SweepState.STOPPING],
                state=SweepState.FINISHED,
                message=sweep.message or self._end_reason(),
                event="finished",
            )
            return True, True
        return busy, False

    def _reap(self, respawn: bool) -> bool:
        """Mark the runs of dead agents crashed and put new agents in their place."""
        if self.executor is None:
            return False
        gone = self.executor.reap()
        for handle, code in gone:
            self.store.update_agent(self.sweep_id, handle.agent, state=AgentState.DEAD)
            if code == YIELDED and self.pool is not None:
                self._give_away(handle.slot)  # asked for again while the sweep has runs
                self.pool.left(handle.slot)
                self.store.add_event(
                    self.sweep_id,
                    "agent_yielded",
                    f"agent {handle.agent} gave GPU {handle.slot.gpu} to a waiting sweep",
                    agent=handle.agent,
                )
                continue
            if code == FRESH and not self._cancelled:
                # It left after a run so that the next one starts on a clean process.
                if respawn and (self.pool is None or self.pool.keeps(handle.slot)):
                    self.executor.spawn(handle.slot)
                else:
                    self._set_aside(handle.slot)
                continue
            if code == 0 or self._cancelled:
                # It left on its own (drained, sweep over), or cancel killed it.
                if self.pool is not None:
                    self.pool.left(handle.slot)
                    if code == 0 and handle.agent not in self._retiring:
                        self._want = max(0, self._want - 1)  # a drained agent is not replaced
                continue
            # An executor that knows better than the exit code says why (a lost Dask worker).
            cause = handle.why or describe_exit(code)
            why = f"agent {handle.agent} (pid {handle.pid}) died: {cause}"
            if self._leaving:  # its controller stopped it: the run goes again on resume
                why = f"{CrashReason.CONTROLLER_DIED}: {why}"
            running = self.store.running_ids(self.sweep_id, agent=handle.agent)
            self.store.end_runs(self.sweep_id, running, RunState.CRASHED, {r: why for r in running})
            scratch = scratch_path(self.store, self.sweep_id, handle.agent)
            if running and scratch.exists():
                # What the run printed before it died is the best clue to why.
                scratch.replace(log_path(self.store, self.sweep_id, running[-1]))
            self.store.add_event(self.sweep_id, "agent_died", why, agent=handle.agent)
            ran = bool(running) or any(r.agent == handle.agent for r in self._runs.values())
            self._dead_at_start = 0 if ran else self._dead_at_start + 1
            if self._dead_at_start >= INITIAL_FAILURES:
                # Agents that die before running anything (an import or unpickling error in
                # the train function) would be replaced forever: pause and say why.
                self._pause_dead_at_start(why, handle.agent)
                self._set_aside(handle.slot)
            elif respawn and (self.pool is None or self.pool.keeps(handle.slot)):
                self.executor.spawn(handle.slot)
            else:
                self._set_aside(handle.slot)
        return bool(gone)

    def _kill_silent_agents(self) -> bool:
        """Kill our agents that stopped heart-beating for ``STALE_RUN_S`` (hung, stopped):
        their runs are crashed and queued again, and ``_reap`` starts agents in their place.

        An agent is judged once it has started (its row left ``starting``); looked at once
        per ``HEARTBEAT_S``.
        """
        if self.executor is None or not self.executor.processes:
            return False
        if time.monotonic() < self._silence_at:
            return False
        self._silence_at = time.monotonic() + HEARTBEAT_S
        limit = time.time() - STALE_RUN_S
        live = (AgentState.IDLE, AgentState.BUSY, AgentState.DRAINING)
        silent = [
            a
            for a in self.store.agents(self.sweep_id)
            if a.agent in self.executor.processes and a.state in live and a.heartbeat_at < limit
        ]
        silence = f"{CrashReason.AGENT_SILENT} for {STALE_RUN_S:.0f} s"
        for a in silent:
            why = (
                f"{silence}: agent {a.agent} (pid {a.pid}) hung or was stopped;"
                " it was killed and the run queued again"
            )
            running = self.store.running_ids(self.sweep_id, agent=a.agent)
            self.store.end_runs(self.sweep_id, running, RunState.CRASHED, {r: why for r in running})
            self.executor.kill(a.agent, f"{silence} (hung or stopped): killed")
        return bool(silent)

    def _set_aside(self, slot: Slot) -> None:
        """A slot left without an agent until the sweep runs again; its GPUs go to the pool."""
        if self.pool is not None:
            self.pool.left(slot)
        else:
            self._missing.append(slot)

    def _give_away(self, slot: Slot) -> None:
        """An agent gave its GPUs to a waiting sweep: the others on them leave after their run."""
        assert self.pool is not None and self.executor is not None
        self.pool.give_away(slot)
        for agent, handle in self.executor.processes.items():
            if handle.slot == slot and agent not in self._retiring:
                self._retiring.add(agent)
                self.store.update_agent(self.sweep_id, agent, drain=True, state=AgentState.DRAINING)

    def _share_gpus(self, sweep: StoredSweep) -> bool:
        """Ask the GPU pool for the agents the sweep lacks while it runs and has runs waiting.

        Returns whether agents were started. Asks at once, then every ``POOL_POLL_S`` while
        it waits; a sweep that stops wanting GPUs drops its wait.
        """
        assert self.pool is not None and self.executor is not None
        if sweep.config != self._sweep_config:  # the priority may change (set_priority)
            self._sweep_config = sweep.config
            self._priority = priority_of(sweep.config)
        lacking = 0
        if sweep.state == SweepState.RUNNING:
            pending = list(self._alive.values()).count(RunState.PENDING)
            lacking = min(self._want - self.executor.alive(), pending)
        if lacking <= 0 and not self.pool.waiting:
            return False
        now = time.monotonic()
        if self.pool.waiting and now < self._pool_at:
            return False
        self._pool_at = now + POOL_POLL_S
        granted = self.pool.request(lacking, self._priority, LEASE_TTL_S)
        for slot in granted:
            self.executor.spawn(slot)
        return bool(granted)

    def _pause_dead_at_start(self, why: str, agent: int) -> None:
        path = self.store.root / "logs" / self.sweep_id / f"agent-{agent}.log"
        tail = (
            "\n".join(path.read_text(errors="replace").splitlines()[-15:]) if path.exists() else ""
        )
        self._dead_at_start = 0
        self.store.update_sweep(
            self.sweep_id,
            only_from=[SweepState.RUNNING],
            state=SweepState.PAUSED,
            message=(
                f"paused: {INITIAL_FAILURES} agents in a row died before running anything"
                f" (last: {why}); fix the train function, then sweep.resume(train=...)."
                f" Output of the last one ({path}):\n{tail}"
            ),
            event="paused: agents die at start",
        )

    def _refresh(self) -> bool:
        """Read the runs that may have changed: those from the oldest alive run on."""
        rows, pending = self.store.changed_runs(self.sweep_id, self._window, self._top)
        seen = {r.id for r in rows}
        window = [r for r in self._runs.values() if r.seq >= self._window]
        waiting = [r for r in window if r.state == RunState.PENDING and r.id not in seen]
        gone = []
        # Pending now: those known to wait, and the new ones this read found (queued since).
        if len(waiting) + sum(r.state == RunState.PENDING for r in rows) != pending:
            # Pending runs were dropped (stop, cancel, a reached target): read the window whole.
            rows = self.store.runs(self.sweep_id, min_seq=self._window)
            seen = {r.id for r in rows}
            gone = [r.id for r in window if r.id not in seen]
            waiting = []
        for run_id in gone:
            del self._runs[run_id]
            del self._records[run_id]
            self._alive.pop(run_id, None)
        self._changed = []
        for row in rows:
            old = self._runs.get(row.id)
            if old is not None and old.state == row.state and old.steps == row.steps:
                continue
            self._runs[row.id] = row
            self._changed.append(row)
            if row.state in RUN_ALIVE:
                self._alive[row.id] = row.state
            else:
                self._alive.pop(row.id, None)
            if row.state in (RunState.CRASHED, RunState.KILLED) and row.steps == 0:
                self._uncounted.add(row.id)
            if row.requeued_from:
                self._replaced.add(row.requeued_from)
        refresh = {r.id for r in self._changed}
        if self.scheduler.reads_histories:
            stale = [r.id for r in rows if r.metric_count != len(self._histories.get(r.id, ()))]
            if stale:
                self._histories.update(self.store.metric_histories(stale))
                refresh.update(stale)
        for run_id in refresh:
            self._records[run_id] = self._runs[run_id].record(
                self.metric, self._histories.get(run_id, ())
            )
        self._top = max([self._top, *(r.seq for r in rows)])
        seqs = [r.seq for r in rows if r.state in RUN_ALIVE] + [r.seq for r in waiting]
        self._window = min(seqs) if seqs else self._top + 1
        self._stale_runs(rows)
        return bool(gone or refresh)

    def _check_metric_logged(self) -> None:
        """Warn once, at the first finished run, when it has no valid value of the metric.

        A typo in ``metric.name`` otherwise goes unnoticed: every run finishes, and search,
        stopping and the best run silently see nothing. The warning names what was logged.
        """
        run = next((r for r in self._changed if r.state == RunState.FINISHED), None)
        if run is None:
            return
        self._metric_checked = True
        summary = run.summary
        if run.metric_count or is_valid_metric(summary.get(self.metric)):
            return
        logged = ", ".join(sorted(k for k in summary if not k.startswith("_"))) or "nothing"
        how = (
            f"was logged only as {summary[self.metric]!r} (not a finite number)"
            if self.metric in summary
            else "was never logged"
        )
        message = (
            f"metric.name {self.metric!r} {how} by run {run.id}, the first run to finish;"
            f" it logged: {logged}. Fix metric.name in the config, or log {self.metric!r}"
            " as a number from the train function"
        )
        self.store.add_event(self.sweep_id, "warning", message, run_id=run.id)
        warnings.warn(message, stacklevel=1)

    def _requeue_cut_runs(self) -> bool:
        """Queue again the runs a dead controller's agents, lost Dask workers, or agents fallen
        silent abandoned.

        Their rows stay with the crashed run; the engine sees only the new one, so a grid
        point is neither lost nor run twice.
        """
        cut = [
            r
            for r in self._changed
            if r.state == RunState.CRASHED
            and cut_by_machine(r.error)
            and r.id not in self._replaced
        ]
        if not cut:
            return False
        ids = self.store.add_runs(self.sweep_id, [r.config for r in cut], [r.id for r in cut])
        self._replaced.update(r.id for r in cut)
        # Said, not silent: the crashed rows stay and new runs appear in their place.
        pairs = ", ".join(f"{r.id} -> {new}" for r, new in zip(cut, ids, strict=False))
        self.store.add_event(
            self.sweep_id, "requeued", f"{len(cut)} runs cut short, queued again: {pairs}"
        )
        return True

    def _stale_runs(self, rows: list[StoredRun]) -> None:
        """Crash runs whose (foreign) agent stopped sending heartbeats long ago, or, once they
        missed three, whose agent was a process of this host that is gone: killed while the
        store took no writes (a full disk), nobody could record it, and a resume need not
        wait ``STALE_RUN_S`` for it."""
        local = set(self.executor.processes) if self.executor is not None else set()
        now = time.time()
        foreign = [r for r in rows if r.state == RunState.RUNNING and r.agent not in local]
        silent = f"{CrashReason.AGENT_SILENT} for {STALE_RUN_S:.0f} s"
        why = {r.id: silent for r in foreign if (r.heartbeat_at or 0) < now - STALE_RUN_S}
        quiet = [r for r in foreign if (r.heartbeat_at or 0) < now - 3 * HEARTBEAT_S]
        if quiet and len(quiet) > len(why) and time.monotonic() >= self._gone_at:
            self._gone_at = time.monotonic() + HEARTBEAT_S
            here = socket.gethostname()
            gone = {
                a.agent: a.pid
                for a in self.store.agents(self.sweep_id)
                if a.host == here and a.pid and not pid_alive(a.pid)
            }
            for r in quiet:
                if r.id not in why and r.agent in gone:
                    why[r.id] = (
                        f"{CrashReason.AGENT_SILENT}: agent {r.agent} (pid {gone[r.agent]})"
                        " of this host is gone"
                    )
        if why:
            self.store.end_runs(self.sweep_id, list(why), RunState.CRASHED, why)

    def records(self, engine: bool = True, warm: bool = False) -> list[RunRecord]:
        """The runs as the engine sees them; with ``engine``, without requeued originals.

        Records are built once per change (in queue order), so a tick costs little more
        than the runs that changed, even in a sweep of many thousand runs. With ``warm``,
        the warm-start runs of earlier sweeps come first (for the searcher only).
        """
        if not (engine and self._replaced):
            own = list(self._records.values())
        else:
            own = [r for run_id, r in self._records.items() if run_id not in self._replaced]
        return [*self.warm_records, *own] if warm else own

    @property
    def warm_records(self) -> tuple[RunRecord, ...]:
        """Earlier sweeps' finished runs, read once per controller (so at each resume)."""
        if self._warm is None:
            self._warm = ()
            if self._warm_sources:
                from nbsweep._warm_start import load

                warm = load(self.store, self._warm_sources, self.config)
                self.store.add_event(self.sweep_id, "warm_start", warm.note)
                self._warm = warm.records
        return self._warm

    def _early_terminate(self) -> bool:
        if not self.scheduler.reads_histories:
            return False
        running = [run_id for run_id, state in self._alive.items() if state == RunState.RUNNING]
        key = (sum(len(h) for h in self._histories.values()), len(running))
        if not running or key == self._decided_at:
            return False
        self._decided_at = key
        reasons = self.scheduler.stop(self.records())
        stop = [run_id for run_id in reasons if self._alive.get(run_id) == RunState.RUNNING]
        if not stop:
            return False
        self.store.end_runs(self.sweep_id, stop, RunState.STOPPED, reasons)
        return True

    def _checks(self, sweep: StoredSweep) -> str:
        """Failure guard and ``metric.target``; returns the sweep state after them."""
        if sweep.failure_guard:
            runs = sorted(self._runs.values(), key=lambda r: r.seq)
            if any(r.state in (RunState.FINISHED, RunState.STOPPED) for r in runs):
                self.store.update_sweep(self.sweep_id, failure_guard=False)
            else:
                failed = [r for r in runs if r.state in (RunState.FAILED, RunState.CRASHED)]
                if len(failed) >= INITIAL_FAILURES:
                    first = failed[0]
                    self.store.update_sweep(
                        self.sweep_id,
                        only_from=[SweepState.RUNNING],
                        state=SweepState.PAUSED,
                        failure_guard=False,
                        message=(
                            f"paused: the first {len(failed)} runs failed; fix the train"
                            f" function, then sweep.resume(). First error (run {first.id}):"
                            f"\n{first.error or first.state}"
                        ),
                        event=f"paused: the first {len(failed)} runs failed",
                    )
                    return SweepState.PAUSED
        if self.target is not None and self.metric:
            for r in self._changed:
                if self._reached(r.summary.get(self.metric)):
                    self.store.update_sweep(
                        self.sweep_id,
                        only_from=[SweepState.RUNNING],
                        state=SweepState.STOPPING,
                        message=f"run {r.id} reached metric.target {self.target:g}",
                        event=f"run {r.id} reached metric.target",
                    )
                    self.store.drop_pending(self.sweep_id)
                    return SweepState.STOPPING
        return SweepState.RUNNING

    def _reached(self, value: Any) -> bool:
        if not is_valid_metric(value):
            return False
        if self.goal == "maximize":
            return float(value) >= self.target
        return float(value) <= self.target

    def _counted(self) -> int:
        """Runs that count against ``run_cap``: crashed or killed runs that logged nothing don't."""
        return len(self._runs) - len(self._uncounted)

    def _fill(self, guarded: bool) -> bool:
        """Keep a few pending runs ahead of the agents (one each until a run succeeds)."""
        if self._exhausted:
            return False
        states = list(self._alive.values())
        pending = states.count(RunState.PENDING)
        running = states.count(RunState.RUNNING)
        agents = self.executor.alive() if self.executor is not None else 0
        agents = max(1, self._want if self.pool is not None else agents)
        if not self.scheduler.queue_ahead:
            # Each suggestion of a learning search should see as many results as possible.
            want = max(1, agents - running)
        elif guarded:
            # Until a run succeeds, one run waits per agent: a train function that fails at
            # once does not burn through a deep queue before the failure guard pauses it.
            want = agents
        else:
            if pending < self._ahead // 4 and running and self._ahead < MAX_AHEAD:
                self._ahead *= 2  # the agents nearly ran dry since the last tick: queue deeper
            want = max(self._ahead, agents)
        if self.run_cap is not None:
            want = min(want, self.run_cap - self._counted() + pending)
        need = want - pending
        if need <= 0:
            return False
        configs = self.scheduler.suggest(self.records(warm=True), need)
        if len(configs) < need:
            self._exhausted = True
        return bool(configs) and bool(
            self.store.add_runs(self.sweep_id, configs, only_running=True)
        )

    @property
    def scheduler(self) -> Scheduler:
        """What suggests runs and stops them (nbsweep's own, Optuna's, or a registered one)."""
        if self._scheduler is None:
            self._scheduler = make_scheduler(self.config, seed=self.seed)
        return self._scheduler

    def reconfigure(self, slots: list[Slot]) -> None:
        """Take the sweep's changed config from the store, with these agents (next tick)."""
        self._new_slots = list(slots)
        self.wake()

    def _reconfigured(self) -> None:
        """Apply a config changed on resume: limits, a new scheduler, the agents it allows.

        Agents on a slot the new plan keeps go on; the others finish their run and leave.
        """
        slots, self._new_slots = self._new_slots or [], None
        sweep = self.store.sweep(self.sweep_id)
        if sweep is None:
            return
        queue = self.config.queue
        self.config = sweep.config
        self.run_cap = self.config.run_cap
        self._scheduler = None
        self._exhausted = False
        self._decided_at = (-1, -1)
        self.slots, self._missing = slots, []
        if self.executor is None:
            return
        if self.pool is not None:
            if self.config.queue != queue:  # another queue: other GPUs of the pool
                gpus = sweep.gpus_per_run or 1
                self.pool.groups = queue_groups(self.config, gpus, None)
            # The pool hands out GPUs for the new number of agents; the surplus ones leave.
            self._want = len(slots)
            self.pool.plan(self._want)
            allowed = [g.gpus for g in self.pool.groups]
            agents = self.executor.processes.items()
            keep = [a for a, handle in agents if handle.slot.gpus in allowed][: self._want]
            for agent in [a for a in self.executor.processes if a not in keep]:
                self._retiring.add(agent)
                self.store.update_agent(self.sweep_id, agent, drain=True, state=AgentState.DRAINING)
            return
        spare = list(slots)
        for agent, handle in list(self.executor.processes.items()):
            if handle.slot in spare:
                spare.remove(handle.slot)
            else:
                self.store.update_agent(self.sweep_id, agent, drain=True, state=AgentState.DRAINING)
        for slot in spare:
            self.executor.spawn(slot)

    def _over(self, state: str) -> bool:
        """No run alive and no new one will come."""
        if self._alive:
            return False
        if state == SweepState.STOPPING or self._exhausted:
            return True
        return self.run_cap is not None and self._counted() >= self.run_cap

    def _end_reason(self) -> str:
        if self._exhausted:
            search = "grid" if self.config.method == "grid" else "search"
            return f"{search} exhausted: {len(self._runs)} runs"
        if self.run_cap is not None and self._counted() >= self.run_cap:
            return f"run_cap {self.run_cap} reached"
        return "stopped"

    def _cancel(self) -> None:
        """Kill running runs and the local agents."""
        self._cancelled = True
        running = [run_id for run_id, state in self._alive.items() if state == RunState.RUNNING]
        why = {r: "cancelled" for r in running}
        self.store.end_runs(self.sweep_id, running, RunState.KILLED, why)
        self.store.drop_pending(self.sweep_id)
        if self.executor is not None:
            for agent in list(self.executor.processes):
                self.executor.kill(agent)
