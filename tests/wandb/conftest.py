"""Fixture of the W&B tests: ``.venv-wandb``, where W&B's real package is installed."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nbsweep.wandb._sdk import SHIM_DIR

REPO = Path(__file__).resolve().parents[2]
WANDB_VENV = REPO / ".venv-wandb"


@pytest.fixture(scope="session")
def wandb_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of ``.venv-wandb``: W&B's real package, and this venv's packages."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rn", "true"]).returncode:
        pytest.fail("needs `unshare -rn` (util-linux) to run W&B's package without a network")
    # Built once, by one test process at a time (pytest -n runs several).
    lock = tmp_path_factory.getbasetemp().parent / "venv-wandb.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        subprocess.run(["make", "-s", ".venv-wandb/.stamp"], cwd=REPO, check=True, timeout=600)
    python = WANDB_VENV / "bin" / "python"
    # Outside nbsweep's runs, ``import wandb`` is W&B's own package: nothing shadows it, not
    # even nbsweep's shim folder put on the path by hand (it routes a program's run only).
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBSWEEP_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SHIM_DIR), str(REPO)])
    found = subprocess.run(
        [python, "-c", "import wandb; print(wandb.__version__, wandb.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path_factory.mktemp("wandb-import"),
        env=env,
    )
    assert found.returncode == 0, found.stderr
    version, path = found.stdout.split()
    assert version.startswith("0.31.") and "site-packages" in path and "nbsweep" not in path
    return python
