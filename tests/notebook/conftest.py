"""Fixtures of the notebook tests: hand-made snapshots (the DataFrames a Sweep returns)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from nbsweep import validate
from nbsweep.views import Snapshot

CONFIG = validate(
    {
        "method": "random",
        "metric": {"name": "val_loss", "goal": "minimize"},
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
            "optimizer": {"distribution": "categorical", "values": ["adam", "sgd"]},
            "epochs": {"distribution": "constant", "value": 5},
            "model": {"parameters": {"depth": {"distribution": "int_uniform", "min": 1, "max": 4}}},
        },
        "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
    }
)


def runs_frame() -> pd.DataFrame:
    """Four runs: two finished, one failed, one stopped by hyperband."""
    return pd.DataFrame(
        {
            "run_id": ["r1", "r2", "r3", "r4"],
            "state": ["finished", "finished", "failed", "stopped"],
            "created_at": pd.to_datetime(
                [
                    "2026-01-01 10:00:00",
                    "2026-01-01 10:00:05",
                    "2026-01-01 10:00:10",
                    "2026-01-01 10:00:15",
                ],
                utc=True,
            ),  # fmt: skip
            "ended_at": pd.to_datetime(
                [
                    "2026-01-01 10:01:00",
                    "2026-01-01 10:01:30",
                    "2026-01-01 10:00:20",
                    "2026-01-01 10:00:50",
                ],
                utc=True,
            ),  # fmt: skip
            "runtime_s": [60.0, 85.0, 10.0, 35.0],
            "agent": ["a0", "a1", "a0", "a1"],
            "steps": [4, 4, 1, 2],
            "error": [None, None, "Traceback...\nValueError: lr too large", None],
            "config/lr": [0.001, 0.01, 0.1, 0.0001],
            "config/optimizer": ["adam", "sgd", "adam", "sgd"],
            "config/epochs": [5, 5, 5, 5],
            "config/model/depth": [2, 3, 1, 4],
            "summary/val_loss": [0.30, 0.20, None, 0.90],
        }
    )


def history_frame() -> pd.DataFrame:
    """val_loss per step; r4 was stopped after two values, r3 failed before logging."""
    rows = []
    for run_id, losses in {"r1": [0.9, 0.6, 0.4, 0.3], "r2": [0.8, 0.5, 0.3, 0.2],
                           "r4": [1.2, 0.9]}.items():  # fmt: skip
        for step, loss in enumerate(losses):
            rows.append({"run_id": run_id, "_step": step, "val_loss": loss, "acc": 1 - loss})
    return pd.DataFrame(rows)


def _snapshot(**changes: Any) -> Snapshot:
    """A finished sweep's snapshot; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "id": "sw1",
        "name": "lr-search",
        "method": "random",
        "state": "finished",
        "message": "",
        "config": CONFIG,
        "created_at": pd.Timestamp("2026-01-01 10:00:00", tz="UTC").timestamp(),
        "progress": (4, 4),
        "runs": runs_frame(),
        "history": history_frame(),
        "taken_at": pd.Timestamp("2026-01-01 10:05:00", tz="UTC").timestamp(),
    }
    fields.update(changes)
    return Snapshot(**fields)


@pytest.fixture
def make_snapshot() -> Any:
    """Build a finished sweep's snapshot; keyword arguments replace fields."""
    return _snapshot


@pytest.fixture(scope="session")
def shell() -> Any:
    """One in-process IPython with ``%load_ext nbsweep`` (IPython's own test shell)."""
    import IPython
    from IPython.testing.globalipapp import start_ipython

    # Started once per session; a test of another directory may have started it first.
    shell = start_ipython() or IPython.get_ipython()
    shell.run_line_magic("load_ext", "nbsweep")
    yield shell
    # Close widgets while the interpreter is whole, not from __del__ at exit.
    import ipywidgets

    ipywidgets.Widget.close_all()


@pytest.fixture
def ip(shell: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The shell, with sweeps stored in a fresh SQLite file of this test."""
    monkeypatch.setenv("NBSWEEP_STORE", str(tmp_path / "nbsweep.db"))
    monkeypatch.setenv("NBSWEEP_DASHBOARD", "widgets")
    return shell
