"""The ``nbsweep`` command: sweeps from a terminal, a script or a SLURM job array.

``nbsweep run CONFIG.yaml`` starts a sweep and its controller here and shows a live table;
``nbsweep agent ID`` joins a sweep from any machine that reaches its store; ``ls``, ``show``
and the W&B control verbs (``pause``, ``resume``, ``stop``, ``cancel``) act on the store.
Errors a user can cause print one paragraph and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from nbsweep._command import script_function
from nbsweep._errors import NbsweepError, PlacementError, SweepError
from nbsweep._states import SWEEP_LIVE, SweepState
from nbsweep._timing import CLI_REFRESH_S

USAGE_ERROR = 2
INTERRUPTED = 130
BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for ``cat`` in ``cat f | head``
_TABLE_ROWS = 20


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nbsweep`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except NbsweepError as exc:
        print(f"nbsweep {args.command}: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        # The agent has recorded its run as killed; a traceback would add nothing.
        print(f"nbsweep {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader left (``nbsweep show ID | head``): end quietly, as ``ls | head`` does. The
        # rest of the output goes nowhere, so that flushing it at exit raises nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbsweep",
        description="W&B-compatible hyperparameter sweeps without a server.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def store_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--store",
            metavar="URL",
            help="SQLAlchemy URL or SQLite path (default: $NBSWEEP_STORE or .nbsweep/nbsweep.db)",
        )

    run = sub.add_parser("run", help="start a sweep from a YAML config and watch it")
    run.add_argument("config", metavar="CONFIG.yaml", help="W&B sweep config file")
    run.add_argument("--workers", type=int, metavar="N", help="agents (default: one per GPU)")
    store_option(run)
    run.add_argument("--name", help="sweep name shown by 'nbsweep ls'")
    run.add_argument("--seed", type=int, help="seed for random and bayes search")
    run.add_argument(
        "--fresh-process",
        action="store_true",
        help="start each run in a new agent process (for code that leaks GPU or host memory)",
    )
    run.add_argument(
        "--function",
        metavar="MODULE:NAME",
        help="train function to run instead of the config's 'program'",
    )
    run.add_argument(
        "--detach",
        action="store_true",
        help="run the controller in the background and return the sweep id at once",
    )
    run.add_argument("--log", metavar="PATH", help=argparse.SUPPRESS)
    run.set_defaults(handler=_cmd_run)

    agent = sub.add_parser("agent", help="join a sweep and run its trials here")
    agent.add_argument("sweep_id", metavar="SWEEP_ID")
    store_option(agent)
    agent.add_argument("--count", type=int, metavar="N", help="stop after N runs (per agent)")
    agent.add_argument("--workers", type=int, default=1, metavar="N", help="agent processes")
    agent.add_argument(
        "--function",
        metavar="MODULE:NAME",
        help="train function of a function sweep (a 'program' sweep needs none)",
    )
    agent.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run one agent on each worker of the Dask cluster at this scheduler address",
    )
    agent.set_defaults(handler=_cmd_agent)

    ls = sub.add_parser("ls", help="list the sweeps in a store")
    store_option(ls)
    ls.set_defaults(handler=_cmd_ls)

    show = sub.add_parser("show", help="a sweep's state and runs")
    show.add_argument("sweep_id", metavar="ID")
    store_option(show)
    show.set_defaults(handler=_cmd_show)

    for verb, text in (
        ("pause", "no new runs until resumed; running runs go on"),
        ("resume", "schedule runs again; restart here a sweep whose controller died"),
        ("stop", "no new runs; running runs finish"),
        ("cancel", "no new runs; running runs are killed"),
        ("retry", "queue failed and crashed runs' configs again (after a fix) and resume"),
    ):
        p = sub.add_parser(verb, help=text)
        p.add_argument("sweep_id", metavar="ID")
        store_option(p)
        if verb in ("resume", "retry"):
            p.add_argument("--workers", type=int, metavar="N", help="agents, when restarting")
            p.add_argument(
                "--function",
                metavar="MODULE:NAME",
                help="train function, when restarting a function sweep started in a notebook",
            )
        p.set_defaults(handler=_cmd_verb)
    return parser


def _import_function(spec: str) -> Callable[..., Any]:
    """``module:name`` → the function, importable from the current directory like ``-m``."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SweepError(f"--function {spec!r}: write it as MODULE:NAME, e.g. train:main")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SweepError(f"--function {spec!r}: cannot import {module_name!r}: {exc}") from exc
    function = module
    for part in attr.split("."):
        function = getattr(function, part, None)
        if function is None:
            raise SweepError(f"--function {spec!r}: module {module_name!r} has no {attr!r}")
    if not callable(function):
        raise SweepError(f"--function {spec!r}: {attr!r} is not callable")
    return function


def _cmd_run(args: argparse.Namespace) -> int:
    import nbsweep

    config = nbsweep.validate(args.config)
    function = _import_function(args.function) if args.function else None
    if function is None:
        # Refuse a config with nothing to run before anything starts (or detaches).
        script_function(config)
    if args.detach:
        return _detach(args)
    sweep = nbsweep.sweep(
        args.config,
        function,
        workers=args.workers,
        store=args.store,
        name=args.name,
        seed=args.seed,
        fresh_process=args.fresh_process,
    )
    # The detached child reports its id on the pipe, then writes only to its log file.
    print(f"sweep {sweep.id} started", flush=True)
    if args.log:
        _redirect_output(args.log)
    return _watch(sweep, sys.stdout)


def _store_env(store: str | None) -> dict[str, str]:
    """This environment, with ``--store`` as ``$NBSWEEP_STORE``: a child's command line,
    which any local user can read, never holds the store's URL (nor its password)."""
    from nbsweep.store import ENV_VAR

    return {**os.environ, ENV_VAR: store} if store is not None else dict(os.environ)


def _detach(args: argparse.Namespace) -> int:
    """Re-run ``nbsweep run`` as a background process that outlives this terminal."""
    from nbsweep.store import private_dir

    log_dir = private_dir(Path(".nbsweep") / "logs")
    log = log_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    argv = [sys.executable, "-m", "nbsweep.cli", "run", args.config, "--log", str(log)]
    for flag in ("workers", "name", "seed", "function"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag}", str(value)]
    if args.fresh_process:
        argv.append("--fresh-process")
    child = subprocess.Popen(
        argv,
        env=_store_env(args.store),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline().strip()
    if not first.startswith("sweep "):
        child.wait()
        print(child.stderr.read().strip() or first, file=sys.stderr)
        return child.returncode or 1
    sweep_id = first.split()[1]
    print(
        f"sweep {sweep_id} running in the background (pid {child.pid}, log {log}); "
        f"watch it with 'nbsweep show {sweep_id}', end it with 'nbsweep stop {sweep_id}'"
    )
    return 0


def _redirect_output(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _watch(sweep: Any, out: TextIO) -> int:
    """Show the live table until the sweep ends; Ctrl-C stops it, a second Ctrl-C cancels.

    Returns 0 when the sweep ended by itself, 1 when the failure guard paused it (its
    controller, here, then leaves; ``nbsweep resume`` takes over), 130 after Ctrl-C.
    """
    interrupts = 0
    live = out.isatty()
    last = ""
    while True:
        try:
            state = sweep.state
            if state not in SWEEP_LIVE:
                break
            if state == SweepState.PAUSED and sweep.message.startswith("paused:"):
                out.write(render_table(sweep) + "\n")
                out.write(f"fix the program, then: nbsweep resume {sweep.id}\n")
                _release(sweep)
                return 1
            text = render_table(sweep) if live else _status_line(sweep)
            if live:
                out.write("\x1b[H\x1b[2J" + text + "\n")
            elif text != last:
                out.write(text + "\n")
            out.flush()
            last = text
            time.sleep(CLI_REFRESH_S)
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts == 1:
                out.write(
                    "\nstopping: no new runs, running runs finish (Ctrl-C again to kill them)\n"
                )
                sweep.stop()
            elif interrupts == 2:
                out.write("\ncancelling: running runs are killed\n")
                sweep.cancel()
            else:
                return INTERRUPTED
    out.write(render_table(sweep) + "\n")
    out.flush()
    _release(sweep)
    return 0 if interrupts == 0 else INTERRUPTED


def _release(sweep: Any) -> None:
    """Let this process's controller shut its agents down and give up its lease."""
    controller = sweep._controller()
    if controller is not None:
        controller.quit()
        controller.join(timeout=30)


def _status_line(sweep: Any) -> str:
    runs = sweep.runs
    counts = runs["state"].value_counts() if len(runs) else {}
    parts = [f"{n} {state}" for state, n in sorted(dict(counts).items())]
    state = sweep.state
    line = f"sweep {sweep.id} {state}: " + (", ".join(parts) or "no runs yet")
    if state in SWEEP_LIVE and not sweep.controller_alive:
        line += f"\nno controller: its process has gone; resume it with: nbsweep resume {sweep.id}"
    return line


def render_table(sweep: Any, max_rows: int | None = _TABLE_ROWS) -> str:
    """Plain-text view of a sweep: a header line, then one row per run (newest last)."""
    header = _status_line(sweep)
    message = getattr(sweep, "message", None)
    if message:
        header += f"\n{message}"
    runs = sweep.runs
    if not len(runs):
        return header
    keep = ["run_id", "state"]
    keep += [c for c in runs.columns if c.startswith("config/")]
    metric = sweep.config.metric_name
    if metric and f"summary/{metric}" in runs.columns:
        keep.append(f"summary/{metric}")
    keep += [c for c in ("runtime_s", "error") if c in runs.columns]
    table = runs[[c for c in keep if c in runs.columns]].copy()
    if "error" in table.columns:
        # The last line only, as a traceback's and a program's errors end with the cause.
        table["error"] = table["error"].map(
            lambda e: e.strip().splitlines()[-1][:60] if isinstance(e, str) and e.strip() else ""
        )
    table.columns = [c.split("/", 1)[-1] for c in table.columns]
    hidden = 0
    if max_rows is not None and len(table) > max_rows:
        hidden = len(table) - max_rows
        table = table.tail(max_rows)
    text = table.to_string(index=False, na_rep="")
    if hidden:
        text = f"... {hidden} earlier runs (nbsweep show {sweep.id})\n" + text
    return header + "\n" + text


def _cmd_agent(args: argparse.Namespace) -> int:
    import nbsweep

    if args.workers < 1:
        raise PlacementError(f"--workers {args.workers}: give at least 1")
    function = _import_function(args.function) if args.function else None
    if args.dask:
        return _dask_agents(args, function)
    if args.workers > 1:
        return _spawn_agents(args)
    nbsweep.agent(args.sweep_id, function=function, count=args.count, store=args.store)
    return 0


def _dask_agents(args: argparse.Namespace, function: Callable[..., Any] | None) -> int:
    """``--dask ADDRESS``: one agent per worker of that cluster; waits for them all."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise PlacementError(
            "--dask needs Dask's distributed package: pip install 'nbsweep[dask]'"
        ) from exc
    from nbsweep.agents import dask_agents

    try:
        client = Client(args.dask, timeout=30)
    except OSError as exc:
        raise PlacementError(f"--dask {args.dask}: cannot reach the Dask scheduler: {exc}") from exc
    with client:
        futures = dask_agents(args.sweep_id, client, function, count=args.count, store=args.store)
        executed = client.gather(futures)
    print(f"{len(executed)} Dask agents ran {sum(executed)} runs of sweep {args.sweep_id}")
    return 0


def _spawn_agents(args: argparse.Namespace) -> int:
    """``--workers N``: N agent processes of this same command, each on its own GPU(s).

    GPUs are shared out as ``nbsweep.sweep`` does (one per agent, in turn when there are
    fewer GPUs than agents; none on a machine without GPUs).
    """
    from nbsweep.agents import plan_slots

    argv = [sys.executable, "-m", "nbsweep.cli", "agent", args.sweep_id]
    for flag in ("count", "function"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag}", str(value)]
    slots = plan_slots(args.workers)
    env = _store_env(args.store)
    children = [subprocess.Popen(argv, env={**env, **slot.env}) for slot in slots]
    try:
        codes = [child.wait() for child in children]
    except KeyboardInterrupt:
        # The children got the same Ctrl-C from the terminal; let them end their runs.
        for child in children:
            child.wait()
        return INTERRUPTED
    return 0 if all(code == 0 for code in codes) else 1


def _cmd_ls(args: argparse.Namespace) -> int:
    import nbsweep

    sweeps = nbsweep.list_sweeps(store=args.store)
    if not len(sweeps):
        print("no sweeps in this store")
        return 0
    print(sweeps.to_string(index=False, na_rep=""))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    import nbsweep

    sweep = nbsweep.load(args.sweep_id, store=args.store)
    print(render_table(sweep, max_rows=None))
    return 0


def _cmd_verb(args: argparse.Namespace) -> int:
    import nbsweep

    sweep = nbsweep.load(args.sweep_id, store=args.store)
    if args.command == "retry":
        function = _import_function(args.function) if args.function else None
        queued = sweep.retry_failed(train=function, workers=args.workers)
        print(f"sweep {sweep.id}: {len(queued)} failed or crashed runs queued again", flush=True)
        if sweep.state == SweepState.PAUSED:  # by the failure guard, or by hand
            sweep.resume(train=function, workers=args.workers)
        if sweep._controller() is not None:
            print(f"sweep {sweep.id} resumed here", flush=True)
            return _watch(sweep, sys.stdout)
    elif args.command == "resume":
        function = _import_function(args.function) if args.function else None
        sweep.resume(train=function, workers=args.workers)
        if sweep._controller() is not None:
            # Nobody ran the sweep any more: this process is now its controller, and stays.
            print(f"sweep {sweep.id} resumed here", flush=True)
            return _watch(sweep, sys.stdout)
    else:
        getattr(sweep, args.command)()
    print(f"sweep {sweep.id}: {args.command} requested (state {sweep.state})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
