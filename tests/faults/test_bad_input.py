"""The bad-input catalogue: every mistake a user can make is refused with what to change.

Each is tried through the call a user makes (``nbsweep.sweep``, ``load``, ``agent``,
``resume``), and none may leave a half-written sweep behind. The count of inputs tried goes
to docs/reliability.md. Elsewhere: the magics' short messages (tests/notebook/test_magic.py),
the CLI's exit codes (tests/cli/test_cli.py), a metric never logged
(test_fault_metrics.py).
"""

from __future__ import annotations

import socket
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import nbsweep
from nbsweep import ConfigError, PlacementError, StoreError, SweepError
from nbsweep.agents import FakeNVML
from tests.config.test_bounds import laughs
from tests.config.test_config import BAD, DID_YOU_MEAN
from tests.faults import faulty

pytestmark = pytest.mark.timeout(120)

GRID = {"method": "grid", "parameters": {"x": {"values": [1, 2]}}}

YAML = [
    ("method: grid\nparameters: {x: {values: [1]}\n", "YAML: line 3, column 1"),
    ("method: grid\nmethod: random\nparameters: {x: {values: [1]}}\n", "duplicate key 'method'"),
    ("method: grid\nparameters: !!python/object/apply:os.system ['true']\n", "Python object"),
    ("method: grid\nparameters:\n  x: {values: [1], distribution: gaussian}\n", "gaussian"),
]
# Valid-looking input that once exhausted memory or reached train as repr strings (issue 13):
# each is a ConfigError naming the key, before anything is listed or stored.
BOUNDS = [
    (laughs(7), "expands to more than 1,000,000 values"),  # billion laughs, 10**7 here
    (
        "method: grid\nparameters:\n  x: {min: 0, max: 1000000000000}\n",
        "parameters.x: grid search would list 1,000,000,000,001 values",
    ),
    (
        "method: grid\nparameters:\n  lr: {distribution: q_uniform, min: 0, max: 1, q: 1e-12}\n",
        "parameters.lr: grid search would list 1,000,000,000,000 values",
    ),
    ("method: grid\nparameters:\n  x: {value: 2024-01-01}\n", "parameters.x.value: a date"),
    ("method: grid\nparameters:\n  x: {value: !!binary aGVsbG8=}\n", "x.value: a bytes"),
]


def test_config_errors_name_the_key_path(tmp_path: Path, bad_inputs: Callable[..., None]) -> None:
    store = tmp_path / "store.db"
    cases = [(config, expected) for config, expected in BAD]
    cases += [(config, f"{path}") for config, path, _ in DID_YOU_MEAN]
    cases += YAML + BOUNDS
    for config, expected in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecations W&B also warns about
            with pytest.raises(ConfigError) as info:
                nbsweep.sweep(config, faulty.noop, workers=1, store=str(store))
        assert expected in str(info.value), (config, str(info.value))
    assert not store.exists()  # refused before the store is even opened
    bad_inputs(
        "sweep configs (tests/config/test_config.py BAD and DID_YOU_MEAN, YAML; a YAML alias"
        " bomb, grids of 10^12 points, YAML dates and !!binary)",
        len(cases),
    )


def test_an_unshippable_train_function_names_the_global(
    tmp_path: Path, bad_inputs: Callable[..., None]
) -> None:
    store = str(tmp_path / "store.db")
    connection, database = socket.socket(), sqlite3.connect(":memory:")
    namespace: dict[str, Any] = {"__name__": "__main__", "connection": connection}
    exec(
        "import nbsweep\n"
        "def train(config):\n"
        "    connection.send(b'x')\n"
        "def make(database):\n"
        "    def train(config):\n"
        "        database.execute('select 1')\n"
        "    return train\n",
        namespace,
    )
    cases = [
        (namespace["train"], r"global 'connection' \(socket\) cannot be pickled"),
        (namespace["make"](database), r"closure variable 'database' \(Connection\) cannot be"),
    ]
    try:
        for train, expected in cases:
            with pytest.raises(SweepError, match=expected) as info:
                nbsweep.sweep(GRID, train, workers=1, store=store)
            assert "move the function to an importable module" in str(info.value)
    finally:
        connection.close()
        database.close()
    assert nbsweep.list_sweeps(store).empty
    bad_inputs("train functions that cannot be shipped", len(cases))


def test_a_train_function_that_cannot_take_the_config(
    tmp_path: Path, bad_inputs: Callable[..., None]
) -> None:
    store = str(tmp_path / "store.db")

    def no_config() -> None: ...

    def two(config: Any, model: Any) -> None: ...

    def keyword_only(*, config: Any) -> None: ...

    cases: list[tuple[Any, str]] = [
        (no_config, "train function no_config cannot be called with the run config"),
        (two, r"missing a required argument: 'model'\); define it as def two\(config\)"),
        (keyword_only, r"define it as def keyword_only\(config\)"),
        (3, "train must be a function, not int"),
        (None, "no train function and no 'program' key in the config"),
    ]
    for train, expected in cases:
        with pytest.raises(SweepError, match=expected):
            nbsweep.sweep(GRID, train, workers=1, store=store)
    assert nbsweep.list_sweeps(store).empty
    bad_inputs("train functions of the wrong shape", len(cases))


def test_stores_that_cannot_be_opened(tmp_path: Path, bad_inputs: Callable[..., None]) -> None:
    (tmp_path / "notes.db").write_text("not a database\n")
    cases = [
        ("postgresql+psycopg://postgres@127.0.0.1:1/test", "Connection refused"),
        ("nosuchdb://host/db", "Pass a file path (SQLite) or a SQLAlchemy URL"),
        ("mysql://user@host/db", "whose driver is installed"),
        ("sqlite:///:memory:", "cannot be shared with agent processes; pass a file path"),
        (str(tmp_path), "Pass another store="),
        (str(tmp_path / "notes.db"), "file is not a database\nPass another store="),
        ("/proc/no/such/dir/store.db", "pass a path in a directory you can write"),
        ("not a url://", "is not a SQLAlchemy URL or a path"),
    ]
    for store, expected in cases:
        with pytest.raises(StoreError) as info:
            nbsweep.sweep(GRID, faulty.noop, workers=1, store=store)
        assert expected in str(info.value), (store, str(info.value))
    assert (tmp_path / "notes.db").read_text() == "not a database\n"
    bad_inputs("store URLs and paths that cannot be opened", len(cases))


def test_unknown_sweep_ids(tmp_path: Path, bad_inputs: Callable[..., None]) -> None:
    store = str(tmp_path / "store.db")
    sweep = nbsweep.sweep(GRID, faulty.noop, workers=1, store=store)
    assert sweep.wait() == "finished"
    latest = rf"\(latest sweeps: {sweep.id}\)"
    calls: list[tuple[Callable[[], Any], type[Exception], str]] = [
        (lambda: nbsweep.load("nosuch", store=store), SweepError, f"'nosuch' is not in.*{latest}"),
        (lambda: nbsweep.load("nosuch", store=store).resume(), SweepError, "'nosuch' is not"),
        (lambda: nbsweep.agent("nosuch", faulty.noop, store=store), SweepError, "'nosuch' is not"),
        (
            lambda: nbsweep.load(sweep.id, store=str(tmp_path / "elsewhere.db")),
            StoreError,
            f"sweep '{sweep.id}': store .*elsewhere.db does not exist: pass the store= \\(or"
            r" \$NBSWEEP_STORE\) the sweep was started with",
        ),
        (lambda: sweep.resume(), SweepError, "is finished: nothing to resume .*retry_failed"),
        (lambda: sweep.get_run("nosuch"), SweepError, f"sweep {sweep.id} has no run 'nosuch'"),
        (lambda: nbsweep.agent(sweep.id, count=0, store=store), SweepError, "count=0 must be"),
        (lambda: nbsweep.log({"loss": 1.0}), SweepError, "outside a sweep run"),
    ]  # fmt: skip
    for call, error, expected in calls:
        with pytest.raises(error, match=expected):
            call()
    assert not (tmp_path / "elsewhere.db").exists()
    assert len(nbsweep.list_sweeps(store)) == 1
    bad_inputs("sweep ids, resumes and calls out of place", len(calls))


def test_workers_that_are_not_a_count(tmp_path: Path, bad_inputs: Callable[..., None]) -> None:
    store = str(tmp_path / "store.db")
    cases = [-1, 1.5, "2", True]
    for workers in cases:
        with pytest.raises(PlacementError, match=f"workers={workers!r} must be a count of agents"):
            nbsweep.sweep(GRID, faulty.noop, workers=workers, store=store)  # type: ignore[arg-type]
    assert not Path(store).exists()
    with pytest.warns(UserWarning, match=r"workers=0: no agent runs sweep \w+ until one is"):
        sweep = nbsweep.sweep(GRID, faulty.noop, workers=0, store=store)
    assert nbsweep.agent(sweep.id, store=store) == 2  # what the warning says to do
    assert sweep.wait() == "finished"
    bad_inputs("workers values", len(cases) + 1)


def test_gpus_that_do_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_inputs: Callable[..., None]
) -> None:
    store = str(tmp_path / "store.db")
    nvml = FakeNVML(2)
    cases = [
        ("7", 1, "CUDA_VISIBLE_DEVICES='7' names GPU '7', which NVML does not see"),
        ("GPU-nope", 1, "names GPU 'GPU-nope'.*fix CUDA_VISIBLE_DEVICES"),
        ("0,1", 3, "gpus_per_run=3 but only 2 GPU"),
        ("0,1", -1, "gpus_per_run=-1 must be a whole number of GPUs"),
    ]
    for visible, per_run, expected in cases:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        with pytest.raises(SweepError, match=expected):
            nbsweep.sweep(GRID, faulty.noop, store=store, gpus_per_run=per_run, nvml=nvml)
    assert not Path(store).exists()
    bad_inputs("GPU ids and counts", len(cases))
