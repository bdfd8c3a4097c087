"""Render docs/reliability.md from the figures the fault tier wrote (``make reliability``).

``python -m tests.faults.report [FIGURES_JSON] [OUT_MD]``. Refuses a run that failed or that
left scenarios out: the page only ever shows a whole, passing run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIGURES = REPO / "build" / "reliability.json"
PAGE = REPO / "docs" / "reliability.md"

# The matrix in the order a reader meets the faults: one run, its agent, the controller,
# the store, odd values, size, a second process.
ORDER = [
    "train raises",
    "agent calls os._exit",
    "agent gets SIGKILL (as from the OOM killer)",
    "run exhausts its memory (RLIMIT_AS)",
    "run hangs past stop (ignores SIGTERM and RunStopped)",
    "program: run ignores SIGTERM at cancel",
    "controller process SIGKILLed, then resume",
    "controller SIGKILLed while its program ignores SIGTERM",
    "an `nbsweep agent` of this host SIGKILLed",
    "kernel restarted mid-sweep, then %sweep resume",
    "store locked by another process for 1.5 s",
    "store turned read-only while the sweep runs",
    "store's disk full while the sweep runs",
    "PostgreSQL connections cut every 0.5 s",
    "store file removed while the sweep runs",
    "store file corrupted between sessions",
    "metric NaN, inf, a string, or never logged",
    "nbsweep.log from 4 threads, with refused values, steps and names",
    "a 10,000-point grid",
    "10,000 finished runs: runs, history, dashboards",
    "a second process opens the same sweep",
]

PROCESSES = """\
## Runs, their processes and GPU memory

What tests/agents/test_agent_runs.py holds, on real agent processes (it runs in the runtime
tier, not in this one's figures).

- **No run ends its agent.** Whatever a train function raises, `KeyboardInterrupt`,
  `SystemExit` and any other `BaseException` included, or a summary it returns that the value
  policy refuses, its run ends `failed` with the traceback (or the key and type refused) and
  the same agent process goes on to the next run
  (`test_what_train_returns_or_raises_fails_its_run_and_the_agent_goes_on`). Only
  `RunStopped` (the run was stopped) and a Ctrl-C in `nbsweep.agent()` in the user's own
  process end a run otherwise.
- **No process outlives its run.** An agent leads a process group of its own and is a child
  subreaper (Linux), so what a run starts (subprocesses, multiprocessing and `DataLoader`
  workers, their children, a child in a session of its own) is found: the agent kills it
  when the run ends, and the controller kills the agent's whole group when it cancels the
  sweep or finds the agent dead (`test_no_process_a_run_started_outlives_it`, by pid, for a
  run that finishes, one cancelled and one whose agent calls `os._exit`). A process that left
  the agent's group is out of reach once its agent is SIGKILLed (a `program:` run still gets
  SIGTERM then).
- **A hung agent is replaced.** A local agent that sends no heartbeat for 60 s
  (`STALE_RUN_S`; stopped with SIGSTOP, or hung holding the GIL) is killed; its run is
  `crashed` ("no heartbeat from its agent") and queued again, and a new agent takes its place
  (`test_a_stopped_agent_is_noticed_its_run_queued_again_and_the_agent_replaced`). An agent
  of this host that is gone (SIGKILLed, or killed while the store took no writes) is noticed
  once it missed 3 heartbeats (3 s): its run is crashed and queued again without waiting out
  the 60 s (the matrix's "an `nbsweep agent` of this host SIGKILLed"). A zombie counts as
  gone.
- **GPU memory never carries over unseen.** Between runs the agent drops the run's objects,
  collects garbage and empties torch's CUDA cache (where the run imported torch). Each run's
  `gpu_mem_start_mb` in `sweep.runs` and the dashboard is the GPU memory in use at its start
  beyond the agent's baseline (`test_gpu_memory_a_run_leaves_shows_at_the_next_runs_start`).
  A CUDA out-of-memory error fails the run with "CUDA out of memory (OOM)" and the memory
  figures, and the next run starts on a new process
  (`test_cuda_out_of_memory_fails_the_run_with_the_figures_and_the_next_starts_afresh`).
  `fresh_process=True` (`%%sweep --fresh-process`, `nbsweep run --fresh-process`) gives every
  run a new process, for code that leaks
  (`test_a_leak_reaches_the_next_run_unless_each_gets_a_fresh_process`).
"""

VALUES = """\
## The value policy of `nbsweep.log`

One policy (nbsweep/store/_codec.py) checks every value that crosses into the store: rows
`nbsweep.log` gets, the summary a train function returns, configs. What it accepts comes
back from `history()` and `sweep.runs` as it went in; what it refuses raises `ValueError` at
the call, naming the key path and the type, and stores nothing.

{table}

`step` must be a whole number from 0 to 2**63-1: a Python `int`, a numpy integer or an
integer 0-d tensor, stored as an `int` in a 64-bit column on SQLite and PostgreSQL alike.
Strings, floats (even `3.0`), bools, negative numbers and numbers past 2**63-1 are refused
with an error naming `step`; a step before the run's current one is dropped with a warning,
as W&B does. `nbsweep.log` may be called from several threads of one run: each row gets its
own step. A summary the policy refuses fails its run, naming the key
(tests/store/test_values.py, with hypothesis round-trips on SQLite and PostgreSQL; the
matrix's `nbsweep.log` scenario above).
"""

ISSUE_13 = """\
## Attacks outside the first matrix

Each was a user-visible failure found by trying what a careful user or an adversary would;
each now has a test that failed before its fix.

{table}
"""

VALUE_TABLE = [
    ("", "what", "comes back as"),
    (
        "accepted",
        "Python `int` (any size), `float` (NaN, inf included), `str`, `bool`, `None`",
        "the same value and type",
    ),
    (
        "converted",
        "numpy scalars and 0-d arrays, torch scalars",
        "the Python `int`, `float` or `bool`",
    ),
    (
        "converted",
        "numpy arrays and torch tensors, tuples",
        "lists (nested for more dimensions)",
    ),
    (
        "converted",
        "subclasses of `int`, `float`, `str` (enums)",
        "their plain value",
    ),
    (
        "accepted",
        "lists and dicts (string keys) of the above",
        "the same structure",
    ),
    (
        "refused",
        "`Decimal`, `datetime`/`date`/`time`, `bytes`/`bytearray`, sets, `complex`, "
        "`numpy.datetime64`, any other object",
        "`ValueError: nbsweep.log: 'key.path[i]' is a TYPE; log numbers, strings, bools, None, or "
        "lists/dicts of them`",
    ),
    (
        "refused",
        "keys that are not strings; a value that contains itself",
        "`ValueError` naming the key path",
    ),
    (
        "refused",
        "top-level keys `run_id`, `_step`, `_timestamp`, `_runtime` (the columns `history()` and "
        "the summaries add; nested keys of those names are kept)",
        "`ValueError` saying to rename it",
    ),
]

ISSUE_13_TABLE = [
    ("failure", "now", "proven by"),
    (
        "`step=np.int64(k)` stored as an 8-byte BLOB on SQLite",
        "stored and read back as an `int`",
        "tests/store/test_values.py::test_a_numpy_step_is_stored_as_an_integer; matrix: "
        "`nbsweep.log`",
    ),
    (
        "logged `run_id` or `_step` overwrite the real ones in `history()`",
        "refused by name",
        "test_values.py::test_reserved_names_are_refused; matrix: `nbsweep.log`",
    ),
    (
        "`nbsweep.log` from several threads: duplicate steps",
        "one step per row",
        "test_values.py::test_log_from_several_threads_of_one_run; matrix: `nbsweep.log`",
    ),
    (
        '`step="5"`, `2**70`, `2.5`: raw errors or a float step',
        "`ValueError` naming `step`",
        "test_values.py::test_bad_steps_are_refused_naming_step; matrix: `nbsweep.log`",
    ),
    (
        "PostgreSQL: a step past 2**31 fails the run (int4)",
        "64-bit columns everywhere",
        "test_values.py::test_a_step_past_int32_is_kept, ::test_the_step_columns_are_64_bit",
    ),
    (
        "`Decimal`, `datetime`, `bytes` stored as `repr()`; tuple keys, loops: raw json errors",
        "`ValueError` naming the key",
        "test_values.py::test_other_values_are_refused_at_the_call_naming_the_key, "
        "::test_keys_that_are_not_strings_and_circular_values_are_refused",
    ),
    (
        "grid over `int_uniform` 0..10^12 or `q: 1e-12` exhausts memory",
        "`ConfigError` naming the parameter and the count (limit 1,000,000 points)",
        "tests/config/test_bounds.py; bad inputs above",
    ),
    (
        "YAML alias bomb exhausts memory",
        "`ConfigError` past 1,000,000 expanded values",
        "test_bounds.py::test_a_yaml_alias_bomb_is_refused_when_loaded; bad inputs above",
    ),
    (
        "YAML dates and `!!binary` reach train as repr strings",
        "`ConfigError` naming the key",
        "test_bounds.py::test_yaml_values_json_cannot_keep_are_refused_naming_the_key; bad inputs "
        "above",
    ),
    (
        "a non-JSON return or `KeyboardInterrupt` kills the agent with SIGABRT",
        "run `failed` with the traceback; the agent goes on",
        "tests/agents/test_agent_runs.py::test_what_train_returns_or_raises_fails_its_run_and_the_agent_goes_on",
    ),
    (
        "processes a train function starts outlive `os._exit` and `cancel()`",
        "killed with the agent's process group",
        "test_agent_runs.py::test_no_process_a_run_started_outlives_it; matrix: os._exit, "
        "SIGKILL, hang then cancel (each run starts a child: *processes left* 0)",
    ),
    (
        "a hung (SIGSTOP) local agent is never noticed",
        "killed after 60 s silence; run queued again; agent replaced",
        "test_agent_runs.py::"
        "test_a_stopped_agent_is_noticed_its_run_queued_again_and_the_agent_replaced;"
        " matrix: `nbsweep agent` SIGKILLed",
    ),
    (
        "full disk: raw `OperationalError`, sweep `running`, `cancel()` raw error",
        "paused with what to do; `cancel()` says why",
        "matrix: disk full, read-only",
    ),
    (
        'six processes creating one SQLite store: "database is locked"',
        "all six succeed",
        "tests/store/test_store_faults.py::test_processes_create_one_store_at_once",
    ),
    (
        "PostgreSQL backends terminated: the controller dies",
        "every statement reconnects and retries; a COMMIT whose answer was lost is settled"
        " by asking the server (`txid_status`): done, or run again",
        "matrix: PostgreSQL connections cut; tests/store/test_store_faults.py::"
        "test_a_commit_whose_answer_is_lost_is_written_once",
    ),
    (
        "a failed program's long lines store 20 MB of error per run",
        "every error text capped at 64 KiB, its end kept",
        "test_store_faults.py::test_a_program_printing_long_lines_stores_a_capped_error, "
        "::test_every_error_text_is_capped",
    ),
    (
        "a PostgreSQL password in every agent's argv",
        "passed through the environment; in no argv, log or row",
        "tests/faults/test_security.py::test_no_store_password_in_any_argv_log_or_row",
    ),
    (
        "under umask 000, `./wandb/` is 0777",
        "every directory 0700 and file 0600",
        "test_security.py::test_every_file_and_directory_is_private_whatever_the_umask",
    ),
    (
        "stale `NBSWEEP_*` naming a missing store creates an empty one",
        "an error naming the store; nothing created",
        "test_security.py::test_stale_environment_naming_a_missing_store_creates_nothing",
    ),
    (
        "GPU memory a run leaves starves the next",
        "released between runs, shown as `gpu_mem_start_mb`; OOM fails the run and the next "
        "starts afresh; `fresh_process`",
        "test_agent_runs.py (GPU memory, above); on CPU with a fake leak and fake NVML",
    ),
]

SECURITY = """\
## Security

Each line is a test of tests/faults/test_security.py that passed in this run.

- **argv, never a shell**: parameter values `; rm -rf ~`, `$(touch PWNED)`, backticks, `&&`
  and a newline reach a `program:` run as literal arguments; `~` (a scratch `HOME`) and the
  working directory are untouched (`test_parameter_values_reach_a_program_as_literal_arguments`;
  every macro in tests/command/test_command.py).
- **YAML never builds objects**: `!!python/object/apply`, `/new`, `/name` and `/module` tags are
  refused with a `ConfigError` from a YAML file and from YAML text, nothing runs and no store is
  created (`test_yaml_never_builds_python_objects`).
- **No pickled code in the store**: no column of any table is binary; after a sweep of a
  notebook-defined function no value, and no byte of the database file, its WAL or index,
  holds a pickle or dill marker. The function travels in one 0600 file next to the store, read
  by the agents only (`test_the_store_holds_no_pickled_code`); `resume()` of such a sweep in a
  new process asks for the function again (`test_controller_sigkill_then_resume`).
- **Private files**: after a sweep with finished and failed runs, every directory under the
  store is 0700 and every file 0600: the database and its WAL, run and agent logs, the
  shipped function (`test_store_files_and_run_logs_are_private`).
- **No secret readable**: a PostgreSQL password reaches agents through their environment,
  never their command line; while they run no process's argv holds it, and after the sweep
  no file and no stored row does (`test_no_store_password_in_any_argv_log_or_row`).
- **Whatever the umask**: under umask 000 every directory nbsweep creates (the store's, a
  `program:` run's `wandb/` and `WANDB_DIR`) is 0700 and every file 0600
  (`test_every_file_and_directory_is_private_whatever_the_umask`).
- **Stale environment**: `NBSWEEP_STORE` naming a store that does not exist makes a
  program's `nbsweep.log`, an agent, `nbsweep agent` and `nbsweep show` fail naming it, and
  creates nothing (`test_stale_environment_naming_a_missing_store_creates_nothing`).
- **Fuzzing**: {fuzz}; hypothesis fuzzes `validate` with dicts, values and YAML text
  (tests/config/test_config_fuzz.py). In both only `ConfigError` may escape.
"""


def _table(rows: list[tuple[str, ...]]) -> str:
    """A markdown table: the first row is the header."""
    header, *body = rows
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def _cell(value: Any, missing: str) -> str:
    return missing if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def render(figures: dict[str, Any]) -> str:
    if figures["failed"]:
        raise SystemExit(f"{figures['failed']} tests failed in that run: fix them first")
    scenarios = figures["scenarios"]
    missing = [name for name in ORDER if name not in scenarios]
    if missing:
        raise SystemExit(f"the run left out {missing}: run the whole tier (make reliability)")
    names = ORDER + sorted(set(scenarios) - set(ORDER))
    lines = [
        "# Reliability",
        "",
        f"_Generated by `make reliability` from the run of tests/faults on {figures['when']}"
        f" ({figures['machine']}); do not edit by hand._",
        "",
        "Every scenario is a test in tests/faults/ on real agent processes and a real SQLite"
        " store (the PostgreSQL one on a real server). Each checks the sweep's end state, that"
        " every row logged before the fault is still in the store (*rows lost*), and that no"
        " agent, program or kernel of the test is left running (*processes left*: the test's"
        " children, the agents the store lists, and any process naming the test's directory,"
        " given 15 s to leave).",
        "",
        "| scenario | what happens | end state | rows before | rows lost | processes left |",
        "|---|---|---|---:|---:|---:|",
    ]
    for name in names:
        s = scenarios[name]
        lines.append(
            f"| {name} | {s['happens']} | {s['end_state']} | {_cell(s['rows_before'], '—')}"
            f" | {_cell(s['rows_lost'], 'n/a: the file itself is gone or damaged')}"
            f" | {s['processes_left']} |"
        )
    lost = sum(s["rows_lost"] or 0 for s in scenarios.values())
    left = sum(s["processes_left"] for s in scenarios.values())
    lines += ["", f"In all: {lost} rows lost, {left} processes left.", ""]
    bad = figures["bad_inputs"]
    fuzzed = {k: v for k, v in bad.items() if k.startswith("fuzzed")}
    tried = {k: v for k, v in bad.items() if k not in fuzzed}
    lines += [
        "## Bad inputs",
        "",
        f"{sum(tried.values()):,} bad inputs tried through the calls a user makes"
        " (tests/faults/test_bad_input.py); each is refused with a message that says what to"
        " change, and none leaves a half-written sweep.",
        "",
        "| kind | tried |",
        "|---|---:|",
        *(f"| {kind} | {count:,} |" for kind, count in tried.items()),
        "",
    ]
    fuzz = ", ".join(f"{count:,} {kind}" for kind, count in fuzzed.items()) or "no atheris run"
    lines.append(PROCESSES)
    lines.append(VALUES.format(table=_table(VALUE_TABLE)))
    lines.append(SECURITY.format(fuzz=fuzz))
    lines.append(ISSUE_13.format(table=_table(ISSUE_13_TABLE)))
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    source = Path(argv[0]) if argv else FIGURES
    target = Path(argv[1]) if len(argv) > 1 else PAGE
    target.write_text(render(json.loads(source.read_text())))
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
