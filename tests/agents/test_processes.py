"""What crosses process boundaries: the train function, GPUs, agents dying at start.

The controller's death, a second process and unshippable functions: tests/faults.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nbsweep
from nbsweep import PlacementError
from nbsweep.agents import FakeNVML, plan_slots
from nbsweep.agents._shipping import reference
from tests import trainfns

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(f"import sys\nsys.path.insert(0, {str(REPO)!r})\n" + textwrap.dedent(body))
    return path


def test_importable_functions_travel_by_reference() -> None:
    assert reference(trainfns.quadratic) == "tests.trainfns:quadratic"


def test_a_function_defined_in_main_travels_by_value(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        import json
        import math

        import nbsweep

        OFFSET = 10


        class Scaler:
            def __init__(self, factor):
                self.factor = factor

            def __call__(self, value):
                return value * self.factor


        def helper(x):
            return math.sqrt(x) + OFFSET


        @nbsweep.train
        def train(config):
            value = Scaler(2)(helper(config.x))
            nbsweep.log({"loss": value})
            return {"value": value}


        if __name__ == "__main__":
            config = {"method": "grid", "parameters": {"x": {"values": [4, 9]}}}
            sweep = nbsweep.sweep(config, train, workers=2, store=sys.argv[1])
            sweep.wait()
            print(json.dumps(sweep.runs[["state", "summary/value"]].to_dict("list")))
        """,
    )
    store = str(tmp_path / "store.db")
    done = subprocess.run(
        [sys.executable, str(script), store], capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"state": ["finished", "finished"], "summary/value": [24.0, 26.0]}
    pickles = list((tmp_path / "sweeps").glob("*/train.pkl"))
    assert len(pickles) == 1 and (pickles[0].stat().st_mode & 0o777) == 0o600


def test_gpu_slots_follow_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNVML(4)
    uuids = [g["uuid"] for g in nvml.gpus]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert [s.gpu for s in plan_slots(nvml=nvml)] == uuids
    assert [s.gpu for s in plan_slots(gpus_per_run=2, nvml=nvml)] == [
        f"{uuids[0]},{uuids[1]}",
        f"{uuids[2]},{uuids[3]}",
    ]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"2,{uuids[0]}")
    slots = plan_slots(nvml=nvml)
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == [uuids[2], uuids[0]]
    assert all(s.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" for s in slots)
    assert [s.gpu for s in plan_slots(workers=3, nvml=nvml)] == [uuids[2], uuids[0], uuids[2]]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    with pytest.raises(PlacementError, match="CUDA_VISIBLE_DEVICES='7' names GPU '7'"):
        plan_slots(nvml=nvml)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(PlacementError, match="gpus_per_run=2 but only 1 GPU"):
        plan_slots(gpus_per_run=2, nvml=nvml)


def test_no_gpu_gives_cpu_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    slots = plan_slots(nvml=FakeNVML(0))
    assert len(slots) == (os.cpu_count() or 1)
    assert all(s.gpu == "" and "CUDA_VISIBLE_DEVICES" not in s.env for s in slots)
    assert len(plan_slots(workers=2, nvml=FakeNVML(0))) == 2


def test_agents_dying_at_start_pause_the_sweep_and_a_fixed_function_resumes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_store: str
) -> None:
    # A module the kernel imports but agents will not find: every agent dies at start.
    (tmp_path / "vanishing.py").write_text("def train(config):\n    return {'ok': 1}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import vanishing  # type: ignore[import-not-found]

    config = {"method": "grid", "parameters": {"x": {"values": [1, 2]}}}
    (tmp_path / "vanishing.py").unlink()
    sweep = nbsweep.sweep(config, vanishing.train, workers=1, store=sqlite_store)
    assert sweep.wait(timeout=90) == "paused"
    assert "3 agents in a row died before running anything" in sweep.message
    assert "vanishing" in sweep.message  # the import error from the agent's output
    assert sweep.runs["state"].tolist() in (["pending"], ["pending", "pending"])
    sweep.resume(train=trainfns.quadratic)
    assert sweep.wait(timeout=60) == "finished"
    assert set(sweep.runs["state"]) == {"finished"}
