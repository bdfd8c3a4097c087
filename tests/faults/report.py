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
    "kernel restarted mid-sweep, then %sweep resume",
    "store locked by another process for 3 s",
    "store file removed while the sweep runs",
    "store file corrupted between sessions",
    "metric NaN, inf, a string, or never logged",
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
- **A hung agent is replaced.** A local agent that sends no heartbeat for 60 s (stopped with
  SIGSTOP, or hung holding the GIL) is killed; its run is `crashed` ("no heartbeat from its
  agent") and queued again, and a new agent takes its place
  (`test_a_stopped_agent_is_noticed_its_run_queued_again_and_the_agent_replaced`).
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
- **Fuzzing**: {fuzz}; hypothesis fuzzes `validate` with dicts, values and YAML text
  (tests/config/test_config_fuzz.py). In both only `ConfigError` may escape.
"""


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
        " store. Each checks the sweep's end state, that every row logged before the fault is"
        " still in the store (*rows lost*), and that no agent, program or kernel of the test is"
        " left running (*processes left*: the test's children, the agents the store lists, and"
        " any process naming the test's directory, given 15 s to leave).",
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
    lines.append(SECURITY.format(fuzz=fuzz))
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    source = Path(argv[0]) if argv else FIGURES
    target = Path(argv[1]) if len(argv) > 1 else PAGE
    target.write_text(render(json.loads(source.read_text())))
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
