"""The ``nbsweep`` command, run as users run it: a real process against a real store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
