"""The W&B seed documents' sweep code, run as a user runs it, with only the import line changed.

Each script is the seed's code (``shared/seeds/003_*`` "W&B Hyperparameter Sweeps", and the
tutorial ``shared/seeds/002_*``) in a file of its own, run by a fresh interpreter: its
functions live in ``__main__``, as in a notebook, and travel to the agent processes by value.
Helpers the seed leaves undefined are small stubs, marked as such.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbsweep

REPO = Path(__file__).resolve().parents[2]

SEED_003 = """\
from nbsweep import wandb  # the seed: import wandb

# Stubs of the helpers the seed leaves undefined.
def build_model(hidden_size):
    return hidden_size

def build_optimizer(model, optimizer, learning_rate):
    return learning_rate * (2 if optimizer == "sgd" else 1)

def train_epoch(model, optimizer):
    return optimizer / model

# "Python Dictionary Alternative"
sweep_config = {
    'method': 'random',
    'metric': {
        'name': 'loss',
        'goal': 'minimize'
    },
    'parameters': {
        'learning_rate': {
            'distribution': 'uniform',
            'min': 0.0001,
            'max': 0.1
        },
        'batch_size': {
            'values': [16, 32, 64]
        }
    }
}
# The parameters train() reads, from the seed's YAML examples (the dict above lacks them).
sweep_config['parameters'].update({
    'hidden_size': {'values': [128, 256, 512]},
    'optimizer': {'values': ["adam", "sgd"]},
    'epochs': {'values': [5, 10, 15]},
})

# "Step 2: Initialize Sweep", Python approach
sweep_id = wandb.sweep(
    sweep=sweep_config,
    project="my-project"
)

# "Step 3: Modify Training Code"
def train():
    # Initialize run - sweep controller provides config
    with wandb.init() as run:
        config = run.config  # Get sweep hyperparameters

        # Use config values
        model = build_model(config.hidden_size)
        optimizer = build_optimizer(
            model,
            config.optimizer,
            config.learning_rate
        )

        # Training loop
        for epoch in range(config.epochs):
            loss = train_epoch(model, optimizer)

            # Log metric specified in sweep config
            run.log({
                "validation_loss": loss,
                "epoch": epoch
            })

# "Step 4: Start Agent(s)", Python
wandb.agent(sweep_id, function=train, count=5)
print("sweep", sweep_id)
"""

SEED_002 = """\
from nbsweep import wandb  # the seed: import wandb

sweep_config = {'method': 'random'}

metric = {'name': 'loss', 'goal': 'minimize'}
sweep_config['metric'] = metric

parameters_dict = {
    'optimizer': {'values': ['adam', 'sgd']},
    'fc_layer_size': {'values': [128, 256, 512]},
    'dropout': {'values': [0.3, 0.4, 0.5]},
}

sweep_config['parameters'] = parameters_dict

parameters_dict.update({'epochs': {'value': 1}})

parameters_dict.update({
    'learning_rate': {
        'distribution': 'uniform',
        'min': 0,
        'max': 0.1,
    },
    'batch_size': {
        'distribution': 'q_log_uniform_values',
        'q': 8,
        'min': 32,
        'max': 256,
    }
})

sweep_id = wandb.sweep(sweep_config, project="pytorch-sweeps-demo")

import torch
import torch.optim as optim
import torch.nn.functional as F
import torch.nn as nn

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

def train(config=None):
    # Initialize a new wandb run
    with wandb.init(config=config):
        # If called by wandb.agent, this config is set by the Sweep Controller
        config = wandb.config

        loader = build_dataset(config.batch_size)
        network = build_network(config.fc_layer_size, config.dropout)
        optimizer = build_optimizer(network, config.optimizer, config.learning_rate)

        for epoch in range(config.epochs):
            avg_loss = train_epoch(network, loader, optimizer)
            wandb.log({"loss": avg_loss, "epoch": epoch})

def build_dataset(batch_size):
    # Stub: the seed downloads MNIST; 64 made-up 28x28 images stand in for it.
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(64, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (64,), generator=generator)
    dataset = torch.utils.data.TensorDataset(images, labels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)

    return loader


def build_network(fc_layer_size, dropout):
    network = nn.Sequential(  # Fully connected, single hidden layer
        nn.Flatten(),
        nn.Linear(784, fc_layer_size), nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(fc_layer_size, 10),
        nn.LogSoftmax(dim=1))

    return network.to(device)


def build_optimizer(network, optimizer, learning_rate):
    if optimizer == "sgd":
        optimizer = optim.SGD(network.parameters(),
                              lr=learning_rate, momentum=0.9)
    elif optimizer == "adam":
        optimizer = optim.Adam(network.parameters(),
                               lr=learning_rate)
    return optimizer


def train_epoch(network, loader, optimizer):
    cumu_loss = 0
    for _, (data, target) in enumerate(loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()

        # Forward pass
        loss = F.nll_loss(network(data), target)
        cumu_loss += loss.item()

        # Backward pass + weight update
        loss.backward()
        optimizer.step()

        wandb.log({"batch loss": loss.item()})

    return cumu_loss / len(loader)

wandb.agent(sweep_id, train, count=5)
print("sweep", sweep_id)
"""


def run_script(tmp_path: Path, text: str) -> nbsweep.Sweep:
    """Run ``text`` as ``python script.py`` in ``tmp_path``; returns the sweep it ran."""
    (tmp_path / "script.py").write_text(text)
    store = tmp_path / ".nbsweep" / "nbsweep.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "NBSWEEP_STORE": str(store)}
    done = subprocess.run(
        [sys.executable, "script.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sweep_id = done.stdout.split()[-1]
    return nbsweep.load(sweep_id, store=str(store))


@pytest.mark.timeout(300)
def test_seed_003_sweeps_guide(tmp_path: Path) -> None:
    sweep = run_script(tmp_path, SEED_003)
    runs = sweep.runs
    assert list(runs["state"]) == ["finished"] * 5
    history = sweep.history()
    for run_id, epochs in zip(runs["run_id"], runs["config/epochs"], strict=True):
        rows = history[history["run_id"] == run_id]
        assert rows["epoch"].tolist() == list(range(epochs))
        assert rows["validation_loss"].notna().all()
    # The sweep waits for the next wandb.agent call, as W&B's does.
    assert sweep.state == "pending"


@pytest.mark.timeout(300)
def test_seed_002_tutorial(tmp_path: Path) -> None:
    sweep = run_script(tmp_path, SEED_002)
    runs = sweep.runs
    assert list(runs["state"]) == ["finished"] * 5
    history = sweep.history()
    for run_id in runs["run_id"]:
        rows = history[history["run_id"] == run_id]
        assert rows["loss"].notna().sum() == 1  # one epoch
        assert rows["batch loss"].notna().sum() >= 1
    # wandb.log's "loss" also went to the summary, with the run's config.
    assert runs["summary/loss"].notna().all()
    assert set(runs["config/optimizer"]) <= {"adam", "sgd"}
