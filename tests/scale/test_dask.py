"""The Dask executor: one agent per worker of a real (local, multi-process) Dask cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbsweep
from nbsweep import SweepError
from nbsweep.agents import dask_agents

REPO = Path(__file__).resolve().parents[2]

# Run as a script, as a notebook would: ``train`` lives in ``__main__`` and must travel to the
# Dask workers by value.
SCRIPT = """\
import json, os, sys
import nbsweep
from distributed import Client, LocalCluster
from nbsweep.agents import dask_agents

CONFIG = {"method": "grid", "metric": {"name": "loss"},
          "parameters": {"lr": {"values": [0.1, 0.2, 0.3, 0.4]}}}

def train(config):
    for epoch in range(3):
        nbsweep.log({"loss": config.lr * (3 - epoch)})
    return {"pid": os.getpid()}

if __name__ == "__main__":
    store = sys.argv[1]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        sweep = nbsweep.sweep(CONFIG, train, workers=0, store=store)
        executed = client.gather(dask_agents(sweep.id, client, train, count=2, store=store))
        state = sweep.wait(timeout=60)
        pids = sorted(client.run(os.getpid).values())
    print(json.dumps({"id": sweep.id, "state": state, "executed": executed, "pids": pids}))
"""


@pytest.mark.timeout(240)
def test_one_agent_per_dask_worker_runs_a_notebook_style_function(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text(SCRIPT)
    store = str(tmp_path / ".nbsweep" / "nbsweep.db")
    result = subprocess.run(
        [sys.executable, "run.py", store],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["state"] == "finished"
    assert out["executed"] == [2, 2]
    runs = nbsweep.load(out["id"], store=store).runs
    assert sorted(runs["state"]) == ["finished"] * 4
    assert sorted(runs["config/lr"]) == [0.1, 0.2, 0.3, 0.4]
    # Two agents, each in its own Dask worker process.
    assert sorted(runs.groupby("agent").size()) == [2, 2]
    assert sorted(set(runs["summary/pid"])) == out["pids"]
    assert list(runs["summary/loss"]) == list(runs["config/lr"])


def test_unknown_sweep_is_refused_before_the_cluster_is_used(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="nope1234"):
        dask_agents("nope1234", client=None, store=str(tmp_path / "s.db"))
