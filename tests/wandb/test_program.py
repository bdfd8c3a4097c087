"""A W&B ``program:`` script, byte for byte unchanged, recorded by nbsweep: under ``nbsweep
run`` and under ``%%sweep`` in a real kernel, without W&B's package (this venv) and with it
(``.venv-wandb``, built by ``make .venv-wandb/.stamp``, the network cut off by ``unshare -rn``).
The same script also runs under W&B's own agent code, outside nbsweep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

import nbsweep

REPO = Path(__file__).resolve().parents[2]

# What a W&B user's train.py does; never changed by nbsweep or by these tests.
SCRIPT = b"""\
import wandb

run = wandb.init()
for epoch in range(3):
    wandb.log({"loss": run.config.lr * (3 - epoch), "epoch": epoch})
run.summary["best_loss"] = run.config.lr
wandb.finish()
"""

FUNCTION_CONFIG = """\
method: grid
metric: {name: loss, goal: minimize}
parameters:
  lr: {values: [0.1, 0.2]}
"""
CONFIG = "program: train.py\n" + FUNCTION_CONFIG

NBSWEEP_RUN = ["-m", "nbsweep.cli", "run", "sweep.yaml", "--workers", "1"]

# The notebook a user of W&B writes: the program sweep in a %%sweep cell (its runs are
# processes), then a function sweep whose train function imports wandb itself, run by an
# agent in the kernel's own process (`nbsweep.agent`): the one place where nbsweep's stand-in
# and the kernel's `wandb` meet. Then what `import wandb` gives the kernel, after nbsweep's runs.
CELLS = [
    "%load_ext nbsweep",
    "%%sweep --workers 1 --wait -o program_sweep\n" + CONFIG,
    """\
import nbsweep


def train(config):
    import wandb  # nbsweep's run API inside the run, whether W&B's package is installed or not

    run = wandb.init()
    for epoch in range(3):
        wandb.log({"loss": run.config.lr * (3 - epoch), "epoch": epoch})
    run.summary["best_loss"] = run.config.lr
    wandb.finish()""",
    "%%sweep train --workers 0 -o function_sweep\n" + FUNCTION_CONFIG,
    "nbsweep.agent(function_sweep.id, function=train)\nassert function_sweep.wait() == 'finished'",
    """\
import json, sys

routed = "wandb" in sys.modules
try:
    import wandb
except ImportError:
    wandb = None
found = {
    "routed": routed,
    "version": getattr(wandb, "__version__", None),
    "file": getattr(wandb, "__file__", None),
    "path": list(getattr(wandb, "__path__", [])),
}
print("wandb:", json.dumps(found))
print("sweeps", program_sweep.id, function_sweep.id)""",
]

# Executes sweeps.ipynb in a kernel of the interpreter that runs it (first on PATH). Its
# dashboards draw as HTML, the cheaper mode (what they show is tests/notebook's subject).
EXECUTE = """\
import os

import nbformat
from nbclient import NotebookClient

os.environ["NBSWEEP_DASHBOARD"] = "html"

notebook = nbformat.read("sweeps.ipynb", as_version=4)
NotebookClient(notebook, timeout=240, kernel_name="python3").execute()
print("".join(o.get("text", "") for o in notebook.cells[-1].outputs))
"""

# W&B's agent (wandb/wandb_agent.py) starting the program for two runs, as `wandb agent` does
# when W&B's server hands it a run: env, config file and command are W&B's own; only the
# server is left out. Then the rows of each run's offline log (``run-<id>.wandb``).
WANDB_AGENT = """\
import json, os
from pathlib import Path

from wandb.proto import wandb_internal_pb2
from wandb.wandb_agent import Agent

os.environ.update(WANDB_SWEEP_ID="sw1", WANDB_MODE="offline", WANDB_SILENT="true")
agent = Agent(api=None, queue=None, sweep_id="sw1")
for run_id, lr in (("run0", 0.1), ("run1", 0.2)):
    agent._command_run({"run_id": run_id, "program": "train.py", "args": {"lr": {"value": lr}}})
    assert agent._run_processes[run_id].wait() == 0


def records(path):
    # The LevelDB log format of W&B's transaction log: 32 KiB blocks of chunks, each with a
    # 7-byte header (checksum, length, type: 1 whole, 2 first, 3 middle, 4 last).
    data, pos, pending = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def key(item):
    return item.key or "/".join(item.nested_key)


for run_id in ("run0", "run1"):
    (log,) = Path("wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    rows, summary = [], {}
    for record in records(log):
        if record.WhichOneof("record_type") == "history":
            rows.append({key(i): json.loads(i.value_json) for i in record.history.item})
        elif record.WhichOneof("record_type") == "summary":
            summary.update({key(i): json.loads(i.value_json) for i in record.summary.update})
    print(json.dumps({"run": run_id, "rows": rows, "summary": summary}))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_bytes(SCRIPT)
    (tmp_path / "sweep.yaml").write_text(CONFIG)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbformat.write(notebook, tmp_path / "sweeps.ipynb")
    return tmp_path


def assert_recorded(project: Path, sweep_id: str) -> None:
    """Both runs finished with their three rows and the summary the script set."""
    assert (project / "train.py").read_bytes() == SCRIPT
    sweep = nbsweep.load(sweep_id, store=str(project / ".nbsweep" / "nbsweep.db"))
    runs = sweep.runs
    assert list(runs["state"]) == ["finished", "finished"], list(runs["error"])
    assert list(runs["summary/best_loss"]) == list(runs["config/lr"]) == [0.1, 0.2]
    history = sweep.history()
    assert len(history) == 6
    for run_id, lr in zip(runs["run_id"], runs["config/lr"], strict=True):
        rows = history[history["run_id"] == run_id]
        assert rows["epoch"].tolist() == [0, 1, 2]
        assert rows["loss"].tolist() == pytest.approx([lr * 3, lr * 2, lr])


def run(python: Path | str, args: list[str], project: Path, offline: bool = False) -> str:
    """``python ARGS`` in ``project``, first on PATH (a kernel's ``python`` is it); without a
    network when ``offline`` (loopback only: a kernel talks to its client through it).
    Returns what it printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env["PATH"] = os.pathsep.join([str(Path(python).parent), env["PATH"]])
    for variable in ("NBSWEEP_STORE", "NBSWEEP_DASHBOARD"):
        env.pop(variable, None)
    argv = [str(python), *args]
    if offline:
        argv = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def sweep_id(printed: str) -> str:
    """The id in ``nbsweep run``'s ``sweep <id>`` line."""
    return next(x for x in printed.splitlines() if x.startswith("sweep ")).split()[1]


def kernel_sweeps(printed: str) -> tuple[dict[str, Any], list[str]]:
    """What the notebook's last cell printed: what ``import wandb`` gave the kernel after the
    sweeps, and the two sweep ids."""
    lines = printed.splitlines()
    found = next(x for x in lines if x.startswith("wandb: ")).removeprefix("wandb: ")
    return json.loads(found), next(x for x in lines if x.startswith("sweeps ")).split()[1:]


@pytest.mark.timeout(300)
def test_without_wandb_under_nbsweep_run(project: Path) -> None:
    assert subprocess.run([sys.executable, "-c", "import wandb"]).returncode != 0
    assert_recorded(project, sweep_id(run(sys.executable, NBSWEEP_RUN, project)))


@pytest.mark.timeout(300)
def test_without_wandb_under_sweep_magic_in_a_kernel(project: Path) -> None:
    found, sweeps = kernel_sweeps(run(sys.executable, ["-c", EXECUTE], project))
    for sweep in sweeps:
        assert_recorded(project, sweep)
    # nbsweep's stand-in stayed inside the runs. With no W&B package, `import wandb` in the
    # kernel finds the only `wandb` there is: the folder of W&B's per-run config files that a
    # program sweep writes (as `wandb agent` does), an empty namespace package.
    assert found == {
        "routed": False,
        "version": None,
        "file": None,
        "path": [str(project / "wandb")],
    }


@pytest.mark.timeout(300)
def test_with_wandb_offline_under_nbsweep_run(project: Path, wandb_python: Path) -> None:
    assert_recorded(project, sweep_id(run(wandb_python, NBSWEEP_RUN, project, offline=True)))
    assert not list(project.rglob("*.wandb"))  # W&B's package never ran: no run logs


@pytest.mark.timeout(300)
def test_with_wandb_offline_under_sweep_magic_in_a_kernel(
    project: Path, wandb_python: Path
) -> None:
    found, sweeps = kernel_sweeps(run(wandb_python, ["-c", EXECUTE], project, offline=True))
    for sweep in sweeps:
        assert_recorded(project, sweep)
    assert not list(project.rglob("*.wandb"))
    # After the runs, the kernel's `import wandb` is W&B's package: nbsweep shadowed nothing.
    assert not found["routed"] and found["version"].startswith("0.31.")
    assert found["file"].startswith(str(REPO / ".venv-wandb" / "lib"))


@pytest.mark.timeout(300)
def test_the_script_runs_unchanged_under_wandb_agent(project: Path, wandb_python: Path) -> None:
    printed = run(wandb_python, ["-c", WANDB_AGENT], project, offline=True)
    logged = [json.loads(line) for line in printed.splitlines()]
    assert [r["run"] for r in logged] == ["run0", "run1"]
    for run_log, lr in zip(logged, (0.1, 0.2), strict=True):
        rows = [{k: v for k, v in row.items() if not k.startswith("_")} for row in run_log["rows"]]
        assert rows == [{"loss": pytest.approx(lr * (3 - e)), "epoch": e} for e in range(3)]
        assert run_log["summary"]["best_loss"] == lr
    assert (project / "train.py").read_bytes() == SCRIPT
