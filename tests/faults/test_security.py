"""What must never get in: shell commands through parameters, objects through YAML, code in the
store, other users into the files; and fuzzing of the config path.

Also elsewhere: argv building against every macro (tests/command/test_command.py), YAML tags at
the loader (tests/config/test_yaml.py), hypothesis fuzzing of ``validate``
(tests/config/test_config_fuzz.py), and ``resume`` asking for a notebook's train function
again (test_fault_controller.py::test_controller_sigkill_then_resume).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa

import nbsweep
from nbsweep import ConfigError
from nbsweep.store import _schema as schema
from nbsweep.store import resolve_url
from tests.faults import faulty
from tests.faults.conftest import REPO

pytestmark = pytest.mark.timeout(120)

HOSTILE = ["; rm -rf ~", "$(touch PWNED)", "`touch PWNED`", "a && touch PWNED", "x\ntouch PWNED"]
ECHO = """\
import json, sys
import nbsweep
nbsweep.log({"argv": json.dumps(sys.argv[1:])})
"""


def test_parameter_values_reach_a_program_as_literal_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "precious").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))  # were it a shell, `rm -rf ~` would empty this
    monkeypatch.chdir(tmp_path)
    (tmp_path / "echo.py").write_text(ECHO)
    config = {
        "method": "grid",
        "program": "echo.py",
        "command": ["${env}", sys.executable, "${program}", "${args_no_equals}"],
        "parameters": {f"p{i}": {"value": value} for i, value in enumerate(HOSTILE)},
    }
    sweep = nbsweep.sweep(config, workers=1, store=str(tmp_path / "store.db"))
    assert sweep.wait() == "finished"
    (run,) = sweep.runs.to_dict("records")
    assert run["state"] == "finished"
    argv = json.loads(run["summary/argv"])
    assert argv == [part for i, value in enumerate(HOSTILE) for part in (f"--p{i}", value)]
    assert (home / "precious").is_dir()
    assert not list(tmp_path.rglob("PWNED"))


def test_yaml_never_builds_python_objects(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    tags = [
        "!!python/object/apply:os.system",
        "!!python/object/new:os.system",
        "!!python/name:os.system",
        "!!python/module:os",
    ]
    for tag in tags:
        path = tmp_path / "sweep.yaml"
        path.write_text(
            "method: grid\nparameters:\n"
            f"  x: {{values: [1]}}\n  y: {{value: {tag} ['touch {marker}']}}\n"
        )
        for config in (path, path.read_text()):
            with pytest.raises(ConfigError, match="Python object tags are never run"):
                nbsweep.sweep(config, store=str(tmp_path / "store.db"))
    assert not marker.exists()
    assert not (tmp_path / "store.db").exists()


PICKLE_SIGNS = [b"dill._dill", b"_create_function", b"\x80\x04\x95", b"\x80\x05\x95", b"gASV"]


def test_the_store_holds_no_pickled_code(tmp_path: Path) -> None:
    store = tmp_path / "store" / "nbsweep.db"
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(  # a notebook's function: it travels by value, pickled with dill
        "import nbsweep\n"
        "SECRET_SAUCE = 41\n"
        "def train(config):\n"
        "    print('training', flush=True)\n"
        "    nbsweep.log({'loss': config.x + SECRET_SAUCE})\n",
        namespace,
    )
    config = {"method": "grid", "metric": {"name": "loss"}, "parameters": {"x": {"values": [1]}}}
    sweep = nbsweep.sweep(config, namespace["train"], workers=1, store=str(store))
    assert sweep.wait() == "finished" and sweep.best_run is not None
    assert not [c for t in schema.metadata.tables.values() for c in t.columns if _binary(c)]
    engine = sa.create_engine(resolve_url(str(store)))
    with engine.connect() as conn:
        for table in schema.metadata.tables.values():
            for row in conn.execute(sa.select(table)):
                for value in row:
                    text = value.encode() if isinstance(value, str) else value
                    assert not isinstance(text, (bytes, memoryview)) or not any(
                        sign in bytes(text) for sign in PICKLE_SIGNS
                    ), (table.name, value)
    engine.dispose()
    for path in store.parent.glob("nbsweep.db*"):  # the raw file, its journal and index
        raw = path.read_bytes()
        assert not any(sign in raw for sign in PICKLE_SIGNS), path
    # The function lives in one private file next to the store, read by the agents only.
    (pickled,) = store.parent.glob("sweeps/*/train.pkl")
    assert b"SECRET_SAUCE" in pickled.read_bytes()
    assert stat.S_IMODE(pickled.stat().st_mode) == 0o600


def _binary(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, (sa.LargeBinary, sa.PickleType))


def test_store_files_and_run_logs_are_private(tmp_path: Path) -> None:
    store = tmp_path / "store" / "nbsweep.db"
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(
        "import nbsweep\n"
        "def train(config):\n"
        "    print('a log line')\n"
        "    nbsweep.log({'loss': 1.0})\n"
        "    if config.x == 2:\n"
        "        raise ValueError('a failed run has a log too')\n",
        namespace,
    )
    config = {"method": "grid", "parameters": {"x": {"values": [1, 2]}}}
    sweep = nbsweep.sweep(config, namespace["train"], workers=1, store=str(store))
    assert sweep.wait() == "finished"
    assert all(sweep.get_run(r).log_path.exists() for r in sweep.runs["run_id"])
    paths = [store.parent, *store.parent.rglob("*")]
    kinds = {"logs", "sweeps", "nbsweep.db", "train.pkl"}
    assert kinds <= {p.name for p in paths}
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_fuzzing_the_yaml_path_lets_only_config_errors_out(
    tmp_path: Path, bad_inputs: Callable[..., None]
) -> None:
    corpus = tmp_path / "corpus"  # libFuzzer adds what it finds: a copy of the seeds
    shutil.copytree(REPO / "tests" / "data" / "seed_configs", corpus)
    runs = 2000
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults.fuzz_config", str(corpus), f"-runs={runs}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # libFuzzer may run a few inputs past -runs ("Done 2002 runs"): at least that many ran.
    done_runs = re.search(r"Done (\d+) runs", done.stderr)
    assert done_runs and int(done_runs[1]) >= runs, done.stderr[-1000:]
    bad_inputs("fuzzed YAML texts (atheris, coverage-guided)", runs)


PASSWORD = "s3cret-pw"


def test_no_store_password_in_any_argv_log_or_row(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a PostgreSQL store keeps its logs
    url = pg_url.replace("postgres@", f"postgres:{PASSWORD}@")  # trust auth: any password
    (tmp_path / "gate").mkdir()
    config = {
        "method": "grid",
        "parameters": {
            "x": {"values": [1, 2]},
            "epochs": {"value": 4},
            "gate": {"value": str(tmp_path / "gate")},
        },
    }
    sweep = nbsweep.sweep(config, faulty.held, workers=2, store=url)
    deadline = time.monotonic() + 60
    while (sweep.runs["steps"] >= 3).sum() < 2:  # both agents are mid-run
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pids = [p for p in sweep.agents["pid"] if p]
    assert len(pids) == 2
    for process in psutil.process_iter(["cmdline"]):  # what any local user can read
        assert PASSWORD not in " ".join(process.info["cmdline"] or ()), process.info
    (tmp_path / "gate" / "go").touch()
    assert sweep.wait(timeout=90) == "finished"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        for table in schema.metadata.tables.values():
            for row in conn.execute(sa.select(table)):
                assert PASSWORD not in repr(tuple(row)), (table.name, row)
    engine.dispose()


def test_every_file_and_directory_is_private_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "deep" / "runs"))  # made by nbsweep too
    (tmp_path / "prog.py").write_text("import nbsweep\nnbsweep.log({'loss': 1.0})\n")
    config = {
        "method": "grid",
        "program": "prog.py",
        "command": ["${env}", "${interpreter}", "${program}", "${args_json_file}"],
        "parameters": {"x": {"values": [1, 2]}},
    }
    before = set(tmp_path.rglob("*"))
    umask = os.umask(0)  # the agents inherit it
    try:
        sweep = nbsweep.sweep(config, workers=1, store=str(tmp_path / "a" / "b" / "store.db"))
        assert sweep.wait(timeout=90) == "finished"
        assert list(sweep.runs["state"]) == ["finished"] * 2
    finally:
        os.umask(umask)
    made = set(tmp_path.rglob("*")) - before
    names = {p.name for p in made}
    assert {"a", "b", "store.db", "logs", "deep", "runs", "wandb"} <= names, names
    for path in made:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


STALE = """
import sys
sys.path.insert(0, sys.argv[1])
import nbsweep
nbsweep.log({"loss": 1.0})
"""


def test_stale_environment_naming_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / ".nbsweep" / "nbsweep.db"
    env = {
        **os.environ,
        "NBSWEEP_STORE": str(missing),
        "NBSWEEP_SWEEP_ID": "abc",
        "NBSWEEP_RUN_ID": "def",
    }
    commands = {
        "a program's nbsweep.log": [sys.executable, "-c", STALE, str(REPO)],
        "an agent process": [
            *(sys.executable, "-m", "nbsweep.agents", "--sweep", "abc", "--agent", "0"),
            *("--train", str(tmp_path / "train.pkl")),
        ],
        "nbsweep agent": [sys.executable, "-m", "nbsweep.cli", "agent", "abc"],
        "nbsweep show": [sys.executable, "-m", "nbsweep.cli", "show", "abc"],
        "nbsweep ls": [sys.executable, "-m", "nbsweep.cli", "ls"],
    }
    # All at once (each is a Python start-up, most of the time): none may create anything.
    started = {
        what: subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for what, argv in commands.items()
    }
    try:
        ended = {what: (p.communicate(timeout=60), p.returncode) for what, p in started.items()}
    finally:
        for process in started.values():
            process.kill()
    for what, ((out, err), code) in ended.items():
        if what == "nbsweep ls":  # lists what is there: nothing
            assert (code, out) == (0, "no sweeps in this store\n"), err
        else:
            assert code != 0, what
            assert f"store {missing} does not exist" in err, (what, err[-2000:])
    assert list(tmp_path.iterdir()) == []  # nothing created, anywhere
