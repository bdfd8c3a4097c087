"""The agent loop: claim a run, execute the train function, record how it ended, repeat.

The same loop runs in spawned agent processes and in ``nbsweep.agent()`` (in the caller's
process). Finishing a run and claiming the next one is one transaction, so an agent goes
from one run to the next with a single commit. Waiting for work backs off to 50 ms. An agent
on GPUs samples them while a run is live, whoever started it; one whose GPUs came from the
pool gives them, between runs, to a sweep of higher priority that waits (see ``_pool``).

No run ends its agent: whatever the train function raises (``BaseException`` included) or
returns, the run ends ``failed`` with the traceback and the agent goes on. Between runs the
agent drops the run's objects, collects garbage and empties the CUDA cache; a spawned agent
also kills what processes the run left (``_procs``), and leaves to be replaced (``FRESH``)
after a CUDA out-of-memory error, or after every run of a ``fresh_process`` sweep.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbsweep import _train
from nbsweep._errors import RunStopped, SweepNotFoundError
from nbsweep._states import SWEEP_ENDED, AgentState, RunState
from nbsweep._timing import GIVE_WAY_S, HEARTBEAT_S, IDLE_YIELD_S
from nbsweep.agents._gpus import GpuMeter, own_gpus
from nbsweep.agents._procs import end_others
from nbsweep.schedulers import agent_scheduler
from nbsweep.store import Claim, Finish, Store, logged_row, private_dir
from nbsweep.wandb._sdk import routed

MAX_WAIT_S = 0.05
# The exit code of a spawned agent that left so that its next run starts on a clean process.
FRESH = 76


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is CUDA running out of memory."""
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if (isinstance(oom, type) and isinstance(cause, oom)) or (
            isinstance(cause, RuntimeError) and "CUDA out of memory" in str(cause)
        ):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


# A full garbage collection takes at most this share of an agent's time.
GC_SHARE = 0.02


class Releaser:
    """Frees what a run held, between runs: its objects in reference cycles (a traceback's
    frames, a model pointing at its optimizer) and, where the run imported torch and used
    CUDA, the cache torch keeps. Importing torch here would cost seconds: it is never done.

    A full collection costs 0.1 to 0.5 s in a process that imported torch: more than a short
    run. It runs after a run once the time since the last one is worth its cost
    (``GC_SHARE``), so after every run of minutes, and now and then among quick ones.
    """

    def __init__(self) -> None:
        self._collected_at = time.monotonic()
        self._cost = 0.0

    def __call__(self) -> None:
        began = time.monotonic()
        if began - self._collected_at >= self._cost / GC_SHARE:
            gc.collect()
            self._collected_at = time.monotonic()
            self._cost = self._collected_at - began
        cuda = getattr(sys.modules.get("torch"), "cuda", None)
        with contextlib.suppress(Exception):  # a torch half imported, a GPU lost
            if cuda is not None and cuda.is_initialized():
                cuda.empty_cache()


def _cuda_memory() -> tuple[float, float] | None:
    """Bytes used and in all on this process's current GPU, from torch where it uses CUDA."""
    cuda = getattr(sys.modules.get("torch"), "cuda", None)
    with contextlib.suppress(Exception):
        if cuda is not None and cuda.is_initialized():
            free, total = cuda.mem_get_info()
            return float(total - free), float(total)
    return None


def log_path(store: Store, sweep_id: str, run_id: str) -> Path:
    """Where a run's stdout and stderr go."""
    return store.root / "logs" / sweep_id / f"{run_id}.log"


def scratch_path(store: Store, sweep_id: str, agent: int) -> Path:
    """Where an agent's output goes until it is known to belong to a run."""
    return store.root / "logs" / sweep_id / f".agent-{agent}.out"


class Agent:
    """One agent of a sweep: runs trials until the sweep ends, ``count`` is met or drained."""

    def __init__(
        self,
        store: Store,
        sweep_id: str,
        function: Callable[..., Any],
        agent: int,
        gpu: str | None = None,
        count: int | None = None,
        redirect: bool = True,
        spawned: bool = False,
    ) -> None:
        """``gpu``: the UUIDs of the GPUs the pool gave it ("" for CPU); None: those its
        ``CUDA_VISIBLE_DEVICES`` names (an agent started outside a kernel), measured alike.

        ``spawned``: this process is the agent's own (``python -m nbsweep.agents``): it leads
        its session, so every other process in it is a run's; SIGINT never reaches it, so a
        KeyboardInterrupt is a run's error; and it may leave to be replaced (``FRESH``).
        """
        sweep = store.sweep(sweep_id)
        if sweep is None:
            raise SweepNotFoundError(f"sweep {sweep_id!r} is not in store {store.where}")
        self.store = store
        self.sweep_id = sweep_id
        self.function = function
        self.agent = agent
        self.pooled = gpu is not None  # its GPUs may be given to a waiting sweep
        found = [] if self.pooled else own_gpus()
        self.gpu = gpu if gpu is not None else ",".join(g.uuid for g in found)
        # The agent row of one started outside a kernel names the GPUs it found.
        self._found = (
            {} if self.pooled else {"gpu": self.gpu, "gpu_name": ",".join(g.name for g in found)}
        )
        self.count = count
        self.redirect = redirect
        self.spawned = spawned
        self.fresh_process = spawned and sweep.fresh_process
        self.leaves_fresh = False  # leaves after this run, for a clean process for the next
        self._release = Releaser()
        config = sweep.config
        self.metric = config.metric_name
        self.scheduler = agent_scheduler(config, sweep.seed)
        self.current: str | None = None
        self.draining = False
        self.yielded = False  # gave its GPUs to a sweep of higher priority
        self._asked_at = -GIVE_WAY_S
        self.gpus = [u for u in self.gpu.split(",") if u]
        self.meter = GpuMeter(self.gpus) if self.gpus else None
        self._halt = threading.Event()
        self._scratch: int | None = None

    def run(self) -> int:
        """Execute runs until there is nothing more to do; returns how many it executed."""
        # Its first heartbeat: the controller judges a started agent by its silence.
        if not self.store.agent_started(
            self.sweep_id, self.agent, pid=os.getpid(), heartbeat_at=time.time(), **self._found
        ):
            self.draining = True  # drained while it started: it leaves before any claim
        beat = threading.Thread(target=self._heartbeat, name="nbsweep-heartbeat", daemon=True)
        beat.start()
        done = 0
        finish: Finish | None = None
        wait = 0.001
        idle_since = time.monotonic()
        try:
            while True:
                if self.draining or (self.count is not None and done >= self.count):
                    break
                if finish is not None and self._give_way(busy=True, every=GIVE_WAY_S):
                    break
                claim = self.store.claim(self.sweep_id, self.agent, self.gpu, finish)
                finish = None
                if claim is None:
                    sweep = self.store.sweep(self.sweep_id)
                    if sweep is None or sweep.state in SWEEP_ENDED:
                        break
                    if time.monotonic() - idle_since >= IDLE_YIELD_S:
                        idle_since = time.monotonic()  # asked again after as long
                        if self._give_way(busy=False, every=0.0):
                            break
                    time.sleep(wait)
                    wait = min(wait * 2, MAX_WAIT_S)
                    continue
                wait = 0.001
                finish = self.execute(claim)
                idle_since = time.monotonic()
                done += 1
                if self.leaves_fresh or self.fresh_process:
                    self.leaves_fresh = True
                    break
        finally:
            if finish is not None:
                self.store.finish(finish)
            self._halt.set()
            self.store.update_agent(self.sweep_id, self.agent, state=AgentState.DEAD)
        return done

    def _give_way(self, busy: bool, every: float) -> bool:
        """Whether to leave now so that a waiting sweep gets this agent's GPUs.

        Asked at most once per ``every`` seconds, so that short runs pay no query each.
        """
        if not (self.pooled and self.gpus) or time.monotonic() < self._asked_at + every:
            return False
        self._asked_at = time.monotonic()
        self.yielded = self.store.pool_yield(
            socket.gethostname(), self.sweep_id, self.gpus, busy=busy
        )
        return self.yielded

    def execute(self, claim: Claim) -> Finish:
        """Run the train function on one claimed run; returns how it ended (not yet written).

        What the run left is released before its end is written: its objects, the CUDA
        cache and, in a spawned agent, its processes.
        """
        if self.meter is not None:
            self.meter.start()
        self.current = claim.run_id
        context = _train.RunContext(
            self.store, self.sweep_id, claim.run_id, self.metric, self.scheduler, claim.config
        )
        _train.set_current_run(context)
        try:
            with self._output(claim.run_id), routed():  # `import wandb` in the run: nbsweep.wandb
                state, error = self._call(context)
        finally:
            _train.set_current_run(None)
            self.current = None
            self._release()
            if self.spawned:
                end_others()
        return self._finish(context, state, error)

    def _call(self, context: _train.RunContext) -> tuple[str, str | None]:
        """Call the train function: how its run ended and its error. Whatever the function
        returned, and the frames of what it raised, are dropped with this call."""
        try:
            result = self.function(_train.Config(context.config))
            if isinstance(result, Mapping):
                summary = logged_row(result, "the summary returned by train", "return")
                context.summary.update(summary)
            return RunState.FINISHED, None
        except RunStopped:
            return RunState.STOPPED, None
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) and not self.spawned:
                # nbsweep.agent() in the user's process: Ctrl-C ends the run and the agent.
                self.store.finish(self._finish(context, RunState.KILLED, None))
                raise
            # A program run's error is its exit status and output tail (run_error).
            error = getattr(exc, "run_error", None) or traceback.format_exc()
            if out_of_memory(exc):
                error = self._out_of_memory() + error
                self.leaves_fresh = self.spawned
            with contextlib.suppress(Exception):  # the run may have closed stderr
                sys.stderr.write(error)
            return RunState.FAILED, error

    def _out_of_memory(self) -> str:
        """The line that starts an out-of-memory run's error: OOM, and the memory figures."""
        reading = self.meter.memory() if self.meter is not None else None
        start = self.meter.start_mb if self.meter is not None else None
        if reading is None:
            reading = _cuda_memory()
        if reading is None:
            figures = "no GPU memory figures (NVML does not see this agent's GPUs)"
        else:
            used, total = reading
            figures = f"{used / 2**20:.0f} MiB used of {total / 2**20:.0f} MiB on its GPUs"
        if start is not None:
            figures += f"; {start:.0f} MiB were in use above the agent's baseline at its start"
        then = (
            "; the agent leaves, so that the next run starts on a clean process"
            if self.spawned
            else ""
        )
        return f"CUDA out of memory (OOM): {figures}{then}.\n"

    def _finish(self, context: _train.RunContext, state: str, error: str | None) -> Finish:
        summary = {**context.summary, "_runtime": time.time() - context.started}
        gpu = self.meter.use() if self.meter is not None else None
        return Finish(context.run_id, state, summary, error, gpu)

    @contextmanager
    def _output(self, run_id: str) -> Any:
        """Send this process's stdout and stderr (file descriptors too) to the run's log.

        Output goes to a scratch file that becomes the run's log when the run wrote anything,
        so a silent run costs no file of its own.
        """
        if not self.redirect:
            yield
            return
        if self._scratch is None:
            self._scratch = self._open_scratch()
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fstat(self._scratch).st_size:
                os.rename(
                    scratch_path(self.store, self.sweep_id, self.agent),
                    log_path(self.store, self.sweep_id, run_id),
                )
                os.close(self._scratch)
                self._scratch = self._open_scratch()

    def _open_scratch(self) -> int:
        """An empty private file on this process's stdout and stderr."""
        path = scratch_path(self.store, self.sweep_id, self.agent)
        private_dir(path.parent)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        return fd

    def _heartbeat(self) -> None:
        """Beat every ``HEARTBEAT_S``; on GPUs, sample them in between while a run is live."""
        tick = min(HEARTBEAT_S, GpuMeter.interval()) if self.meter is not None else HEARTBEAT_S
        beat_at = time.monotonic() + HEARTBEAT_S
        while not self._halt.wait(tick):
            run_id = self.current
            if self.meter is not None and run_id is not None:
                self.meter.sample()
            if time.monotonic() < beat_at:
                continue
            beat_at = time.monotonic() + HEARTBEAT_S
            gpu = self.meter.use() if self.meter is not None and run_id is not None else None
            try:
                if not self.store.heartbeat(self.sweep_id, self.agent, run_id, gpu):
                    self.draining = True
            except Exception as exc:  # a busy store must not kill the agent's run
                print(f"nbsweep agent {self.agent}: heartbeat failed: {exc}", file=sys.stderr)
