"""Hugging Face's ``Trainer(report_to="wandb")`` inside an nbsweep run records its metrics
through ``nbsweep.wandb``: without W&B's package here, and with it in ``.venv-wandb``."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

import nbsweep
from tests.wandb import trainers

REPO = Path(__file__).resolve().parents[2]

CONFIG: dict[str, Any] = {
    "method": "grid",
    "metric": {"name": "eval/loss", "goal": "minimize"},
    "parameters": {"lr": {"value": 0.05}, "epochs": {"value": 3}},
}

# The same sweep, run by another interpreter (``.venv-wandb``'s).
SCRIPT = """\
import nbsweep
from tests.wandb import trainers
from tests.wandb.test_huggingface import CONFIG, run_here, assert_recorded

assert_recorded(run_here("{store}"))
"""


def run_here(store: str) -> nbsweep.Sweep:
    """The sweep's one run, executed by this process (``nbsweep.agent``)."""
    sweep = nbsweep.sweep(CONFIG, trainers.huggingface, workers=0, store=store)
    nbsweep.agent(sweep.id, function=trainers.huggingface, store=store)
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


@pytest.mark.timeout(300)
def test_trainer_report_to_wandb_with_wandb_offline(tmp_path: Path, wandb_python: Path) -> None:
    store = tmp_path / "nbsweep.db"
    script = SCRIPT.format(store=store)
    done = subprocess.run(
        ["unshare", "-rn", wandb_python, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
