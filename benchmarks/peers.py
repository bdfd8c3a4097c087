"""The peers' virtual environments and the JSON-lines client that drives them.

Each peer lives in ``.bench/<env>-venv`` because their pins clash (W&B's ``sweeps`` needs
numpy<2, Optuna's GP sampler needs torch). The objective is never evaluated in a peer: the
peer only answers ``ask``/``tell`` (and early-termination questions), so every method sees
the same function and the same cached learning curves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / ".bench"
SERVER = Path(__file__).resolve().parent / "peer_server.py"
MULTIFIDELITY = Path(__file__).resolve().parent / "requirements-multifidelity.txt"


def _pins(path: Path) -> list[str]:
    """The requirements of a requirements file (its comments and blank lines left out)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


# The requirements of each peer environment; a change here rebuilds that environment.
ENVS: dict[str, list[str]] = {
    "optuna": ["optuna>=4.0", "torch==2.13.0", "scipy>=1.10", "numpy>=1.24"],
    "hyperopt": ["hyperopt==0.2.7", "numpy<2", "setuptools<81"],
    "wandb": ["sweeps==0.3.0", "numpy<2"],
}
# Every peer environment: the search peers' above, and the multi-fidelity peers' of
# benchmarks/multifidelity.py, pinned in requirements-multifidelity.txt.
PINS: dict[str, list[str]] = {**ENVS, "multifidelity": _pins(MULTIFIDELITY)}

# Peers issue 16 asked for that do not install here, with why (checked in a fresh venv of the
# harness's Python; the report prints this).
NOT_INSTALLED: dict[str, str] = {
    "HEBO": (
        "It does not install cleanly on CPU (checked 2026-12-06 in a fresh Python 3.11 venv). "
        "`pip install HEBO` (0.3.6, the latest release) pins `numpy<1.25` and `pymoo==0.6.0`, "
        "which has no Python 3.11 wheel; to satisfy both, pip's resolver walked matplotlib (a "
        "pymoo requirement) back to 3.3.x source releases, which build numpy from source, and "
        "had not finished after 11 minutes. Without a CPU pin for torch it also pulls "
        "torch's CUDA wheels (cuda-toolkit 13). HEBO is therefore not a peer here, and this "
        "report has no HEBO figure."
    ),
}

# Which environment serves which peer method.
METHOD_ENV: dict[str, str] = {
    "optuna-tpe": "optuna",
    "optuna-gp": "optuna",
    "optuna-sha": "optuna",
    "optuna-hyperband": "optuna",
    "hyperopt-tpe": "hyperopt",
    "wandb-bayes": "wandb",
    "wandb-random": "wandb",
    "wandb-hyperband": "wandb",
}


class PeerError(RuntimeError):
    """A peer environment could not be built or a peer answered with an error."""


def venv_dir(env: str) -> Path:
    return BENCH_DIR / f"{env}-venv"


def venv_python(env: str) -> Path:
    return venv_dir(env) / "bin" / "python"


def venv_ready(env: str) -> bool:
    """Whether ``.bench/<env>-venv`` exists with exactly its pins (nothing to build)."""
    stamp = venv_dir(env) / ".nbsweep-bench-stamp"
    return (
        stamp.exists() and stamp.read_text() == json.dumps(PINS[env]) and venv_python(env).exists()
    )


def ensure_venv(env: str, log: Any = None) -> Path:
    """Create ``.bench/<env>-venv`` with its pins unless it already has exactly those pins."""
    requirements = PINS[env]
    directory = venv_dir(env)
    stamp = directory / ".nbsweep-bench-stamp"
    wanted = json.dumps(requirements)
    if venv_ready(env):
        return venv_python(env)
    if log is not None:
        print(f"building the {env} peer environment in {directory} (first use only)", file=log)
    BENCH_DIR.mkdir(exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(directory)],
        [str(venv_python(env)), "-m", "pip", "install", "-q", *requirements],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise PeerError(
                f"building .bench/{env}-venv failed at `{' '.join(step)}`:\n{done.stderr[-3000:]}"
                f"\nfix the pins of {env!r} (benchmarks/peers.py PINS) or delete .bench/{env}-venv"
            )
    stamp.write_text(wanted)
    return venv_python(env)


class Peer:
    """One peer process in its own environment, spoken to one JSON line at a time.

    ``script`` is the peer's side of the protocol; ``log``, where its stderr goes (a peer that
    writes much there, as DEHB does, would fill a pipe nobody reads until it dies).
    """

    def __init__(self, env: str, script: Path = SERVER, log: Path | None = None) -> None:
        python = ensure_venv(env, log=sys.stderr)
        # The peer must not see the harness's packages: a clean environment for its venv.
        environ = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        environ["PYTHONHASHSEED"] = "0"
        environ["OMP_NUM_THREADS"] = "1"  # the machine is shared; timings stay comparable
        environ["MKL_NUM_THREADS"] = "1"
        self.env = env
        self.log = log.open("a") if log is not None else None
        self.process = subprocess.Popen(
            [str(python), "-u", str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log or subprocess.PIPE,
            text=True,
            env=environ,
        )

    def call(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its answer; a peer-side error becomes ``PeerError``."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            if self.log is not None:
                why = f"see {self.log.name} for its traceback"
            else:
                why = self.process.stderr.read()[-3000:] if self.process.stderr else ""
            raise PeerError(f"the {self.env} peer died on {message.get('op')}:\n{why}")
        answer = json.loads(line)
        if "error" in answer:
            raise PeerError(f"the {self.env} peer failed on {message.get('op')}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.call({"op": "quit"})
            except (PeerError, BrokenPipeError, OSError):
                self.process.kill()  # it cannot quit itself: nothing left to release but it
            self.process.wait(timeout=30)
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def peer_versions(env: str) -> dict[str, str]:
    """The versions of the packages that matter in a peer environment."""
    with Peer(env) as peer:
        return peer.call({"op": "versions"})["versions"]


if __name__ == "__main__":
    for name in sys.argv[1:] or list(PINS):
        print(name, ensure_venv(name, log=sys.stderr))
