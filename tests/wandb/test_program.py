"""A W&B ``program:`` script, byte for byte unchanged, recorded by nbsweep: under ``nbsweep
run`` and under ``%%sweep``, without W&B's package (this venv) and with it (``.venv-wandb``,
built by ``make .venv-wandb/.stamp``, the network cut off with ``unshare -rn``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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

CONFIG = """\
program: train.py
method: grid
metric: {name: loss, goal: minimize}
parameters:
  lr: {values: [0.1, 0.2]}
"""

NBSWEEP_RUN = ["-m", "nbsweep.cli", "run", "sweep.yaml", "--workers", "2"]

# %%sweep in an in-process IPython, as tests/notebook/test_magic.py drives it; for a venv
# other than this one, run as a script by that venv's interpreter.
MAGIC = """\
import sys
from IPython.testing.globalipapp import start_ipython

ip = start_ipython()
ip.run_line_magic("load_ext", "nbsweep")
sweep = ip.run_cell_magic("sweep", "--workers 2 --wait", open("sweep.yaml").read())
print("sweep", sweep.id)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_bytes(SCRIPT)
    (tmp_path / "sweep.yaml").write_text(CONFIG)
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
    """``python ARGS`` in ``project`` (without a network when ``offline``); the sweep id."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("NBSWEEP_STORE", None)
    argv = [str(python), *args]
    if offline:
        argv = ["unshare", "-rn", *argv]
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("sweep "))
    return line.split()[1]


@pytest.mark.timeout(300)
def test_without_wandb_under_nbsweep_run(project: Path) -> None:
    assert subprocess.run([sys.executable, "-c", "import wandb"]).returncode != 0
    sweep_id = run(sys.executable, NBSWEEP_RUN, project)
    assert_recorded(project, sweep_id)


@pytest.mark.timeout(300)
def test_without_wandb_under_sweep_magic(
    project: Path, ip: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("NBSWEEP_STORE", str(project / ".nbsweep" / "nbsweep.db"))
    sweep = ip.run_cell_magic("sweep", "--workers 2 --wait", CONFIG)  # type: ignore[attr-defined]
    assert_recorded(project, sweep.id)


@pytest.mark.timeout(300)
def test_with_wandb_offline_under_nbsweep_run(project: Path, wandb_python: Path) -> None:
    sweep_id = run(wandb_python, NBSWEEP_RUN, project, offline=True)
    assert_recorded(project, sweep_id)
    assert not list(project.rglob("*.wandb"))  # W&B's offline run files: none written


@pytest.mark.timeout(300)
def test_with_wandb_offline_under_sweep_magic(project: Path, wandb_python: Path) -> None:
    (project / "magic.py").write_text(MAGIC)
    sweep_id = run(wandb_python, ["magic.py"], project, offline=True)
    assert_recorded(project, sweep_id)
