"""Launch keys on one machine: queues, forwarded variables, keys reported as having no effect,
and what a resume may change (scheduler settings, num_workers, queue) or not (the search)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbsweep
from nbsweep import PlacementError, SweepError
from nbsweep._start import _controllers
from nbsweep.agents import FakeNVML, set_nvml
from nbsweep.config import ConfigWarning
from nbsweep.schedulers import _launch
from tests.schedulers import trainfns
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


def grid(values: int, epochs: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": list(range(values))}, "epochs": {"value": epochs}},
        **extra,
    }


@pytest.fixture(autouse=True)
def no_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_launch, "_queues", {})


@pytest.fixture
def four_gpus() -> Iterator[FakeNVML]:
    gpus = FakeNVML(4)
    set_nvml(gpus)  # resume plans agents without an nvml= argument
    yield gpus
    set_nvml(None)


def uuid(gpus: FakeNVML, index: int) -> str:
    return gpus.gpus[index]["uuid"]


# -- queue ------------------------------------------------------------------------------------


def test_a_queue_registered_with_gpus_runs_only_on_them(
    sqlite_store: str, four_gpus: FakeNVML, tmp_path: Path
) -> None:
    nbsweep.register_queue("a100", gpus=[1, 3])
    config = grid(6, queue="a100")
    config["parameters"]["meet"] = {"value": str(tmp_path / "meet")}  # both agents run
    sweep = nbsweep.sweep(config, trainfns.environment, store=sqlite_store)
    assert sweep.wait(timeout=60) == "finished"
    wanted = {uuid(four_gpus, 1), uuid(four_gpus, 3)}
    runs = sweep.runs
    assert set(runs["summary/cuda_visible_devices"]) == wanted
    assert set(sweep.agents["gpu"]) == wanted
    assert "launch" not in set(sweep.events()["kind"])  # a registered queue is no surprise


def test_a_queue_naming_a_missing_gpu_is_refused(sqlite_store: str, four_gpus: FakeNVML) -> None:
    nbsweep.register_queue("a100", gpus=[7])
    with pytest.raises(PlacementError, match="queue 'a100' names GPU 7, which is not visible here"):
        nbsweep.sweep(grid(2, queue="a100"), trainfns.environment, store=sqlite_store)


def test_register_queue_says_what_it_takes() -> None:
    with pytest.raises(PlacementError, match="either a Dask client or gpus=\\[...\\], not neither"):
        nbsweep.register_queue("q")
    with pytest.raises(PlacementError, match="must be a distributed.Client"):
        nbsweep.register_queue("q", "tcp://scheduler:8786")
    with pytest.raises(PlacementError, match="list GPU indices or UUIDs"):
        nbsweep.register_queue("q", gpus=[])


@pytest.mark.timeout(180)
def test_a_queue_registered_with_a_dask_client_runs_the_agents_there(
    sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client, LocalCluster, get_task_stream

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
        get_task_stream(client) as tasks,
    ):
        # Set after the worker started: only forwarding brings it to the runs.
        monkeypatch.setenv("NBSWEEP_TEST_TOKEN", "from-the-kernel")
        nbsweep.register_queue("cluster", client)
        scheduler = {"resource_args": {"env": ["NBSWEEP_TEST_TOKEN"]}}
        config = grid(3, queue="cluster", scheduler=scheduler)
        sweep = nbsweep.sweep(config, trainfns.environment, workers=1, store=sqlite_store)
        assert sweep.wait(timeout=120) == "finished"
        on_worker = client.run(lambda: os.environ.get("NBSWEEP_TEST_TOKEN", "<unset>"))
    assert list(on_worker.values()) == ["<unset>"]
    assert list(sweep.runs["summary/token"]) == ["from-the-kernel"] * 3
    keys = {str(task["key"]) for task in tasks.data}
    assert any(key.startswith("nbsweep-agent") and sweep.id in key for key in keys), keys


# -- resource_args.env and the keys with no local effect ----------------------------------------


def test_resource_args_env_reaches_the_runs_and_a_missing_one_is_named(
    sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBSWEEP_TEST_TOKEN", "s3cret")
    monkeypatch.delenv("NBSWEEP_TEST_MISSING", raising=False)
    env = {"env": ["NBSWEEP_TEST_TOKEN", "NBSWEEP_TEST_MISSING"]}
    config = grid(2, scheduler={"resource_args": env})
    with pytest.warns(ConfigWarning, match="not set in this process.*: NBSWEEP_TEST_MISSING$"):
        sweep = nbsweep.sweep(config, trainfns.environment, workers=1, store=sqlite_store)
    assert sweep.wait(timeout=60) == "finished"
    assert list(sweep.runs["summary/token"]) == ["s3cret", "s3cret"]


def test_w_and_b_only_keys_are_recorded_and_reported_once(sqlite_store: str) -> None:
    scheduler = {
        "num_workers": 1,
        "docker_image": "python:3.11",
        "resource": "local-container",
        "resource_args": {"env": [], "gpus": 1},
        "job": "me/project/job-CustomWandbScheduler:latest",
    }
    config = grid(2, job="me/project/train:v1", launch={"registry": "r"}, scheduler=scheduler)
    with pytest.warns(ConfigWarning) as caught:
        sweep = nbsweep.sweep(config, trainfns.busy, workers=0, store=sqlite_store)
    (note,) = [str(w.message) for w in caught if "Launch keys" in str(w.message)]
    for part in (
        "job 'me/project/train:v1'",
        "launch",
        "scheduler.docker_image 'python:3.11'",
        "scheduler.resource 'local-container'",
        "scheduler.resource_args.gpus",
        "scheduler.job 'me/project/job-CustomWandbScheduler:latest' (nbsweep's own scheduler",
    ):
        assert part in note
    assert sweep.config["launch"] == {"registry": "r"}  # recorded as given
    sweep.pause()
    sweep.resume(config={"scheduler": {"num_workers": 1}}, workers=0)
    nbsweep.agent(sweep.id, trainfns.busy, store=sqlite_store)
    assert sweep.wait(timeout=60) == "finished"
    assert list(sweep.events()["kind"]).count("launch") == 1


# -- resume -----------------------------------------------------------------------------------


def test_resume_raises_num_workers_and_the_agents_follow(
    sqlite_store: str, four_gpus: FakeNVML, tmp_path: Path
) -> None:
    def busy() -> int:
        return int((sweep.agents["state"] == "busy").sum())

    # Every run waits at a gate until the sweep is stopped: its agents stay busy till then.
    config = grid(6, epochs=3, scheduler={"num_workers": 1})
    config["parameters"]["gate"] = {"value": str(tmp_path)}
    sweep = nbsweep.sweep(config, trainfns.busy, store=sqlite_store)
    wait_for(lambda: busy() == 1)
    sweep.pause()
    sweep.resume(config={"scheduler": {"num_workers": 3}})
    assert sweep.config["scheduler"] == {"num_workers": 3}
    wait_for(lambda: busy() == 3)
    sweep.stop()
    (tmp_path / "all").touch()
    assert sweep.wait(timeout=60) == "finished"
    agents = sweep.agents
    assert len(agents) == 3 and agents["gpu"].nunique() == 3
    assert "config changed on resume: scheduler" in set(sweep.events()["message"])


def test_resume_moves_the_sweep_to_another_queue(
    sqlite_store: str, four_gpus: FakeNVML, tmp_path: Path
) -> None:
    nbsweep.register_queue("small", gpus=[0])
    nbsweep.register_queue("big", gpus=[2, 3])
    # Run x waits at a gate until the test lets it go (``tmp_path / str(x)``).
    config = grid(6, epochs=3, queue="small")
    config["parameters"]["gate"] = {"value": str(tmp_path)}
    sweep = nbsweep.sweep(config, trainfns.busy, store=sqlite_store)
    wait_for(lambda: (sweep.agents["state"] == "busy").sum() == 1)
    sweep.pause()
    sweep.resume(config={"queue": "big"})
    (tmp_path / "0").touch()  # the agent on "small" ends its run, then leaves
    big = {uuid(four_gpus, 2), uuid(four_gpus, 3)}

    def moved() -> bool:
        agents = sweep.agents
        on_small = agents.loc[agents["gpu"] == uuid(four_gpus, 0), "state"]
        busy = set(agents.loc[agents["state"] == "busy", "gpu"])
        return busy == big and set(on_small) == {"dead"}  # it left after its run

    wait_for(moved)
    sweep.stop()
    (tmp_path / "all").touch()
    assert sweep.wait(timeout=60) == "finished"
    assert set(sweep.agents["gpu"]) == {uuid(four_gpus, 0), *big}
    assert big <= set(sweep.runs["gpu"])


def test_resume_of_a_sweep_whose_controller_left_uses_the_new_settings(sqlite_store: str) -> None:
    sweep = nbsweep.sweep(grid(4), trainfns.busy, workers=0, store=sqlite_store)
    sweep.pause()
    controller = _controllers[sweep.id]
    controller.quit()
    controller.join()
    sweep.resume(config={"scheduler": {"num_workers": 2}}, workers=4)
    assert sweep.wait(timeout=60) == "finished"
    assert len(sweep.agents) == 2
    assert list(sweep.runs["state"]) == ["finished"] * 4


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"parameters": {"x": {"values": [9]}, "epochs": {"value": 1}}}, "parameters"),
        ({"method": "random"}, "method"),
        ({"metric": {"name": "acc", "goal": "maximize"}}, "metric"),
        ({"job": "other/job:latest"}, "job"),
    ],
)
def test_resume_refuses_a_change_of_the_search(
    sqlite_store: str, change: dict[str, Any], refused: str
) -> None:
    sweep = nbsweep.sweep(grid(3), trainfns.busy, workers=0, store=sqlite_store)
    sweep.pause()
    before = sweep.config
    with pytest.raises(SweepError, match=f"resume cannot change {refused}: the search"):
        sweep.resume(config=change)
    assert sweep.config == before and sweep.state == "paused"


def test_resume_refuses_to_switch_the_scheduler(sqlite_store: str) -> None:
    config = grid(3, scheduler={"num_workers": 1})
    sweep = nbsweep.sweep(config, trainfns.busy, workers=0, store=sqlite_store)
    sweep.pause()
    with pytest.raises(SweepError, match="cannot switch the scheduler \\(nbsweep -> optuna\\)"):
        sweep.resume(config={"scheduler": {"engine": "optuna"}})
