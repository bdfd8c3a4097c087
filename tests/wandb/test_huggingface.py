"""Hugging Face's ``Trainer(report_to="wandb")`` inside an nbsweep run records its metrics
through ``nbsweep.wandb``: without W&B's package here, and with it in ``.venv-wandb``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nbsweep
from tests.integrations import frameworks

REPO = Path(__file__).resolve().parents[2]

CONFIG: dict[str, Any] = {
    "method": "grid",
    "metric": {"name": "eval/loss", "goal": "minimize"},
    "parameters": {"lr": {"value": 0.05}, "epochs": {"value": 3}},
}

# The same sweep, run by another interpreter (``.venv-wandb``'s), whose user imported W&B's
# package before the sweep, as a notebook's first cell does. Inside the run the Trainer's
# `import wandb` is nbsweep's; after it, the process's `wandb` is W&B's own package again.
SCRIPT = """\
import sys

import wandb as imported_before

from tests.wandb.test_huggingface import CONFIG, run_here, assert_recorded

assert imported_before.__version__.startswith("0.31."), imported_before
real = {{name: module for name, module in sys.modules.items() if name.split(".")[0] == "wandb"}}
assert_recorded(run_here("{store}"))
after = {{name: module for name, module in sys.modules.items() if name.split(".")[0] == "wandb"}}
assert after == real, sorted(n for n in {{**real, **after}} if after.get(n) is not real.get(n))
import wandb

assert wandb is imported_before
"""


def run_here(store: str) -> nbsweep.Sweep:
    """The sweep's one run, executed by this process (``nbsweep.agent``)."""
    sweep = nbsweep.sweep(CONFIG, frameworks.huggingface_report_to_wandb, workers=0, store=store)
    nbsweep.agent(sweep.id, function=frameworks.huggingface_report_to_wandb, store=store)
    assert sweep.wait() == "finished", sweep.message
    return sweep


def assert_recorded(sweep: nbsweep.Sweep) -> None:
    """One row per epoch with the Trainer's losses, and its end-of-training summary."""
    runs = sweep.runs
    assert list(runs["state"]) == ["finished"], list(runs["error"])
    history = sweep.history()
    train = history[history["train/loss"].notna()]
    assert train["train/epoch"].tolist() == [1, 2, 3]
    losses = history["eval/loss"].dropna().tolist()
    assert len(losses) == 3 and losses[-1] < losses[0]  # it learned
    assert runs["summary/train_runtime"].iloc[0] > 0  # the Trainer's run.summary[...] writes
    assert runs["summary/eval/loss"].iloc[0] == pytest.approx(losses[-1])


@pytest.mark.timeout(300)
def test_trainer_report_to_wandb_without_wandb(sqlite_store: str) -> None:
    assert_recorded(run_here(sqlite_store))
    # nbsweep's stand-in left with the run: nothing named wandb stays in this process.
    assert not [name for name in sys.modules if name.split(".")[0] == "wandb"]


@pytest.mark.timeout(300)
def test_trainer_report_to_wandb_with_wandb_offline(tmp_path: Path, wandb_python: Path) -> None:
    store = tmp_path / "nbsweep.db"
    script = SCRIPT.format(store=store)
    done = subprocess.run(
        ["unshare", "-rn", wandb_python, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not list(tmp_path.rglob("*.wandb"))  # W&B's package logged nothing, even offline
