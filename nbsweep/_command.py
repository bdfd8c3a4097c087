"""Script sweeps: the argv W&B's agent would build for one run, and running it.

A sweep config with ``program:`` (and optionally ``command:``) runs each run as a subprocess
instead of a train function. The argv is built exactly as ``wandb agent`` builds it
(``wandb/wandb_agent.py::Agent._command_run``), so a config written for W&B passes the same
arguments to the same script. The program is always started from an argv list, never through
a shell: a parameter value like ``"; rm -rf ~"`` reaches it as one literal argument.

Two differences from W&B, both on purpose (see ``docs/cli.md``):

- ``${interpreter}`` is the agent's own ``sys.executable`` rather than whatever ``python`` is
  first on ``PATH``, so the program sees the environment in which nbsweep (and
  ``nbsweep.log``) is installed.
- An unknown whole-element macro (``${arg}``, ``${envvar:lowercase}``, ``${args_dict}``) is a
  ``ConfigError`` naming ``command[i]``; W&B silently drops the element, which loses every
  parameter on a typo.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from nbsweep._errors import ConfigError
from nbsweep._timing import KILL_GRACE_S, STOP_NOTICE_S
from nbsweep.config import SweepConfig
from nbsweep.store import private_dir
from nbsweep.wandb._sdk import program_env as wandb_env

DEFAULT_COMMAND = ("${env}", "${interpreter}", "${program}", "${args}")

# W&B's regex (``wandb/sdk/launch/sweeps/utils.py``): upper case, digits and ``_`` only.
_ENVVAR = re.compile(r"\$\{envvar\:([A-Z0-9_]*)\}")

MACROS = (
    "env",
    "interpreter",
    "program",
    "args",
    "args_no_hyphens",
    "args_no_boolean_flags",
    "args_no_equals",
    "args_json",
    "args_json_file",
    "args_append_hydra",
    "args_override_hydra",
)

# linux/prctl.h
_PR_SET_PDEATHSIG = 1


def _template(sweep_config: SweepConfig) -> list[Any]:
    """The command template: the config's non-empty ``command`` list, else W&B's default."""
    return list(sweep_config.command or DEFAULT_COMMAND)


def check_command(sweep_config: SweepConfig) -> list[str]:
    """Problems (``key.path: message``) with ``program``/``command``, before any run starts."""
    problems: list[str] = []
    program = sweep_config.program
    for i, element in enumerate(_template(sweep_config)):
        # Variables are substituted before macros are looked for; their values are not
        # known yet, so they stand for plain text here.
        problem = _macro_problem(i, _ENVVAR.sub("x", str(element)), program)
        if problem:
            problems.append(problem)
    return problems


def _macro_problem(index: int, text: str, program: Any) -> str | None:
    """What is wrong with a whole-element macro at ``command[index]``, if anything."""
    if not (text.startswith("${") and text.endswith("}")):
        return None
    name = text[2:-1]
    if name in MACROS:
        if name == "program" and program is None:
            return (
                f"command[{index}]: uses ${{program}} but the config has no 'program' key; "
                "add 'program: train.py' (the script to run)"
            )
        return None
    if name.startswith("envvar:"):
        hint = "environment variable names must be upper case, digits and '_' only"
    elif name == "args_dict":
        hint = "W&B appends only the parameter names for it; use ${args_json} instead"
    else:
        hint = "known macros: " + ", ".join(f"${{{m}}}" for m in MACROS) + ", ${envvar:NAME}"
    return f"command[{index}]: unknown macro {text!r}; {hint}"


def args_json_path(run_dir: str | os.PathLike[str], run_id: str) -> Path:
    """Where ``${args_json_file}`` points: ``config-<run>.json`` in the run's file directory."""
    return Path(run_dir) / f"config-{run_id}.json"


def param_path(run_dir: str | os.PathLike[str], run_id: str) -> Path:
    """The YAML file ``WANDB_SWEEP_PARAM_PATH`` names, as W&B's ``config-<run>.yaml``."""
    return Path(run_dir) / f"config-{run_id}.yaml"


def default_run_dir(sweep_id: str, environ: Mapping[str, str] | None = None) -> Path:
    """W&B's layout: ``$WANDB_DIR/wandb/sweep-<id>``, with ``WANDB_DIR`` the cwd when unset."""
    env = os.environ if environ is None else environ
    return Path(env.get("WANDB_DIR") or os.getcwd()).absolute() / "wandb" / f"sweep-{sweep_id}"


def _expand_envvars(element: str, environ: Mapping[str, str]) -> str:
    # W&B replaces an unset variable by its bare name, not by "" (verified behaviour).
    return _ENVVAR.sub(lambda m: environ.get(m.group(1), m.group(1)), element)


def _macro_values(
    sweep_config: SweepConfig,
    run_config: Mapping[str, Any],
    json_file: Callable[[], str],
) -> dict[str, Callable[[], list[str]]]:
    # Values are formatted with Python's str() as W&B does: True, None, [1, 2], {'b': 1}.
    items = list(run_config.items())
    program = sweep_config.program
    return {
        "env": lambda: [] if sys.platform == "win32" else ["/usr/bin/env"],
        "interpreter": lambda: [sys.executable],
        "program": lambda: [] if program is None else [str(program)],
        "args": lambda: [f"--{k}={v}" for k, v in items],
        "args_no_hyphens": lambda: [f"{k}={v}" for k, v in items],
        "args_no_boolean_flags": lambda: [
            f"--{k}" if v is True else f"--{k}={v}" for k, v in items if v is not False
        ],
        "args_no_equals": lambda: [part for k, v in items for part in (f"--{k}", str(v))],
        "args_json": lambda: [json.dumps(dict(items))],
        "args_json_file": lambda: [json_file()],
        "args_append_hydra": lambda: [f"+{k}={v}" for k, v in items],
        "args_override_hydra": lambda: [f"++{k}={v}" for k, v in items],
    }


def build_command(
    sweep_config: SweepConfig,
    run_config: Mapping[str, Any],
    *,
    sweep_id: str,
    run_id: str,
    run_dir: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The argv of one run, expanded from the command template as ``wandb agent`` does.

    ``run_config`` is the nested run config of plain values; a nested block is one top-level
    argument with a dict value, as in W&B's wire format. ``${args_json_file}`` writes its file
    into ``run_dir`` only when the template uses it. Raises ``ConfigError`` for a bad template.
    """
    problems = check_command(sweep_config)
    if problems:
        raise ConfigError(problems)
    env = os.environ if environ is None else environ

    def json_file() -> str:
        path = args_json_path(run_dir, run_id)
        _write_private(path, json.dumps(dict(run_config)))
        return str(path)

    macros = _macro_values(sweep_config, run_config, json_file)
    argv: list[str] = []
    for i, element in enumerate(_template(sweep_config)):
        text = _expand_envvars(str(element), env)
        if text.startswith("${") and text.endswith("}"):
            # A variable's value can itself be a macro, which W&B expands too.
            problem = _macro_problem(i, text, sweep_config.program)
            if problem:
                raise ConfigError(problem)
            argv.extend(macros[text[2:-1]]())
        else:
            argv.append(text)
    return argv


def write_param_file(
    run_config: Mapping[str, Any], *, run_id: str, run_dir: str | os.PathLike[str]
) -> Path:
    """Write W&B's ``config-<run>.yaml`` (``wandb_version: 1`` + ``{k: {value: v}}``)."""
    text = "wandb_version: 1"
    if run_config:
        # Plain dicts: safe_dump refuses the run's ``Config`` (a dict subclass), nested too.
        wire = {k: {"value": v} for k, v in json.loads(json.dumps(run_config)).items()}
        text += "\n\n" + yaml.safe_dump(
            wire, default_flow_style=False, allow_unicode=True, sort_keys=False
        )
    path = param_path(run_dir, run_id)
    _write_private(path, text)
    return path


def _write_private(path: Path, text: str) -> None:
    # Run configs can hold paths or tokens: owner-only, like the store's own files, and so
    # is every directory made on the way (``mkdir(parents=True)`` leaves those to the umask).
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def program_env(
    *,
    store: str,
    sweep_id: str,
    run_id: str,
    param_file: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the program: the agent's, plus how ``nbsweep.log`` finds its run.

    The ``WANDB_*`` variables are those ``wandb agent`` sets, so a program written for W&B
    finds its sweep id, run id and parameter file where it expects them; its ``import wandb``
    gives nbsweep's stand-in (``nbsweep.wandb._sdk.program_env``), which records into the run.
    """
    env = dict(os.environ if environ is None else environ)
    env.setdefault("WANDB_DIR", os.path.abspath(os.getcwd()))
    env.update(
        {
            "NBSWEEP_STORE": store,
            "NBSWEEP_SWEEP_ID": sweep_id,
            "NBSWEEP_RUN_ID": run_id,
            "WANDB_SWEEP_ID": sweep_id,
            "WANDB_RUN_ID": run_id,
            "WANDB_SWEEP_PARAM_PATH": str(param_file),
            **wandb_env(env),
        }
    )
    return env


@dataclass(frozen=True)
class ProgramResult:
    """How a program run ended: exit code (negative: killed by that signal), output tail."""

    returncode: int
    output_tail: str
    stopped: bool

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        """A failed run's error: the output tail, then (last, as in a traceback) how it ended."""
        if self.returncode < 0:
            try:
                how = f"killed by {signal.Signals(-self.returncode).name}"
            except ValueError:
                how = f"killed by signal {-self.returncode}"
        else:
            how = f"exited with code {self.returncode}"
        tail = self.output_tail.rstrip()
        return (f"program output (last lines):\n{tail}\n" if tail else "") + f"program {how}"


def _pump(source: IO[bytes], sink: IO[str] | None, tail: collections.deque[str]) -> None:
    # Forward the program's output line by line (to the agent's log) and keep the tail
    # for the error message of a failed run.
    for raw in iter(source.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        tail.append(line)
        if sink is not None:
            sink.write(line)
            sink.flush()
    source.close()


def run_program(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    grace_s: float = KILL_GRACE_S,
    poll_s: float = 0.1,
    cwd: str | os.PathLike[str] | None = None,
    output: IO[str] | None = None,
    tail_lines: int = 40,
) -> ProgramResult:
    """Run one program to its end; when ``should_stop()`` turns true, SIGTERM then SIGKILL.

    The program gets its own process group, so the signals also reach the data loaders and
    other children it started, and a Ctrl-C in the agent's terminal is relayed by the agent
    rather than hitting the program directly. On Linux the program also gets SIGTERM when
    the agent itself dies (a cancelled sweep kills its agents), so it is never orphaned.
    """
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    try:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=sys.platform != "win32",
            preexec_fn=_term_with_parent(),
        )
    except OSError as exc:
        # A missing program or interpreter is the run's failure, not the agent's.
        return ProgramResult(127, f"cannot start {argv[0]!r}: {exc}", stopped=False)
    pump = threading.Thread(target=_pump, args=(proc.stdout, output, tail), daemon=True)
    pump.start()
    stopped = False
    killed_at: float | None = None
    try:
        while proc.poll() is None:
            if not stopped and should_stop():
                stopped = True
                _signal(proc, signal.SIGTERM)
                killed_at = time.monotonic() + grace_s
            elif killed_at is not None and time.monotonic() >= killed_at:
                _signal(proc, signal.SIGKILL)
                killed_at = None
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=poll_s)
    except BaseException:
        # The agent itself is interrupted (Ctrl-C): the program must not outlive it.
        _signal(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL)
        raise
    pump.join(timeout=5)
    return ProgramResult(proc.returncode, "".join(tail), stopped=stopped)


def _term_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send SIGTERM to the program when the agent dies.

    ``prctl`` is looked up here, before the fork, so that the child only makes one system
    call between fork and exec. The signal fires when the thread that started the program
    ends; ``run_program`` blocks that thread until the program is over.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the agent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        if sys.platform != "win32":
            os.killpg(proc.pid, sig)
        elif sig == signal.SIGTERM:
            proc.terminate()
        else:
            proc.kill()


def run_script_trial(
    sweep_config: SweepConfig,
    run_config: Mapping[str, Any],
    *,
    store: str,
    sweep_id: str,
    run_id: str,
    should_stop: Callable[[], bool] = lambda: False,
    output: IO[str] | None = None,
    grace_s: float = KILL_GRACE_S,
) -> ProgramResult:
    """Run one run of a ``program:`` sweep as ``wandb agent`` would, in the agent's cwd.

    Writes W&B's parameter file, builds the argv, and runs the program with the environment
    through which its ``nbsweep.log`` (or ``wandb.init``) finds the run. The caller maps the
    result to a run state: ``ok`` → finished, ``stopped`` → stopped/killed, else failed.
    """
    run_dir = default_run_dir(sweep_id)
    argv = build_command(
        sweep_config, run_config, sweep_id=sweep_id, run_id=run_id, run_dir=run_dir
    )
    param_file = write_param_file(run_config, run_id=run_id, run_dir=run_dir)
    env = program_env(store=store, sweep_id=sweep_id, run_id=run_id, param_file=param_file)
    if output is not None:
        output.write("$ " + shlex.join(argv) + "\n")
    return run_program(argv, env, should_stop=should_stop, grace_s=grace_s, output=output)


class ProgramFailed(Exception):
    """A program run ended with a non-zero exit code; ``run_error`` is the run's error text."""

    def __init__(self, result: ProgramResult) -> None:
        super().__init__(result.describe())
        self.run_error = result.describe()


def script_train(config: Mapping[str, Any]) -> dict[str, Any]:
    """The train function of every ``program:`` sweep: run the program for the current run.

    Agents call it like any train function, inside a run context (which names the store,
    sweep and run). It is importable, so it travels to agents by reference.
    """
    from nbsweep import _train
    from nbsweep._errors import RunStopped
    from nbsweep._states import RunState

    context = _train.current_run()
    if context is None:
        raise RuntimeError("script_train runs inside an agent's run context only")
    store, run_id = context.store, context.run_id
    sweep = store.sweep(context.sweep_id)
    assert sweep is not None
    result = run_script_trial(
        sweep.config,
        config,
        store=store.url,
        sweep_id=context.sweep_id,
        run_id=run_id,
        # Hyperband or cancel moved the run out of ``running`` in the store.
        should_stop=_noticed(lambda: store.run_state(run_id) != RunState.RUNNING, STOP_NOTICE_S),
        output=sys.stdout,
    )
    # The program logged through its own connection: its summary is in the store, and the
    # agent writes back its own copy of the summary when the run ends.
    row = store.run(run_id)
    if row is not None:
        context.summary.update(row.summary)
    state = store.run_state(run_id)
    if state != RunState.RUNNING:
        raise RunStopped(f"run {run_id} is {state}")
    if not result.ok:
        raise ProgramFailed(result)
    return {}


def _noticed(check: Callable[[], bool], notice_s: float) -> Callable[[], bool]:
    """``check``, turned true only once it has held for ``notice_s`` seconds.

    A program that calls ``nbsweep.log`` learns of its stop by itself (``RunStopped``) and
    ends while printing why; signalling it at once would cut that short. The signal is for
    programs that do not log again in time.
    """
    since: float | None = None

    def should_stop() -> bool:
        nonlocal since
        if since is None:
            since = time.monotonic() if check() else None
            return False
        return time.monotonic() - since >= notice_s

    return should_stop


def script_function(sweep_config: SweepConfig) -> Callable[..., Any]:
    """The train function for a sweep started without one: its ``program``, or an error."""
    from nbsweep._errors import SweepError

    if sweep_config.program is None and not sweep_config.command:
        raise SweepError(
            "no train function and no 'program' key in the config: add 'program: train.py' "
            "(the script each run executes, as with wandb agent), or pass the function "
            "(train=... in Python, --function MODULE:NAME on the command line)"
        )
    problems = check_command(sweep_config)
    if problems:
        raise ConfigError(problems)
    return script_train
