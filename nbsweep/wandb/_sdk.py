"""W&B's run API (``wandb.init``, ``wandb.log``, ``run.summary``...) over nbsweep's runs.

This module is what ``import wandb`` gives inside nbsweep's runs (``routed``, and the
``_shim`` folder on a program's ``PYTHONPATH``), so W&B code records into the sweep unchanged.
Inside a run, ``init`` joins the nbsweep run this process is executing; outside one (the
"overfit one batch" sanity check), it gives a run with the given config that records nothing.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbsweep import _train
from nbsweep._errors import RunStopped, SweepError
from nbsweep.store import logged_row, new_id

# The folder that holds the ``wandb`` stand-in package for programs; on their PYTHONPATH only.
SHIM_DIR = Path(__file__).with_name("_shim")

# What a user hears once per process: arguments and calls that do nothing here.
_noted: set[str] = set()

_current: Run | None = None


class WandbNote(UserWarning):
    """A W&B argument or call that nbsweep accepts and ignores (said once per process)."""


def note(key: str, message: str, stacklevel: int = 3) -> None:
    """Say ``message`` once per process (per ``key``), pointing at the W&B call's caller."""
    if key in _noted:
        return
    _noted.add(key)
    warnings.warn(f"nbsweep.wandb: {message}", WandbNote, stacklevel=stacklevel)


class ConfigError(Exception):
    """W&B's ``wandb.sdk.lib.config_util.ConfigError``, which integrations import."""


class RunConfig(_train.Config):
    """``run.config``: attribute and item access, W&B's ``update``; the sweep's keys are locked.

    As in W&B, a value the sweep chose wins over one the code sets: such an update is
    ignored, with a note.
    """

    def __init__(self, data: Mapping[str, Any] | None = None, locked: Iterable[str] = ()) -> None:
        object.__setattr__(self, "_locked", frozenset(locked))
        super().__init__(data)

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self._locked and key in self:
            if self[key] != value:
                note(
                    f"locked:{key}",
                    f"config[{key!r}] is set by the sweep; the update to {value!r} is ignored"
                    " (as in W&B)",
                )
            return
        if isinstance(value, Mapping) and not isinstance(value, _train.Config):
            value = _train.Config(value)
        super().__setitem__(key, value)

    def update(self, other: Any = None, allow_val_change: Any = None, **kwargs: Any) -> None:
        """Add or change keys (``allow_val_change`` is accepted: values may always change)."""
        for key, value in {**_as_dict(other), **kwargs}.items():
            self[key] = value

    def setdefaults(self, other: Mapping[str, Any]) -> None:
        """Set the keys of ``other`` that the config does not have yet."""
        for key, value in _as_dict(other).items():
            if key not in self:
                self[key] = value

    def as_dict(self) -> dict[str, Any]:
        return dict(self)


def _as_dict(config: Any) -> dict[str, Any]:
    """A config given as W&B accepts it: a mapping, an ``argparse.Namespace``, the path of a
    W&B config file, or None."""
    if config is None:
        return {}
    if isinstance(config, argparse.Namespace):
        return vars(config)
    if isinstance(config, Mapping):
        return dict(config)
    if isinstance(config, str | os.PathLike):
        return config_file(Path(config))
    raise TypeError(
        "wandb config must be a dict, an argparse.Namespace or a YAML file's path,"
        f" not {type(config).__name__}"
    )


# W&B's file of config defaults, read by every ``wandb.init`` from the working directory.
DEFAULTS_FILE = "config-defaults.yaml"


def config_file(path: Path) -> dict[str, Any]:
    """A W&B config file's values: ``key: {value: v, desc: ...}`` (``wandb_version: 1``
    optional), as W&B reads ``config-defaults.yaml`` and ``wandb.init(config="file.yaml")``."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SweepError(f"wandb config file {str(path)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"wandb config file {str(path)!r} is not valid YAML: {exc}") from None
    loaded = loaded or {}
    if not isinstance(loaded, dict):
        raise SweepError(f"wandb config file {str(path)!r}: expected keys, found a list or value")
    loaded.pop("wandb_version", None)
    values = {}
    for key, entry in loaded.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise SweepError(
                f"wandb config file {str(path)!r}: write {key}: {{value: ...}}"
                f" (W&B's format), not {key}: {entry!r}"
            )
        values[key] = entry["value"]
    return values


class Summary(MutableMapping[str, Any]):
    """``run.summary``: its writes land in the nbsweep run's summary (``sweep.runs``)."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._local: dict[str, Any] = {}  # a run outside a sweep keeps it here

    def _data(self) -> dict[str, Any]:
        context = self._run._context
        return context.summary if context is not None else self._local

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        del self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._data()))

    def __len__(self) -> int:
        return len(self._data())

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        values = logged_row({**dict(other), **kwargs}, "run.summary", "set")
        self._data().update(values)
        context = self._run._context
        if context is not None and self._run._program:
            # A program's summary reaches its agent through the store (the agent copies it
            # back when the program ends): written at once, so nothing set is lost.
            context.store.set_summary(context.run_id, context.summary)

    def __repr__(self) -> str:
        return repr(self._data())


class Run:
    """What ``wandb.init`` returns: ``config``, ``log``, ``summary``, ``finish``, ``id``, ``name``.

    Also a context manager (``with wandb.init() as run:``) that finishes the run on exit.
    """

    def __init__(
        self,
        context: _train.RunContext | None,
        config: RunConfig,
        name: str | None,
        project: str | None,
        program: bool,
    ) -> None:
        self._context = context
        self._program = program
        self.config = config
        self.summary = Summary(self)
        self.id = context.run_id if context is not None else new_id()
        self.name = name or self.id
        self.project = project
        self.sweep_id = context.sweep_id if context is not None else None
        self._pending: dict[str, Any] = {}
        self._finished = False

    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        """Log a row (``nbsweep.log``); ``commit=False`` keeps it to merge into the next one."""
        if self._finished:
            raise SweepError(f"run {self.id} is finished: call wandb.init() again to log more")
        if not isinstance(data, Mapping):
            raise TypeError(f"wandb.log() takes a dict of values, not {type(data).__name__}")
        row = {**self._pending, **_recordable(data)}
        if commit is False:
            self._pending = row
            return
        self._pending = {}
        if self._context is not None and row:
            self._context.log(row, step)

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """End this W&B run (the nbsweep run ends when the train function or program does)."""
        global _current
        if self._finished:
            return
        if self._pending:
            self.log({})
        self._finished = True
        if _current is self:
            _current = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.finish()
        return False

    def define_metric(self, name: str, *args: Any, **kwargs: Any) -> None:
        _ignored("define_metric")

    def watch(self, *args: Any, **kwargs: Any) -> None:
        _ignored("watch")

    def log_artifact(self, *args: Any, **kwargs: Any) -> Ignored:
        _ignored("log_artifact")
        return Ignored()

    def use_artifact(self, *args: Any, **kwargs: Any) -> Ignored:
        _ignored("use_artifact")
        return Ignored()

    def save(self, *args: Any, **kwargs: Any) -> None:
        _ignored("save")

    def unwatch(self, *args: Any, **kwargs: Any) -> None:
        _ignored("unwatch")

    def restore(self, *args: Any, **kwargs: Any) -> None:
        _ignored("restore")

    def alert(self, *args: Any, **kwargs: Any) -> None:
        _ignored("alert")

    def _label(self, **kwargs: Any) -> None:
        """W&B's private telemetry label (integrations call it); nothing to label here."""

    def __repr__(self) -> str:
        where = f"sweep {self.sweep_id}" if self.sweep_id else "no sweep: not recorded"
        return f"<nbsweep.wandb.Run {self.id} ({where})>"


class Ignored:
    """What W&B calls outside the sweep workflow return here (artifacts, tables, media).

    Any method call, attribute or ``with`` block on it does nothing; logged, it is left out.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return Ignored()

    def __call__(self, *args: Any, **kwargs: Any) -> Ignored:
        return Ignored()

    def __enter__(self) -> Ignored:
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False


def _ignored(name: str) -> None:
    note(name, f"wandb.{name}() has no effect here (nothing leaves this machine)", 4)


def _ignored_class(name: str) -> type[Ignored]:
    """A W&B class (``wandb.Image``, ``wandb.Artifact``...) whose objects do nothing here."""

    def __init__(self: Ignored, *args: Any, **kwargs: Any) -> None:
        _ignored(name)

    return type(name, (Ignored,), {"__init__": __init__, "__module__": __name__})


class _Plot:
    """``wandb.plot``: its charts (``wandb.plot.line(...)``...) are W&B media, ignored here."""

    def __getattr__(self, name: str) -> Callable[..., Ignored]:
        if name.startswith("__"):
            raise AttributeError(name)

        def chart(*args: Any, **kwargs: Any) -> Ignored:
            _ignored(f"plot.{name}")
            return Ignored()

        return chart


plot = _Plot()


def _recordable(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without the media and tables W&B would upload (they are not recorded)."""
    kept = {}
    for key, value in data.items():
        if isinstance(value, Ignored):
            kind = type(value).__name__
            what = "W&B charts" if kind == "Ignored" else f"wandb.{kind} values"
            note(
                f"logged:{kind}",
                f"{key!r}: {what} are not recorded (numbers, strings, lists and dicts are)",
            )
            continue
        kept[key] = value
    return kept


def _context() -> tuple[_train.RunContext | None, bool]:
    """The nbsweep run this process executes, and whether it is a program's (one whose run
    the agent named in the ``NBSWEEP_*`` variables)."""
    context = _train.current_run()
    if context is None:
        context = _train.run_from_env()
        _train.set_current_run(context)
    program = context is not None and os.environ.get("NBSWEEP_RUN_ID") == context.run_id
    return context, program


def init(
    entity: str | None = None,
    project: str | None = None,
    dir: Any = None,
    id: str | None = None,
    name: str | None = None,
    notes: str | None = None,
    tags: Any = None,
    config: Any = None,
    **ignored: Any,
) -> Run:
    """W&B's ``wandb.init``: the run this process executes, with the sweep's config.

    The arguments are W&B's, in W&B's order (``wandb.init("team", "project")`` means what it
    means there). As in W&B, ``config`` goes over ``config-defaults.yaml`` of the working
    directory, and the sweep's parameters over both. Outside an nbsweep run the run records
    nothing. W&B's other arguments are accepted and ignored.
    """
    global _current
    ignored = {"entity": entity, "dir": dir, "id": id, "notes": notes, "tags": tags, **ignored}
    for key, value in ignored.items():
        if value is not None:
            note(f"init:{key}", f"wandb.init({key}=...) has no effect here")
    context, program = _context()
    if _current is not None:
        _current.finish()  # W&B ends the previous run of the process too
    if context is None:
        note(
            "init:outside",
            "wandb.init() outside a sweep run: the run uses the given config and records"
            " nothing (run it with wandb.agent to record)",
        )
        params: Mapping[str, Any] = {}
    else:
        params = context.config or _stored_config(context)
    defaults = Path(DEFAULTS_FILE)
    given = {**(config_file(defaults) if defaults.is_file() else {}), **_as_dict(config)}
    run_config = RunConfig({**given, **params}, locked=params)
    _current = Run(context, run_config, name, project, program)
    return _current


def _stored_config(context: _train.RunContext) -> Mapping[str, Any]:
    """A program run's parameters, as its agent claimed them."""
    stored = context.store.run(context.run_id)
    return stored.config if stored is not None else {}


def _run() -> Run:
    if _current is None:
        raise SweepError("call wandb.init() first: there is no current W&B run in this process")
    return _current


def log(data: Mapping[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """W&B's ``wandb.log``: log a row to the current run."""
    _run().log(data, step=step, commit=commit)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """W&B's ``wandb.finish``: end the current W&B run, if any."""
    if _current is not None:
        _current.finish(exit_code, quiet)


class _BeforeInit:
    """``wandb.config`` and ``wandb.summary`` before ``wandb.init``: W&B's error on use."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        raise SweepError(f"call wandb.init() before using wandb.{self._name}")

    def __getitem__(self, key: str) -> Any:
        raise SweepError(f"call wandb.init() before using wandb.{self._name}")

    __setitem__ = __getitem__


def __getattr__(name: str) -> Any:
    """``wandb.run``, ``wandb.config`` and ``wandb.summary``: those of the current run."""
    if name == "run":
        return _current
    if name in ("config", "summary"):
        return getattr(_current, name) if _current is not None else _BeforeInit(name)
    raise AttributeError(f"module 'wandb' (nbsweep.wandb) has no attribute {name!r}")


def login(*args: Any, **kwargs: Any) -> bool:
    """No account is needed here: nothing to log in to."""
    _ignored("login")
    return True


def define_metric(name: str, *args: Any, **kwargs: Any) -> None:
    _ignored("define_metric")


def watch(*args: Any, **kwargs: Any) -> None:
    _ignored("watch")


def unwatch(*args: Any, **kwargs: Any) -> None:
    _ignored("unwatch")


def save(*args: Any, **kwargs: Any) -> None:
    _ignored("save")


def restore(*args: Any, **kwargs: Any) -> None:
    _ignored("restore")


def alert(*args: Any, **kwargs: Any) -> None:
    _ignored("alert")


def log_artifact(*args: Any, **kwargs: Any) -> Ignored:
    _ignored("log_artifact")
    return Ignored()


def use_artifact(*args: Any, **kwargs: Any) -> Ignored:
    _ignored("use_artifact")
    return Ignored()


def termlog(message: str = "", *args: Any, **kwargs: Any) -> None:
    print(f"wandb: {message}", file=sys.stderr)


def termwarn(message: str = "", *args: Any, **kwargs: Any) -> None:
    print(f"wandb: WARNING {message}", file=sys.stderr)


def termerror(message: str = "", *args: Any, **kwargs: Any) -> None:
    print(f"wandb: ERROR {message}", file=sys.stderr)


def _ignored_call(name: str) -> Callable[..., Ignored]:
    """A W&B call outside the sweep workflow (``wandb.log_model``...): a no-op said once."""

    def call(*args: Any, **kwargs: Any) -> Ignored:
        _ignored(name)
        return Ignored()

    call.__name__ = call.__qualname__ = name
    return call


# W&B's model registry, service and chart calls: nothing here to register, start or draw.
IGNORED_CALLS = (
    "link_model",
    "log_model",
    "mark_preempting",
    "plot_table",
    "require",
    "setup",
    "teardown",
    "use_model",
)
globals().update({name: _ignored_call(name) for name in IGNORED_CALLS})

IGNORED_CLASSES = (
    "Api",
    "Artifact",
    "Audio",
    "Classes",
    "Graph",
    "Histogram",
    "Html",
    "Image",
    "Molecule",
    "Object3D",
    "Plotly",
    "Settings",
    "Table",
    "Video",
)
globals().update({name: _ignored_class(name) for name in IGNORED_CLASSES})
Error = SweepError  # ``except wandb.Error`` catches what this module raises


class CommError(SweepError):
    """W&B's error for a failed call to its server; never raised here (there is none)."""


class UsageError(SweepError):
    """W&B's error for a misused call; here such calls raise ``Error`` or ``TypeError``."""


# ``wandb.AlertLevel.WARN``..., the levels of ``wandb.alert``, which does nothing here.
AlertLevel = Ignored()


class NoConfig:
    """A W&B train function, called as ``wandb.agent`` calls it: with no arguments (it reads
    its config from ``wandb.init()``)."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self.function = function

    def __call__(self, config: Mapping[str, Any]) -> Any:
        return self.function()


# -- routing ``import wandb`` here ----------------------------------------------------------


@functools.cache
def _modules() -> Mapping[str, types.ModuleType]:
    """``wandb`` and the few submodules integrations import from it (Hugging Face's
    ``from wandb.sdk.lib.config_util import ConfigError``); built once, put in place per run."""
    config_util = types.ModuleType("wandb.sdk.lib.config_util")
    config_util.ConfigError = ConfigError  # type: ignore[attr-defined]
    lib = types.ModuleType("wandb.sdk.lib")
    lib.config_util = config_util  # type: ignore[attr-defined]
    sdk = types.ModuleType("wandb.sdk")
    sdk.lib = lib  # type: ignore[attr-defined]
    return types.MappingProxyType(
        {
            "wandb": sys.modules[__name__],
            "wandb.sdk": sdk,
            "wandb.sdk.lib": lib,
            "wandb.sdk.lib.config_util": config_util,
        }
    )


def route() -> None:
    """Make ``import wandb`` give this module in this process (a program the agent runs)."""
    sys.modules.update(_modules())
    atexit.register(finish)


@contextmanager
def routed() -> Iterator[None]:
    """``import wandb`` gives this module while one run executes, then what it gave before.

    The agent wraps each run in it, so a train function's ``import wandb`` records into the
    run, whether or not W&B's package is installed, and the real package (if any) is back
    for everything outside the run.
    """
    saved = {name: sys.modules.get(name) for name in _modules()}
    sys.modules.update(_modules())
    try:
        yield
    finally:
        _close_left_open()
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _close_left_open() -> None:
    """End a W&B run the train function left open, as W&B does when the run's process ends.

    Never raises: the nbsweep run has ended already, and how it ended stands.
    """
    global _current
    run = _current
    try:
        if run is not None:
            run.finish()
    except (Exception, RunStopped) as exc:
        note(
            "finish:left-open",
            f"the run's last wandb.log(commit=False) values were not recorded: {exc}",
        )
    finally:
        _current = None


def program_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that route a program's ``import wandb`` here.

    ``SHIM_DIR`` goes first on ``PYTHONPATH``, for this program (and what it starts) only;
    ``WANDB_MODE=offline`` keeps W&B's own package off the network should a child process
    drop ``PYTHONPATH``.
    """
    path = [str(SHIM_DIR), *filter(None, environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"PYTHONPATH": os.pathsep.join(path), "WANDB_MODE": "offline"}
