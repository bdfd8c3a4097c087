"""The ``nbsweep`` command, run as users run it: a real process against a real store."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nbsweep
from tests.waiting import wait_for

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
    for command in ("run", "agent", "ls", "show", "pause", "resume", "retry", "stop", "cancel"):
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
import argparse, os, sys, time
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
if args.name == "bad" and not os.path.exists("fixed"):
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

    # Once the program is fixed, ``retry`` runs the failed config again: the finished sweep's
    # controller starts here and the command ends with the sweep.
    (project / "fixed").touch()
    again = cli("retry", sweep.id, "--workers", "1", cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 failed or crashed runs queued again" in again.stdout
    failed = runs.loc["bad", "run_id"]
    assert sweep.state == "finished"
    retried = sweep.runs[sweep.runs["requeued_from"] == failed]
    assert retried["state"].tolist() == ["finished"]


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # ``nbsweep ls | head -0``: the reader is gone before the first line is written.
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "nbsweep.cli", "ls", "--store", str(tmp_path / "s.db")],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert result.returncode == 141
    assert result.stderr == ""


def test_unknown_sweep_id_exits_2(tmp_path: Path) -> None:
    assert_user_error(cli("show", "nope1234", cwd=tmp_path), "nope1234")
    assert_user_error(cli("cancel", "nope1234", cwd=tmp_path), "nope1234")


def detach(project: Path, config: str, *args: str) -> tuple[str, int]:
    """``nbsweep run --detach``; returns the sweep id and the background process id."""
    result = cli("run", config, "--detach", *args, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.match(r"sweep (\w+) running in the background \(pid (\d+),", result.stdout)
    assert found, result.stdout
    return found[1], int(found[2])


def end_process(pid: int) -> None:
    """Make sure a background controller started by a test is gone when the test ends."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    pytest.fail(f"nbsweep run --detach (pid {pid}) did not exit after its sweep ended")


def share_one_sweep(project: Path, store_url: str, launch: str) -> None:
    """Start a controller only, then agents with the shell command ``launch`` (``{agent}``)."""
    sweep_id, pid = detach(project, "sweep.yaml", "--workers", "0", "--store", store_url)
    try:
        agent = (
            f"{shlex.quote(sys.executable)} -m nbsweep.cli agent {sweep_id}"
            f" --store {shlex.quote(store_url)} --count 2"
        )
        shell = subprocess.run(
            ["sh", "-c", launch.format(agent=agent)],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert shell.returncode == 0, shell.stdout + shell.stderr
        sweep = nbsweep.load(sweep_id, store=store_url)
        assert sweep.wait(timeout=60) == "finished"
    finally:
        end_process(pid)
    runs = sweep.runs
    assert sorted(runs["state"]) == ["finished"] * 4
    # Every grid point ran exactly once, two on each agent.
    assert sorted(zip(runs["config/lr"], runs["config/name"], strict=True)) == sorted(
        (lr, name) for lr in (0.1, 0.2) for name in ("; rm -rf ~", "$(touch PWNED)")
    )
    assert sorted(runs.groupby("agent").size()) == [2, 2]
    assert list(runs["summary/got"]) == list(runs["config/name"])


@pytest.mark.timeout(240)
def test_two_agents_started_from_a_shell_share_one_sweep(project: Path, store_url: str) -> None:
    """On SQLite and on PostgreSQL: the suite's end-to-end test of agent processes on a
    PostgreSQL store (every other process-level test runs on SQLite; the store contract in
    tests/store/test_store.py covers each store call on both)."""
    share_one_sweep(project, store_url, "{agent} & {agent} & wait")


@pytest.mark.timeout(240)
def test_agent_workers_starts_that_many_agents(project: Path, sqlite_store: str) -> None:
    share_one_sweep(project, sqlite_store, "{agent} --workers 2")


SLOW = """\
import os, signal, sys, time
import nbsweep

def on_term(*_):
    open(f"term-{os.environ['NBSWEEP_RUN_ID']}", "w").close()
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
nbsweep.log({"loss": 1.0})
time.sleep(120)  # long epochs: no log() call to notice the cancel, so only a signal ends it
"""

RANDOM = """\
program: slow.py
method: random
metric: {name: loss}
parameters:
  lr: {min: 0.0, max: 1.0}
"""


@pytest.mark.timeout(240)
def test_pause_resume_and_cancel_from_the_terminal(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    (tmp_path / "sweep.yaml").write_text(RANDOM)
    sweep_id, pid = detach(tmp_path, "sweep.yaml", "--workers", "1")
    try:
        sweep = nbsweep.load(sweep_id, store=str(tmp_path / ".nbsweep" / "nbsweep.db"))
        wait_for(lambda: 1 in set(sweep.runs["steps"]), "a run that logged")
        assert cli("pause", sweep_id, cwd=tmp_path).returncode == 0
        assert sweep.state == "paused"
        assert cli("resume", sweep_id, cwd=tmp_path).returncode == 0
        assert sweep.state == "running"
        cancelled = cli("cancel", sweep_id, cwd=tmp_path)
        assert cancelled.returncode == 0, cancelled.stderr
        assert "cancel" in cancelled.stdout
        assert sweep.wait(timeout=60) == "cancelled"
    finally:
        end_process(pid)
    killed = sweep.runs[sweep.runs["state"] == "killed"]
    assert len(killed) == 1
    # The cancel reached the program as SIGTERM (its agent is killed; Linux relays it).
    wait_for(lambda: (tmp_path / f"term-{killed['run_id'].iloc[0]}").exists(), "SIGTERM")
    assert set(sweep.runs["state"]) <= {"killed"}


def as_in_a_terminal() -> None:
    """Ctrl-C as a command in a terminal gets it: a suite started in the background
    (``make test &`` from a script) hands its processes SIGINT ignored, and Python keeps an
    ignored SIGINT, as it should for ``nbsweep run ... &``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.timeout(240)
def test_ctrl_c_stops_the_sweep_and_lets_running_runs_finish(tmp_path: Path) -> None:
    # After its first row a run waits at a gate the test opens once Ctrl+C was sent.
    gate = tmp_path / "gate"
    (tmp_path / "short.py").write_text(
        "import os, time, nbsweep\n"
        "for epoch in range(4):\n"
        "    nbsweep.log({'loss': 1.0 / (epoch + 1)})\n"
        f"    while not os.path.exists({str(gate)!r}):\n"
        "        time.sleep(0.02)\n"
    )
    (tmp_path / "sweep.yaml").write_text(RANDOM.replace("slow.py", "short.py"))
    process = subprocess.Popen(
        [sys.executable, "-m", "nbsweep.cli", "run", "sweep.yaml", "--workers", "1"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_in_a_terminal,
    )
    assert process.stdout is not None
    try:
        sweep_id = sweep_id_of(process.stdout.readline())
        sweep = nbsweep.load(sweep_id, store=str(tmp_path / ".nbsweep" / "nbsweep.db"))
        wait_for(lambda: 1 in set(sweep.runs["steps"]), "a run in flight")
        process.send_signal(signal.SIGINT)
        wait_for(lambda: sweep.state != "running", "the sweep stopping")
        gate.touch()
        out = process.communicate(timeout=120)[0]
    finally:
        process.kill()
    assert process.returncode == 130, out
    assert "stopping: no new runs" in out
    sweep = nbsweep.load(sweep_id, store=str(tmp_path / ".nbsweep" / "nbsweep.db"))
    assert sweep.state == "finished"
    assert "stopped by the user" in sweep.message
    # The run in flight was let finish (all its rows), not killed.
    assert set(sweep.runs["state"]) == {"finished"}
    assert set(sweep.runs["steps"]) == {4}


@pytest.mark.timeout(240)
def test_hyperband_stops_a_program_at_the_band(tmp_path: Path) -> None:
    (tmp_path / "hb.py").write_text(
        "import argparse, nbsweep\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--lr', type=float)\n"
        "for epoch in range(6):\n"
        "    nbsweep.log({'loss': parser.parse_args().lr})\n"
    )
    (tmp_path / "hb.yaml").write_text(
        "program: hb.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n"
        "early_terminate: {type: hyperband, min_iter: 2, eta: 3}\n"
        "parameters:\n  lr: {values: [0.1, 5.0]}\n"
    )
    result = cli("run", "hb.yaml", "--workers", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    sweep = nbsweep.load(
        sweep_id_of(result.stdout), store=str(tmp_path / ".nbsweep" / "nbsweep.db")
    )
    runs = sweep.runs.set_index("config/lr")
    assert list(runs["state"]) == ["finished", "stopped"]
    assert list(runs["steps"]) == [6, 2]
    # The program's own summary survives the stop.
    assert list(runs["summary/loss"]) == [0.1, 5.0]
    log = sweep.get_run(runs.loc[5.0, "run_id"]).log_path.read_text()
    assert "RunStopped: early_terminate: stopped at band 2" in log


@pytest.mark.timeout(240)
def test_agent_dask_runs_a_program_sweep_on_each_worker(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import LocalCluster

    # Workers start in the project directory, where the config's relative program lives.
    monkeypatch.chdir(project)
    sweep_id, pid = detach(project, "sweep.yaml", "--workers", "0")
    try:
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            address = cluster.scheduler_address
            result = cli("agent", sweep_id, "--dask", address, "--count", "2", cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"2 Dask agents ran 4 runs of sweep {sweep_id}" in result.stdout
        sweep = nbsweep.load(sweep_id, store=str(project / ".nbsweep" / "nbsweep.db"))
        assert sweep.wait(timeout=60) == "finished"
    finally:
        end_process(pid)
    runs = sweep.runs
    assert sorted(runs["state"]) == ["finished"] * 4
    assert sorted(runs.groupby("agent").size()) == [2, 2]
    assert list(runs["summary/got"]) == list(runs["config/name"])


@pytest.mark.timeout(240)
def test_ctrl_c_in_an_agent_terminates_its_program(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    (tmp_path / "sweep.yaml").write_text(RANDOM)
    sweep_id, pid = detach(tmp_path, "sweep.yaml", "--workers", "0")
    try:
        agent = subprocess.Popen(
            [sys.executable, "-m", "nbsweep.cli", "agent", sweep_id],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=as_in_a_terminal,
        )
        try:
            sweep = nbsweep.load(sweep_id, store=str(tmp_path / ".nbsweep" / "nbsweep.db"))
            wait_for(lambda: 1 in set(sweep.runs["steps"]), "a run that logged")
            agent.send_signal(signal.SIGINT)
            out = agent.communicate(timeout=60)[0]
        finally:
            agent.kill()
        assert agent.returncode == 130, out
        assert "Traceback" not in out
        run_id = sweep.runs["run_id"].iloc[0]
        assert (tmp_path / f"term-{run_id}").exists()
        assert sweep.get_run(run_id).state == "killed"
    finally:
        cli("cancel", sweep_id, cwd=tmp_path)
        end_process(pid)


@pytest.mark.timeout(180)
def test_run_and_agent_with_an_importable_train_function(tmp_path: Path) -> None:
    (tmp_path / "trainmod.py").write_text(
        "import nbsweep\n"
        "def train(config):\n"
        "    nbsweep.log({'loss': config.lr})\n"
        "    return {'seen': config.lr}\n"
    )
    (tmp_path / "s.yaml").write_text(
        "method: grid\nmetric: {name: loss}\nparameters: {lr: {values: [0.1, 0.2, 0.3]}}\n"
    )
    sweep_id, pid = detach(tmp_path, "s.yaml", "--workers", "0", "--function", "trainmod:train")
    try:
        # The sweep remembers its importable function: an agent joins without naming it.
        result = cli("agent", sweep_id, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        sweep = nbsweep.load(sweep_id, store=str(tmp_path / ".nbsweep" / "nbsweep.db"))
        assert sweep.wait(timeout=60) == "finished"
    finally:
        end_process(pid)
    runs = sweep.runs
    assert sorted(runs["state"]) == ["finished"] * 3
    assert list(runs["summary/seen"]) == list(runs["config/lr"])
    # A sweep with neither a function nor a program says how to give one.
    assert_user_error(
        cli("run", "s.yaml", "--workers", "0", cwd=tmp_path), "--function MODULE:NAME"
    )
