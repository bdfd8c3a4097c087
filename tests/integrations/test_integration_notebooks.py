"""The framework notebooks (notebooks/integrations/) run headless by a real kernel.

Their frameworks are in the ``test`` extra, so every one of them runs wherever the tests do.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks" / "integrations"

# notebook -> (metric, keys the framework logged besides it)
EXPECTED = {
    "huggingface": ("eval_accuracy", {"eval_loss", "loss", "epoch"}),
    "lightning": ("val_acc", {"val_loss", "train_loss", "epoch"}),
    "keras": ("val_accuracy", {"val_loss", "loss", "accuracy", "epoch"}),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_framework_notebook_runs_a_sweep(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(NOTEBOOKS / f"{name}.ipynb", tmp_path)
    # The venv's kernelspec runs "python": make that the venv's python.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    for variable in ("NBSWEEP_STORE", "NBSWEEP_DASHBOARD", "KERAS_BACKEND"):
        monkeypatch.delenv(variable, raising=False)
    notebook = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    last = [c for c in notebook.cells if c.cell_type == "code"][-1]
    lines = "".join(o.get("text", "") for o in last.outputs).splitlines()
    assert re.fullmatch(r"finished: 4 runs, \d stopped early", lines[0]), lines
    metric, keys = EXPECTED[name]
    best = re.fullmatch(rf"best {metric} = (0\.\d+) with .*", lines[1])
    assert best is not None and float(best.group(1)) > 0.8, lines
    logged = set(lines[2].removeprefix("logged: ").split(", "))
    assert {metric, *keys} <= logged, lines
