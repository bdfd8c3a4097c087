"""``python -m nbsweep.agents``: one spawned agent process (started by the local executor)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time

from nbsweep._states import AgentState, CrashReason, RunState
from nbsweep._timing import PROGRAM_GRACE_S
from nbsweep.agents._loop import FRESH, Agent, log_path, scratch_path
from nbsweep.agents._pool import YIELDED
from nbsweep.agents._procs import become_subreaper, children, end_others, end_programs
from nbsweep.agents._shipping import load
from nbsweep.store import open_store
from nbsweep.wandb._sdk import routed

# Runs this agent executes before it leaves (``wandb.agent``'s count, shared out among its
# agents); unset: until the sweep ends.
COUNT_ENV = "NBSWEEP_AGENT_COUNT"


def _watch_parent(agent: Agent, why: str) -> None:
    """Exit when the process that started us dies: its end of our stdin pipe closes."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except OSError:
        pass
    try:
        # Every run of ours still running: also one whose end is not yet written.
        running = agent.store.running_ids(agent.sweep_id, agent=agent.agent)
        agent.store.end_runs(agent.sweep_id, running, RunState.CRASHED, {r: why for r in running})
        scratch = scratch_path(agent.store, agent.sweep_id, agent.agent)
        if running and scratch.exists():
            scratch.replace(log_path(agent.store, agent.sweep_id, running[-1]))
        agent.store.update_agent(agent.sweep_id, agent.agent, state=AgentState.DEAD)
    finally:
        # Our programs run in their own sessions: SIGTERM them, and SIGKILL one that ignores
        # it after a grace, rather than leave it running as an orphan.
        programs = children(os.getpid())
        for pid in programs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        end_programs(programs, time.monotonic() + PROGRAM_GRACE_S)
        end_others()  # what the run started in our process group
        os._exit(3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbsweep.agents")
    parser.add_argument("--sweep", required=True)
    parser.add_argument("--agent", type=int, required=True)
    parser.add_argument("--train", required=True, help="spec file written by the kernel")
    parser.add_argument("--gpu", default="")
    parser.add_argument("--watch-parent", action="store_true")
    parser.add_argument(
        "--parent-died",
        default=CrashReason.CONTROLLER_DIED,
        help="the error of a run cut by that death",
    )
    args = parser.parse_args(argv)
    # Ctrl-C in the notebook interrupts the kernel, not its trials.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    become_subreaper()  # what a run starts stays ours to end, whatever its parent does
    store = open_store(create=False)  # $NBSWEEP_STORE, from start_agent: never in argv
    with routed():  # a module-level `import wandb` of the function's module: nbsweep's too
        function = load(args.train)
    count = os.environ.get(COUNT_ENV)
    agent = Agent(
        store,
        args.sweep,
        function,
        args.agent,
        gpu=args.gpu,
        count=int(count) if count else None,
        spawned=True,
    )
    if args.watch_parent:
        threading.Thread(target=_watch_parent, args=(agent, args.parent_died), daemon=True).start()
    agent.run()
    if agent.yielded:
        return YIELDED
    return FRESH if agent.leaves_fresh else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: the parent watcher is blocked reading stdin and would abort it.
    os._exit(code)
