"""Cost: NVML sampled while runs are live, GPU-hours used, GPU-hours early termination saved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nbsweep
from nbsweep.agents import FakeNVML, _gpus
from nbsweep.agents._gpus import GpuMeter
from tests import gpu_trainfns


def test_runs_carry_the_utilisation_and_memory_sampled_on_their_gpu(sqlite_store: str) -> None:
    gpus = FakeNVML([{"uuid": "GPU-busy", "util": 70}, {"uuid": "GPU-idle", "util": [5, 15]}])
    config = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"mem_mb": {"values": [1000, 2000, 3000, 4000]}},
    }
    sweep = nbsweep.sweep(config, gpu_trainfns.loads_gpu, store=sqlite_store, nvml=gpus)
    assert sweep.wait(60) == "finished"
    runs = sweep.runs.set_index("run_id")
    assert set(runs["gpu"]) <= {"GPU-busy", "GPU-idle"} and len(runs) == 4
    for run_id, run in runs.iterrows():
        # Peak memory: the run filled mem_mb, then half of it.
        assert run["gpu_mem_mb"] == run["config/mem_mb"], run_id
        if run["gpu"] == "GPU-busy":
            assert run["gpu_util"] == 70
        else:  # 5 at the agent's first reading, 15 ever after
            assert 5 <= run["gpu_util"] <= 15
        # One GPU held for the whole run (0.6 s of work), never more than the run lasted.
        assert 0.6 <= run["gpu_seconds"] <= run["runtime_s"]
    cost = sweep.cost()
    assert cost.gpu_hours == pytest.approx(runs["gpu_seconds"].sum() / 3600)
    assert (cost.gpu_runs, cost.cpu_runs, cost.gpu_hours_saved) == (4, 0, 0.0)


def test_cpu_runs_have_no_gpu_figures_and_say_so(sqlite_store: str) -> None:
    config = {"method": "grid", "parameters": {"x": {"values": [1, 2]}, "epochs": {"value": 2}}}
    sweep = nbsweep.sweep(
        config, gpu_trainfns.busy, workers=1, store=sqlite_store, nvml=FakeNVML(0)
    )
    assert sweep.wait(60) == "finished"
    runs = sweep.runs
    assert runs[["gpu_util", "gpu_mem_mb", "gpu_seconds"]].isna().all().all()
    cost = sweep.cost()
    assert (cost.gpu_hours, cost.gpu_runs, cost.cpu_runs) == (0.0, 0, 2)
    assert "2 runs on CPU (no GPU time)" in str(cost)


def hyperband(epochs: int, **early: Any) -> dict[str, Any]:
    return {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": [0, 3, 1, 4, 2]}, "epochs": {"value": epochs}},
        "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2, **early},
    }


def test_hyperband_reports_the_gpu_hours_its_stopped_runs_did_not_spend(
    sqlite_store: str,
) -> None:
    sweep = nbsweep.sweep(
        hyperband(8), gpu_trainfns.learns, workers=1, store=sqlite_store, nvml=FakeNVML(1)
    )
    assert sweep.wait(60) == "finished"
    runs = sweep.runs
    stopped = runs[runs["state"] == "stopped"]
    finished = runs[runs["state"] == "finished"]
    assert len(stopped) and (finished["steps"] == 8).all()
    not_run = 8 - stopped["steps"]  # one metric value per epoch
    cost = sweep.cost()
    assert cost.epochs_saved == not_run.sum() > 0
    per_epoch = stopped["gpu_seconds"] / stopped["steps"]
    assert cost.gpu_hours_saved == pytest.approx((not_run * per_epoch).sum() / 3600)
    assert cost.gpu_hours_saved > 0
    assert cost.gpu_hours == pytest.approx(runs["gpu_seconds"].sum() / 3600)
    assert f"{cost.epochs_saved} epochs not run" in str(cost)


class NVMLError_NotSupported(Exception):  # noqa: N801 - the name pynvml gives it
    pass


class MigSlice(FakeNVML):
    """A GPU that reports memory but no utilisation, as a MIG slice does."""

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:  # noqa: N802
        raise NVMLError_NotSupported()


def test_a_gpu_without_utilisation_still_gives_memory_and_gpu_seconds() -> None:
    # The first reading is the meter's baseline, before any run.
    gpus = MigSlice([{"uuid": "MIG-1", "used": [2**30, 2**30, 3 * 2**30, 2**30]}])
    meter = GpuMeter(["MIG-1"], nvml=gpus)
    for _ in range(3):
        meter.sample()
    use = meter.use()
    assert use.util is None and use.mem_mb == 3 * 1024 and use.seconds >= 0
    meter.start()  # the next run starts from nothing
    assert meter.use().mem_mb == 1024  # one reading taken at the end, the last value held


def test_agents_started_outside_a_kernel_measure_the_gpus_they_are_given(
    sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpus = FakeNVML([{"uuid": "GPU-a"}, {"uuid": "GPU-b"}])
    config = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"mem_mb": {"values": [1000, 2000, 3000]}},
    }
    # No agents of its own: the runs are done by agents started elsewhere.
    with pytest.warns(UserWarning, match="workers=0: no agent runs sweep"):
        sweep = nbsweep.sweep(
            config, gpu_trainfns.loads_gpu, workers=0, store=sqlite_store, nvml=gpus
        )
    # In this process, as wandb.agent, on the GPU its CUDA_VISIBLE_DEVICES names.
    monkeypatch.setattr(_gpus, "_nvml", gpus)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-b")
    assert nbsweep.agent(sweep.id, gpu_trainfns.loads_gpu, count=1, store=sqlite_store) == 1
    # From a shell: `nbsweep agent --workers 2` gives each of its agents one GPU.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    shell = subprocess.run(
        [sys.executable, "-m", "nbsweep.cli", "agent", sweep.id, "--store", sqlite_store]
        + ["--workers", "2"],
        env={**os.environ, _gpus.FAKE_ENV: gpus.to_env()},
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.returncode == 0, shell.stderr
    assert sweep.wait(60) == "finished"
    runs = sweep.runs.sort_values("started_at")
    assert (runs["state"] == "finished").all() and len(runs) == 3
    assert runs["gpu"].iloc[0] == "GPU-b" and set(runs["gpu"]) <= {"GPU-a", "GPU-b"}
    # Each measured on the GPU it loaded (its own fake's memory), for as long as it ran.
    assert (runs["gpu_mem_mb"] == runs["config/mem_mb"]).all()
    assert (runs["gpu_seconds"] >= 0.6).all()
    assert set(sweep.agents["gpu"]) == {"GPU-a", "GPU-b"}
    cost = sweep.cost()
    assert (cost.gpu_runs, cost.cpu_runs) == (3, 0)
