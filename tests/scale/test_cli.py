"""The ``nbsweep`` command, run as users run it: a real process against a real store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbsweep

REPO = Path(__file__).resolve().parents[2]


def cli(
    *args: str, cwd: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """``nbsweep ARGS`` in ``cwd``, importing this checkout of nbsweep."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), **env}
    environ.pop("NBSWEEP_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "nbsweep.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_user_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "agent", "ls", "show", "pause", "resume", "stop", "cancel"):
        assert command in result.stdout


def test_invalid_config_names_the_key_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "program: t.py\nmethod: grid\nmetric: {name: loss, goal: maximise}\n"
        "parameters: {lr: {values: [1, 2]}}\n"
    )
    assert_user_error(cli("run", "bad.yaml", cwd=tmp_path), "metric.goal")


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    assert_user_error(cli("run", "nope.yaml", cwd=tmp_path), "nope.yaml")


def test_config_without_program_says_what_to_add(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("method: grid\nparameters: {lr: {values: [1, 2]}}\n")
    assert_user_error(cli("run", "s.yaml", cwd=tmp_path), "program: train.py", "--function")


def test_bad_command_macro_names_the_element(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "program: t.py\ncommand: [python, '${program}', '${arg}']\nmethod: grid\n"
        "parameters: {lr: {values: [1, 2]}}\n"
    )
    assert_user_error(cli("run", "s.yaml", cwd=tmp_path), "command[2]", "${arg}")


def test_unimportable_function_is_named(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("method: grid\nparameters: {lr: {values: [1, 2]}}\n")
    result = cli("run", "s.yaml", "--function", "no_such_module:train", cwd=tmp_path)
    assert_user_error(result, "no_such_module")


# --- end to end: program sweeps -----------------------------------------------------------

TRAIN = """\
import argparse, sys, time
import nbsweep

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--name", type=str)
parser.add_argument("--sleep", type=float, default=0.0)
args = parser.parse_args()
for epoch in range(3):
    nbsweep.log({"loss": args.lr * (3 - epoch), "epoch": epoch, "got": args.name,
                 "argc": len(sys.argv)})
    time.sleep(args.sleep)
if args.name == "bad":
    print("diverged", flush=True)
    sys.exit(4)
"""

GRID = """\
program: train.py
method: grid
metric: {name: loss, goal: minimize}
parameters:
  lr: {values: [0.1, 0.2]}
  name: {values: ["; rm -rf ~", "$(touch PWNED)"]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "sweep.yaml").write_text(GRID)
    return tmp_path


def sweep_id_of(stdout: str) -> str:
    first = stdout.splitlines()[0]
    assert first.startswith("sweep "), stdout
    return first.split()[1]


@pytest.mark.timeout(180)
def test_run_a_program_sweep_end_to_end(project: Path) -> None:
    result = cli("run", "sweep.yaml", "--workers", "2", "--name", "cli-grid", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_id = sweep_id_of(result.stdout)
    assert f"sweep {sweep_id} finished" in result.stdout

    sweep = nbsweep.load(sweep_id, store=str(project / ".nbsweep" / "nbsweep.db"))
    runs = sweep.runs
    assert sorted(runs["state"]) == ["finished"] * 4
    # Each value, shell metacharacters and all, reached the program as one argument.
    assert list(runs["summary/got"]) == list(runs["config/name"])
    assert set(runs["summary/argc"]) == {3}
    assert list(runs["summary/loss"]) == [pytest.approx(v) for v in runs["config/lr"]]
    assert not list(project.rglob("PWNED"))
    assert len(sweep.history()) == 12
    # W&B's parameter file of every run, next to the program.
    assert len(list((project / "wandb" / f"sweep-{sweep_id}").glob("config-*.yaml"))) == 4

    shown = cli("show", sweep_id, cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("finished") >= 4 and "; rm -rf ~" in shown.stdout
    listed = cli("ls", cwd=project)
    assert sweep_id in listed.stdout and "cli-grid" in listed.stdout


@pytest.mark.timeout(180)
def test_failed_program_runs_carry_exit_code_and_output(project: Path) -> None:
    (project / "sweep.yaml").write_text(
        "program: train.py\nmethod: grid\nmetric: {name: loss}\n"
        "parameters:\n  lr: {value: 0.1}\n  name: {values: [good, bad]}\n"
    )
    result = cli("run", "sweep.yaml", "--workers", "1", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "program exited with code 4" in result.stdout

    sweep = nbsweep.load(sweep_id_of(result.stdout), store=str(project / ".nbsweep" / "nbsweep.db"))
    runs = sweep.runs.set_index("config/name")
    assert runs.loc["good", "state"] == "finished"
    assert runs.loc["bad", "state"] == "failed"
    error = runs.loc["bad", "error"]
    assert "diverged" in error and error.endswith("program exited with code 4")
    # Rows logged before the failure are kept.
    assert runs.loc["bad", "summary/loss"] == pytest.approx(0.1)


def test_unknown_sweep_id_exits_2(tmp_path: Path) -> None:
    assert_user_error(cli("show", "nope1234", cwd=tmp_path), "nope1234")
    assert_user_error(cli("cancel", "nope1234", cwd=tmp_path), "nope1234")
