"""The W&B seed documents' sweep code, run as a user runs it, with only the import line changed.

``seed_003_sweeps_guide.txt`` ("W&B Hyperparameter Sweeps", ``shared/seeds/003_*``) and
``seed_002_tutorial.txt`` (the tutorial, ``shared/seeds/002_*``) hold the seed's Python code
blocks, byte for byte and in order, joined by blank lines; each ``import wandb`` line reads
``from nbsweep import wandb`` instead. Shell blocks (``!pip install``, ``wandb sweep
config.yaml``) are left out. What the seeds leave undefined is stubbed outside that text:

- seed 003's helpers ``build_model``, ``build_optimizer`` and ``train_epoch`` (STUBS_003), and
  the parameters its ``train()`` reads but its dict lacks (``hidden_size``, ``optimizer``,
  ``epochs``), given as W&B takes defaults: a ``config-defaults.yaml`` in the working directory;
- seed 002's torchvision and its MNIST download (``stubs/torchvision``: 100 made-up images).

Each script runs in a fresh interpreter: its functions live in ``__main__``, as in a notebook,
and travel to the agent processes by value.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbsweep

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

STUBS_003 = """\
# Stubs of the helpers the seed leaves undefined.
def build_model(hidden_size):
    return hidden_size

def build_optimizer(model, optimizer, learning_rate):
    return learning_rate * (2 if optimizer == "sgd" else 1)

def train_epoch(model, optimizer):
    return optimizer / model

"""

# The parameters seed 003's train() reads besides its dict's, values from its YAML examples.
DEFAULTS_003 = """\
hidden_size: {desc: from the seed's bayes example, value: 128}
optimizer: {desc: from the seed's basic config, value: sgd}
epochs: {desc: from the seed's basic config, value: 5}
"""

# After the seed's code: the runs' states the moment ``wandb.agent`` returned, and the sweep.
REPORT = """
import nbsweep
print("agent returned:", *nbsweep.load(sweep_id).runs["state"])
print("sweep", sweep_id)
"""


def run_script(tmp_path: Path, text: str) -> tuple[nbsweep.Sweep, list[str], str]:
    """Run ``text`` as ``python script.py`` in ``tmp_path``: the sweep it ran, the states of
    its runs when ``wandb.agent`` returned, and what it wrote to stderr."""
    (tmp_path / "script.py").write_text(text + REPORT, encoding="utf-8")
    store = tmp_path / ".nbsweep" / "nbsweep.db"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE / "stubs")]),
        "NBSWEEP_STORE": str(store),
        "OMP_NUM_THREADS": "1",  # torch on one thread per agent: two agents share two cores
    }
    done = subprocess.run(
        [sys.executable, "script.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    returned = next(x for x in lines if x.startswith("agent returned:")).split()[2:]
    sweep_id = next(x for x in lines if x.startswith("sweep ")).split()[1]
    return nbsweep.load(sweep_id, store=str(store)), returned, done.stderr


@pytest.mark.timeout(300)
def test_seed_003_sweeps_guide(tmp_path: Path) -> None:
    (tmp_path / "config-defaults.yaml").write_text(DEFAULTS_003)
    seed = (HERE / "seed_003_sweeps_guide.txt").read_text(encoding="utf-8")
    sweep, returned, stderr = run_script(tmp_path, STUBS_003 + seed)
    # wandb.agent(sweep_id, function=train, count=5) returned once five runs were done.
    assert returned == ["finished"] * 5
    runs = sweep.runs
    assert list(runs["state"]) == ["finished"] * 5
    assert runs["config/batch_size"].isin([16, 32, 64]).all()
    history = sweep.history()
    for run_id, lr in zip(runs["run_id"], runs["config/learning_rate"], strict=True):
        rows = history[history["run_id"] == run_id]
        assert rows["epoch"].tolist() == [0, 1, 2, 3, 4]  # epochs: 5, from the defaults file
        # train_epoch's stub: the optimizer's lr (doubled for sgd) over hidden_size.
        assert rows["validation_loss"].tolist() == pytest.approx([lr * 2 / 128] * 5)
    # The sweep waits for the next wandb.agent call, as W&B's does.
    assert sweep.state == "pending"
    assert stderr.count("wandb.sweep(project=...) has no effect here") == 1


@pytest.mark.timeout(300)
def test_seed_002_tutorial(tmp_path: Path) -> None:
    seed = (HERE / "seed_002_tutorial.txt").read_text(encoding="utf-8")
    sweep, returned, stderr = run_script(tmp_path, seed)
    assert returned == ["finished"] * 5
    runs = sweep.runs
    assert list(runs["state"]) == ["finished"] * 5
    history = sweep.history()
    for run_id in runs["run_id"]:
        rows = history[history["run_id"] == run_id]
        # epochs: 1 -> one "loss" row; 20 images (every 5th of 100), batches of 32 to 256.
        assert rows["loss"].notna().sum() == 1 and rows["epoch"].dropna().tolist() == [0]
        assert rows["batch loss"].notna().sum() == 1
    # wandb.log's "loss" also went to the summary, with the run's config.
    assert runs["summary/loss"].notna().all()
    assert set(runs["config/optimizer"]) <= {"adam", "sgd"}
    assert (runs["config/batch_size"] % 8 == 0).all()  # q_log_uniform_values, q: 8
    assert stderr.count("wandb.login() has no effect here") == 1
