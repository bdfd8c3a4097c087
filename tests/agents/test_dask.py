"""The Dask executor: one agent per worker of a real (local, multi-process) Dask cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import IPython
import pytest
from IPython.testing.globalipapp import start_ipython

import nbsweep
from nbsweep import PlacementError, StoreError, SweepNotFoundError, SweepStateError
from nbsweep._start import _controllers
from nbsweep._states import cut_by_machine
from nbsweep.agents import FakeNVML, dask_agents, set_nvml
from nbsweep.store import open_store
from tests import trainfns

REPO = Path(__file__).resolve().parents[2]
GRID = {"method": "grid", "parameters": {"lr": {"values": [0.1, 0.2]}}}

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
    missing = tmp_path / "missing" / "s.db"
    with pytest.raises(StoreError, match="does not exist"):
        dask_agents("nope1234", client=None, store=str(missing))
    assert not missing.parent.exists()  # a stale store name creates nothing
    store = str(tmp_path / "s.db")
    open_store(store)
    with pytest.raises(SweepNotFoundError, match="nope1234"):
        dask_agents("nope1234", client=None, store=store)


# ``nbsweep.sweep(..., executor=client)``: a notebook's sweep whose agents are Dask tasks. The
# workers advertise one GPU each; the first script's workers see it through a fake NVML (set
# by a worker plugin, so that a restarted worker has it too), the second's only as a resource.
EXECUTOR_SCRIPT = """\
import json, os, sys, time
import dask, psutil
import nbsweep
from distributed import Client, LocalCluster, WorkerPlugin

CONFIG = {"method": "grid", "metric": {"name": "loss"},
          "parameters": {"lr": {"values": [0.1, 0.2, 0.3, 0.4]}}}

def train(config):
    for epoch in range(8):
        nbsweep.log({"loss": config.lr * (8 - epoch)})
        time.sleep(0.1)
    return {"cuda": os.environ["CUDA_VISIBLE_DEVICES"], "worker_pid": os.getppid()}

class FakeGPU(WorkerPlugin):
    def __init__(self, count):
        self.count = count

    def setup(self, worker):
        from nbsweep.agents import FakeNVML, set_nvml
        gpus = [{"uuid": f"GPU-fake-{os.getpid()}-{i}"} for i in range(self.count)]
        set_nvml(FakeNVML(gpus))

def kill_a_worker_mid_run(sweep):
    while True:
        runs = sweep.runs
        busy = runs[(runs["state"] == "running") & (runs["steps"] >= 1)]
        if len(busy):
            break
        time.sleep(0.02)
    agents = sweep.agents
    pid = agents.set_index("agent").loc[busy["agent"].iloc[0], "pid"]
    psutil.Process(int(pid)).parent().kill()  # the Dask worker process running that agent

if __name__ == "__main__":
    store, mode = sys.argv[1:]
    adaptive = mode == "adapt"
    # As docs/cluster.md advises: the scheduler counts each agent task as a long one, so an
    # adaptive cluster asks for a worker per waiting agent at once.
    dask.config.set({"distributed.scheduler.default-task-durations": {"nbsweep-agent": "1h"}})
    gpus = 2 if mode == "share" else 1  # per worker
    workers = {"adapt": 0, "kill": 2, "share": 1}[mode]
    with LocalCluster(n_workers=workers, threads_per_worker=gpus, resources={"GPU": gpus},
                      dashboard_address=None) as cluster, Client(cluster) as client:
        most = 0
        if adaptive:
            cluster.adapt(minimum=0, maximum=2, interval="100ms")
            sweep = nbsweep.sweep(CONFIG, train, store=store, executor=client, workers=2)
            while sweep.state != "finished":
                most = max(most, len(client.scheduler_info()["workers"]))
                time.sleep(0.05)
            deadline = time.monotonic() + 60
            while client.scheduler_info()["workers"] and time.monotonic() < deadline:
                time.sleep(0.1)
        else:
            client.register_plugin(FakeGPU(gpus))
            sweep = nbsweep.sweep(CONFIG, train, store=store, executor=client)
            if mode == "kill":
                kill_a_worker_mid_run(sweep)
            sweep.wait(timeout=120)
        left = len(client.scheduler_info()["workers"])
    print(json.dumps({"id": sweep.id, "state": sweep.state, "most": most, "left": left}))
"""


def _executor_script(tmp_path: Path, mode: str) -> tuple[dict, nbsweep.Sweep]:
    (tmp_path / "run.py").write_text(EXECUTOR_SCRIPT)
    store = str(tmp_path / ".nbsweep" / "nbsweep.db")
    result = subprocess.run(
        [sys.executable, "run.py", store, mode],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    return out, nbsweep.load(out["id"], store=store)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_lost_worker_crashes_its_run_which_is_queued_again_and_finished_elsewhere(
    tmp_path: Path,
) -> None:
    out, sweep = _executor_script(tmp_path, "kill")
    assert out["state"] == "finished"
    runs = sweep.runs.set_index("run_id")
    # Usually one run is cut; on a busy machine a replacement agent can land on the dying
    # worker before the scheduler notices, and its run is cut too. Each is queued again.
    crashed = runs.index[runs["state"] == "crashed"]
    assert len(crashed) >= 1
    for run in crashed:
        # Whoever notices first ends the run, each naming the lost machine, and each end is
        # queued again: the agent (its worker's pipe closed: "Dask worker lost (tcp://...)"),
        # the controller (the Dask task failed: "agent 0 (pid 9) died: Dask worker lost ..."),
        # or, on a loaded machine where neither came within three heartbeats, the controller's
        # liveness check ("no heartbeat from its agent: agent 0 (pid 9) of this host is gone").
        error = runs.loc[run, "error"]
        assert cut_by_machine(error)
        assert "Dask worker lost (" in error or error.endswith("of this host is gone"), error
        again = runs[runs["requeued_from"] == run]
        assert len(again) == 1 and again["config/lr"].iloc[0] == runs.loc[run, "config/lr"]
        assert again["agent"].iloc[0] != runs.loc[run, "agent"]
    # Every grid point finished exactly once.
    finished = runs[runs["state"] == "finished"]
    assert sorted(finished["config/lr"]) == [0.1, 0.2, 0.3, 0.4]
    # Each agent had its worker's (fake) GPU, by UUID, in CUDA_VISIBLE_DEVICES and the store.
    assert list(finished["summary/cuda"]) == list(finished["gpu"])
    for cuda, pid in zip(finished["summary/cuda"], finished["summary/worker_pid"], strict=True):
        assert cuda == f"GPU-fake-{pid:.0f}-0"
    died = sweep.events().query("kind == 'agent_died'")
    assert len(died) >= 1 and died["message"].str.contains("Dask worker lost").all()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_an_adaptive_cluster_starts_workers_for_the_agents_and_retires_them(
    tmp_path: Path,
) -> None:
    out, sweep = _executor_script(tmp_path, "adapt")
    assert out["state"] == "finished"
    assert out["most"] == 2  # one worker per agent task waiting for a GPU
    assert out["left"] == 0  # the agents left with the sweep; the idle workers were retired
    runs = sweep.runs
    assert sorted(runs["config/lr"]) == [0.1, 0.2, 0.3, 0.4]
    assert set(runs["state"]) == {"finished"}
    # Without NVML on the workers, an agent's GPU is its worker's GPU resource, by position.
    assert set(runs["summary/cuda"]) == {"0"}


@pytest.mark.timeout(240)
def test_agents_sharing_a_worker_get_its_gpus_one_each(tmp_path: Path) -> None:
    out, sweep = _executor_script(tmp_path, "share")
    assert out["state"] == "finished"
    runs = sweep.runs
    assert sorted(runs["config/lr"]) == [0.1, 0.2, 0.3, 0.4]
    # One worker advertising two GPUs: two agents (the default), each on its own GPU.
    (pid,) = set(runs["summary/worker_pid"])
    per_agent = runs.groupby("agent")["summary/cuda"].unique()
    assert sorted(gpu for gpus in per_agent for gpu in gpus) == [
        f"GPU-fake-{pid:.0f}-0",
        f"GPU-fake-{pid:.0f}-1",
    ]


def test_executor_must_be_a_dask_client(tmp_path: Path) -> None:
    with pytest.raises(PlacementError, match="executor=str: pass a distributed.Client"):
        nbsweep.sweep(GRID, os.getpid, store=str(tmp_path / "s.db"), executor="tcp://x:8786")
    assert nbsweep.list_sweeps(str(tmp_path / "s.db")).empty


def test_a_cluster_without_workers_needs_a_count_of_agents(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
        pytest.raises(PlacementError, match="no workers yet: pass workers=N"),
    ):
        nbsweep.sweep(GRID, os.getpid, store=str(tmp_path / "s.db"), executor=client)


# -- resume(executor=client) and the magics' --executor --------------------------------------

RESUME_GRID = {"method": "grid", "parameters": {"x": {"values": [1, 2, 3, 4]}}}


@pytest.fixture(scope="module")
def two_gpu_cluster() -> Iterator[Any]:
    """A one-worker ``LocalCluster`` in this process advertising two (fake) GPUs, shared by
    the module's tests (each sweep's agents leave with it; the tests count their own)."""
    from distributed import Client, LocalCluster

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        set_nvml(FakeNVML([{"uuid": "GPU-fake-a"}, {"uuid": "GPU-fake-b"}]))
        try:
            with (
                LocalCluster(
                    n_workers=1,
                    threads_per_worker=2,
                    processes=False,
                    resources={"GPU": 2},
                    dashboard_address=None,
                ) as cluster,
                Client(cluster) as client,
            ):
                yield client
        finally:
            set_nvml(None)


def _agent_tasks(tasks: Any, sweep_id: str) -> int:
    keys = {str(task["key"]) for task in tasks.data}
    return sum(key.startswith("nbsweep-agent") and sweep_id in key for key in keys)


def _end_controller(sweep: nbsweep.Sweep) -> None:
    """As when the kernel that ran the sweep went away: no controller, the sweep not over."""
    controller = _controllers[sweep.id]
    controller.quit()
    controller.join()


@pytest.mark.timeout(120)
def test_resume_with_an_executor_takes_the_sweep_over_with_agents_on_dask(
    sqlite_store: str, two_gpu_cluster: Any
) -> None:
    from distributed import get_task_stream

    client = two_gpu_cluster
    with pytest.warns(UserWarning, match="workers=0: no agent runs sweep"):
        sweep = nbsweep.sweep(RESUME_GRID, trainfns.environment, workers=0, store=sqlite_store)
    # Its controller runs here with local agents: the executor cannot change under it.
    with pytest.raises(SweepStateError, match="controlled in this process.*executor= only applies"):
        sweep.resume(executor=client)
    _end_controller(sweep)
    reopened = nbsweep.load(sweep.id, store=sqlite_store)
    with pytest.raises(PlacementError, match="executor=str: pass a distributed.Client"):
        reopened.resume(executor="tcp://scheduler:8786")
    assert reopened.agents.empty and sweep.store.lease_owner(sweep.id) is None  # untouched
    with get_task_stream(client) as tasks:
        reopened.resume(executor=client)
        assert reopened.wait(timeout=90) == "finished"
    runs = reopened.runs
    assert sorted(runs["config/x"]) == [1, 2, 3, 4] and set(runs["state"]) == {"finished"}
    # One agent task per advertised GPU, each run on its agent's (fake) GPU.
    assert _agent_tasks(tasks, sweep.id) == 2
    assert set(runs["summary/cuda_visible_devices"]) <= {"GPU-fake-a", "GPU-fake-b"}
    assert list(runs["summary/cuda_visible_devices"]) == list(runs["gpu"])


@pytest.mark.timeout(120)
def test_resume_without_an_executor_follows_the_dask_client_of_the_queue(
    sqlite_store: str, two_gpu_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import get_task_stream

    from nbsweep.schedulers import _launch

    monkeypatch.setattr(_launch, "_queues", {})
    config = {**RESUME_GRID, "queue": "dask-gpus"}
    with (
        pytest.warns(UserWarning, match="workers=0"),
        pytest.warns(UserWarning, match="queue 'dask-gpus' is not registered here"),
    ):
        sweep = nbsweep.sweep(config, trainfns.environment, workers=0, store=sqlite_store)
    _end_controller(sweep)
    nbsweep.register_queue("dask-gpus", two_gpu_cluster)
    with get_task_stream(two_gpu_cluster) as tasks:
        sweep.resume()
        assert sweep.wait(timeout=90) == "finished"
    assert _agent_tasks(tasks, sweep.id) == 2
    assert set(sweep.runs["summary/cuda_visible_devices"]) <= {"GPU-fake-a", "GPU-fake-b"}


@pytest.mark.timeout(180)
def test_retry_failed_on_a_finished_sweep_runs_again_on_its_dask_client(
    sqlite_store: str, two_gpu_cluster: Any, tmp_path: Path
) -> None:
    from distributed import get_task_stream

    client = two_gpu_cluster
    broken = tmp_path / "broken"
    broken.touch()
    # Two runs: a third failure in a row would pause the sweep (the failure guard).
    config = {
        "method": "grid",
        "parameters": {"x": {"values": [1, 2]}, "flag": {"value": str(broken)}},
    }
    sweep = nbsweep.sweep(config, trainfns.fails_while_flagged, store=sqlite_store, executor=client)
    assert sweep.wait(timeout=90) == "finished"
    assert set(sweep.runs["state"]) == {"failed"}
    with pytest.warns(UserWarning, match="workers=0"):
        running = nbsweep.sweep(RESUME_GRID, trainfns.quadratic, workers=0, store=sqlite_store)
    with pytest.raises(SweepStateError, match="executor= only applies to a finished sweep"):
        running.retry_failed(executor=client)
    running.cancel()
    broken.unlink()  # the bug is fixed
    with get_task_stream(client) as tasks:
        again = sweep.retry_failed()
        assert sweep.wait(timeout=90) == "finished"
    assert len(again) == 2
    # The new agents are Dask tasks again, not local processes.
    assert _agent_tasks(tasks, sweep.id) == 2
    runs = sweep.runs
    assert sorted(runs.loc[runs["state"] == "finished", "config/x"]) == [1, 2]


TRAIN_CELL = """
import nbsweep

@nbsweep.train
def train(config):
    nbsweep.log({"loss": float(config.x)})
"""


@pytest.mark.timeout(120)
def test_sweep_magics_run_and_resume_on_the_dask_client_they_name(
    sqlite_store: str, two_gpu_cluster: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from distributed import get_task_stream

    shell = start_ipython() or IPython.get_ipython()
    shell.run_line_magic("load_ext", "nbsweep")
    shell.user_ns["client"] = two_gpu_cluster
    shell.run_cell(TRAIN_CELL)  # defined in the notebook: travels to the workers by value
    body = "method: grid\nparameters:\n  x: {values: [1, 2, 3]}\n"
    with get_task_stream(two_gpu_cluster) as tasks:
        started = shell.run_cell_magic(
            "sweep", f"train --executor client --store {sqlite_store} --wait", body
        )
        assert started.state == "finished"
        assert sorted(started.runs["summary/loss"]) == [1.0, 2.0, 3.0]

        later = shell.run_cell_magic("sweep", f"train --workers 0 --store {sqlite_store}", body)
        # In a cell the warning is shown as its message alone.
        assert "UserWarning: workers=0: no agent runs sweep" in capsys.readouterr().err
        _end_controller(later)
        shell.run_line_magic("sweep", f"resume {later.id} --executor client")
        assert later.wait(timeout=90) == "finished"
    assert sorted(later.runs["summary/loss"]) == [1.0, 2.0, 3.0]
    assert _agent_tasks(tasks, started.id) == 2 and _agent_tasks(tasks, later.id) == 2
