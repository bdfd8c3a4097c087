"""``%%sweep`` and ``%sweep``: start and steer sweeps from notebook cells.

Loaded by ``%load_ext nbsweep``. The cell body is the sweep config: YAML as a W&B user writes
it, or a Python expression (a dict, a YAML string or a path) evaluated in the notebook.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from nbsweep._errors import ConfigError, NbsweepError, PlacementError, SweepError
from nbsweep.config import ConfigWarning, load_yaml, validate

LINE_COMMANDS = ("list", "show", "pause", "resume", "stop", "cancel", "retry")


def register(ipython: Any) -> None:
    """Register the magics on a shell (called by ``nbsweep.load_ipython_extension``)."""
    ipython.register_magics(SweepMagics)


@magics_class
class SweepMagics(Magics):
    """The ``sweep`` line and cell magics; remembers the last sweep this kernel started."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.last: Any = None

    @magic_arguments()
    @argument("train", nargs="?", help="the train function (default: the last @nbsweep.train)")
    @argument("--workers", "-w", type=int, default=None, help="agents to start (default: GPUs)")
    @argument("--gpus-per-run", type=int, default=1, help="GPUs each run gets")
    @argument("--fresh-process", action="store_true", help="each run in a new process (leaky code)")
    @argument("--name", "-n", default=None, help="the sweep's display name")
    @argument("--store", default=None, help="store URL or SQLite path")
    @argument("--seed", type=int, default=None, help="seed of the search")
    @argument("--executor", default=None, help="a distributed.Client's name: agents on Dask")
    @argument("--wait", action="store_true", help="block until the sweep ends (headless runs)")
    @argument("-o", "--output", default=None, help="also store the Sweep in this variable")
    @cell_magic("sweep")
    def sweep_cell(self, line: str, cell: str) -> Any:
        """Start a sweep of the cell's config; returns the Sweep, shown as its dashboard."""
        args = parse_argstring(self.sweep_cell, line)
        try:
            with _warnings_as_messages():
                sweep = self._start(args, cell)
        except (ConfigError, SweepError) as exc:
            _report(f"%%sweep: {exc}")
            return None
        self.last = sweep
        if args.output:
            self.shell.user_ns[args.output] = sweep
        if args.wait:
            try:
                sweep.wait()
            except KeyboardInterrupt:
                # Interrupting the wait leaves the sweep running; the dashboard still shows it.
                _report(f"%%sweep: stopped waiting; sweep {sweep.id} goes on (%sweep stop)")
        return sweep

    def _start(self, args: Any, cell: str) -> Any:
        config = self._config_from_cell(cell)
        # A ``program:`` config runs its script, unless a function is named.
        program = args.train is None and _runs_a_program(config)
        train = None if program else self._train(args.train)
        executor = self._executor(args.executor)
        from nbsweep._sweep import sweep as start

        return start(
            config,
            train,
            workers=args.workers,
            store=args.store,
            name=args.name,
            gpus_per_run=args.gpus_per_run,
            seed=args.seed,
            executor=executor,
            fresh_process=args.fresh_process,
        )

    @magic_arguments()
    @argument("command", choices=LINE_COMMANDS, help="what to do")
    @argument("id", nargs="?", default=None, help="sweep id (default: this kernel's last)")
    @argument("--train", default=None, help="resume: the train function's name")
    @argument("--workers", "-w", type=int, default=None, help="resume: agents to start")
    @argument("--executor", default=None, help="resume: a distributed.Client's name")
    @argument("--store", default=None, help="store URL or SQLite path")
    @line_magic("sweep")
    def sweep_line(self, line: str) -> Any:
        """``%sweep list | show ID | pause | resume | stop | cancel | retry [ID]``.

        ``%sweep resume ID --executor client`` restarts a sweep whose controller ended with
        its agents on that Dask client.
        """
        try:
            args = parse_argstring(self.sweep_line, line)
        except Exception as exc:  # noqa: BLE001 - argparse's usage errors, shown briefly
            _report(f"%sweep: {exc}\nusage: %sweep {' | '.join(LINE_COMMANDS)} [ID]")
            return None
        try:
            return self._line_command(args)
        except NbsweepError as exc:
            _report(f"%sweep {args.command}: {exc}")
            return None

    def _line_command(self, args: Any) -> Any:
        from nbsweep._sweep import list_sweeps

        if args.command == "list":
            listed = list_sweeps(store=args.store)
            if "controller" in listed.columns:
                # The notebook's own words for the same step.
                listed["controller"] = listed["controller"].str.replace(
                    "nbsweep resume", "%sweep resume", regex=False
                )
            return listed
        known = self.last
        sweep = self._target(args.id, args.store)
        if args.command == "show":
            return sweep
        if args.command == "resume":
            # A sweep this kernel runs keeps its function; one reopened from the store (after
            # a restart, or from another notebook) gets the function defined here now.
            reopened = sweep is not known
            train = self._train(args.train) if (args.train or reopened) else None
            executor = self._executor(args.executor)
            seen = len(sweep.events())
            sweep.resume(train=train, workers=args.workers, executor=executor)
            _say_resumed(sweep, seen)
            from IPython.display import display

            display(sweep)  # the live dashboard again, as %%sweep showed it
            return None
        elif args.command == "retry":
            sweep.retry_failed()
        else:
            getattr(sweep, args.command)()
        print(f"sweep {sweep.id}: {sweep.state}" + (f" ({sweep.message})" if sweep.message else ""))
        return None

    def _target(self, sweep_id: str | None, store: str | None) -> Any:
        from nbsweep._sweep import load

        if sweep_id is None:
            if self.last is None:
                raise SweepError("no sweep started in this kernel yet: give its id")
            return self.last
        if self.last is not None and str(self.last.id) == sweep_id and store is None:
            return self.last
        sweep = load(sweep_id, store=store)
        self.last = sweep
        return sweep

    def _train(self, name: str | None) -> Any:
        if name is None:
            from nbsweep._train import last_train_function

            function = last_train_function()
            if function is None:
                raise SweepError(
                    "no train function: decorate one with @nbsweep.train or name it "
                    "(%%sweep my_train)"
                )
            return function
        if name not in self.shell.user_ns:
            raise SweepError(f"no function named {name!r} in the notebook: define it first")
        function = self.shell.user_ns[name]
        if not callable(function):
            raise SweepError(f"{name!r} is a {type(function).__name__}, not a function")
        return function

    def _executor(self, name: str | None) -> Any:
        """The Dask client named ``name`` in the notebook (None: local agents)."""
        if name is None:
            return None
        if name not in self.shell.user_ns:
            raise PlacementError(
                f"--executor {name}: no variable named {name!r} in the notebook; create the"
                f" Dask client first ({name} = distributed.Client(...))"
            )
        client = self.shell.user_ns[name]
        # Never imported here: an object made by distributed has loaded it already.
        distributed = sys.modules.get("distributed")
        if distributed is None or not isinstance(client, distributed.Client):
            raise PlacementError(
                f"--executor {name}: {name!r} is a {type(client).__name__}, not a"
                f" distributed.Client ({name} = distributed.Client(cluster))"
            )
        return client

    def _config_from_cell(self, cell: str) -> Any:
        """The config a cell body stands for: YAML text, or a Python expression's value.

        A body that compiles as a Python expression is evaluated first, so a dict literal keeps
        Python's meaning (``True``, ``1e-5``); a flow-style YAML mapping (``{method: grid}``)
        compiles too but names nothing in the notebook, and falls back to YAML.
        """
        if not cell.strip():
            raise ConfigError("the %%sweep cell is empty: write the sweep config (YAML) in it")
        expression = self.shell.transform_cell(cell).strip()
        try:
            code = compile(expression, "<%%sweep>", "eval")
        except SyntaxError:
            code = None
        if code is not None:
            try:
                value = eval(code, self.shell.user_ns)  # noqa: S307 - the user's own cell
            except NameError as exc:
                value = _yaml_mapping(cell)
                if value is None:
                    raise SweepError(f"the %%sweep cell names something undefined: {exc}") from None
            return _checked(value)
        # The same YAML reading as config files: YAML 1.2 floats (1e-5), errors with places.
        return _checked(load_yaml(cell))


def _runs_a_program(config: Any) -> bool:
    """Whether the sweep config names a ``program`` (or ``command``) for its runs."""
    normalised = validate(config)
    return normalised.program is not None or bool(normalised.command)


def _yaml_mapping(text: str) -> dict[str, Any] | None:
    try:
        value = load_yaml(text)
    except ConfigError:
        return None
    return value if isinstance(value, dict) else None


def _checked(value: Any) -> Any:
    if isinstance(value, (Mapping, str)) or hasattr(value, "__fspath__"):  # a SweepConfig too
        return value
    raise ConfigError(
        f"the %%sweep cell gave a {type(value).__name__}: it must be a config mapping "
        "(YAML or a dict) or the path of a YAML file"
    )


@contextmanager
def _warnings_as_messages() -> Iterator[None]:
    """nbsweep's warnings while a sweep starts, shown as their message only: the file and
    source line Python's warning display adds are nbsweep's internals, not the user's."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    shown: set[str] = set()
    for warning in caught:
        ours = warning.filename.startswith(_PACKAGE) or issubclass(warning.category, ConfigWarning)
        if issubclass(warning.category, UserWarning) and ours:
            text = f"{warning.category.__name__}: {warning.message}"
            if text not in shown:  # the config is validated twice on the way
                shown.add(text)
                print(text, file=sys.stderr)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


_PACKAGE = str(Path(__file__).resolve().parent)


def _say_resumed(sweep: Any, seen: int) -> None:
    """What resuming did, in a line or two: taken over here, and the runs queued again."""
    print(f"sweep {sweep.id}: {sweep.state}")
    for message in sweep.events()["message"].iloc[seen:]:
        if message.startswith("resumed here"):
            print(f"sweep {sweep.id} {message.replace('; ', ': ', 1)}")


def _report(message: str) -> None:
    # A short message, not a traceback: the user fixes the config or the name and reruns.
    print(message, file=sys.stderr)
