"""Framework callbacks inside real sweeps: each framework's logs become the run's history.

The runs execute in this process (``nbsweep.agent``), so each framework is imported once for
all its tests; the notebooks in notebooks/integrations run them in spawned agents.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import nbsweep
from nbsweep.integrations._logs import numbers
from tests.integrations import frameworks

pytestmark = pytest.mark.timeout(240)

# framework -> (train function, metric, the keys each epoch's row holds)
FRAMEWORKS: dict[str, tuple[Any, str, set[str]]] = {
    "huggingface": (frameworks.huggingface, "eval_loss", {"loss", "eval_loss", "epoch"}),
    "lightning": (frameworks.lightning, "val_loss", {"train_loss", "val_loss", "epoch"}),
    "keras": (frameworks.keras, "val_loss", {"loss", "val_loss", "epoch"}),
}


def config(metric: str) -> dict[str, Any]:
    """A trained run (lr 0.05), then an untrained one (lr 0) that hyperband stops at once."""
    return {
        "method": "grid",
        "metric": {"name": metric, "goal": "minimize"},
        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 3},
        "parameters": {"lr": {"values": [0.05, 0.0]}, "epochs": {"value": 3}},
    }


def run_here(spec: dict[str, Any], train: Any, store: str) -> nbsweep.Sweep:
    """A sweep without agent processes whose runs this process executes, to the end."""
    sweep = nbsweep.sweep(spec, train, workers=0, store=store)
    nbsweep.agent(sweep.id, function=train, store=store)
    assert sweep.wait() == "finished", sweep.message
    return sweep


@pytest.mark.parametrize("name", list(FRAMEWORKS))
def test_callback_logs_each_epoch_and_early_termination_stops_the_run(
    name: str, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # read when keras is first imported
    train, metric, keys = FRAMEWORKS[name]
    sweep = run_here(config(metric), train, sqlite_store)
    runs = sweep.runs
    assert list(runs["state"]) == ["finished", "stopped"], runs["error"].tolist()

    trained = sweep.get_run(runs["run_id"].iloc[0]).history()
    assert len(trained) == 3  # one row per epoch: train and evaluation metrics merged
    assert keys <= set(trained.columns)
    assert trained["epoch"].tolist() == pytest.approx(
        [0, 1, 2] if name != "huggingface" else [1, 2, 3]
    )
    steps = trained["_step"].tolist()
    assert steps == sorted(steps) and len(set(steps)) == 3
    losses = trained[metric].tolist()
    assert losses[-1] < losses[0]  # it learned
    assert runs[f"summary/{metric}"].iloc[0] == pytest.approx(losses[-1])

    stopped = sweep.get_run(runs["run_id"].iloc[1])
    assert len(stopped.history()) == 1  # stopped at the first band, nothing logged after
    assert "early_terminate: stopped at band 1" in sweep.events()["message"].str.cat()


def test_lightning_sends_a_validation_metric_only_when_validation_ran(sqlite_store: str) -> None:
    spec = config("val_loss")
    spec["parameters"] |= {"lr": {"value": 0.05}, "epochs": {"value": 4}, "val_every": {"value": 2}}
    del spec["early_terminate"]
    sweep = run_here(spec, frameworks.lightning, sqlite_store)
    history = sweep.get_run(sweep.runs["run_id"].iloc[0]).history()
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    assert history["train_loss"].notna().all()
    # Validation ran after epochs 1 and 3 only: two iterations of the metric, not four.
    assert history["val_loss"].notna().tolist() == [False, True, False, True]


def test_numbers_keeps_scalars_of_any_kind() -> None:
    import torch  # here, not at collection: a few seconds on every worker

    logs = {
        "loss": torch.tensor(0.5),
        "acc": np.float32(0.25),
        "steps": 3,
        "nan": math.nan,
        "vector": torch.tensor([1.0, 2.0]),
        "array": np.array([1.0, 2.0]),
        "name": "adam",
        "flag": True,
        "none": None,
    }
    row = numbers(logs)
    assert set(row) == {"loss", "acc", "steps", "nan"}
    assert row["loss"] == 0.5 and row["acc"] == 0.25 and math.isnan(row["nan"])
    assert numbers(None) == {}


def test_keras_without_a_backend_says_how_to_choose_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", "import nbsweep.integrations.keras"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "set KERAS_BACKEND=torch" in result.stderr
