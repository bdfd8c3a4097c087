"""The value policy at ``nbsweep.log``: what it accepts comes back from ``history()`` as it
went in; anything else, a bad ``step`` or a reserved name is refused at the call, naming it."""

from __future__ import annotations

import datetime
import decimal
import math
import re
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbsweep
from nbsweep import _train
from nbsweep.store import Store, encode_row, open_store
from tests.store import trainfns

CONFIG = {"method": "grid", "metric": {"name": "loss"}, "parameters": {"x": {"values": [1]}}}


@pytest.fixture
def store(store_url: str) -> Store:
    store = open_store(store_url)
    store.create_sweep("sw", "values", "grid", CONFIG, None, None, "running")
    return store


def _start_run(store: Store) -> _train.RunContext:
    """A claimed run of ``sw`` and its context, as an agent sets it up around train."""
    [run_id] = store.add_runs("sw", [{"x": 1}])
    claim = store.claim("sw", 0)
    assert claim is not None and claim.run_id == run_id
    return _train.RunContext(store, "sw", run_id, "loss", None)


@pytest.fixture
def run(store: Store) -> Iterator[_train.RunContext]:
    context = _start_run(store)
    _train.set_current_run(context)
    try:
        yield context
    finally:
        _train.set_current_run(None)


def _history(store: Store, run_id: str) -> list[tuple[int, dict[str, Any]]]:
    return [(r.step, r.data) for r in store.history("sw", run_id)]


# -- what log() accepts comes back as it went in ------------------------------------------


def test_numpy_and_torch_values_come_back_as_plain_python(store: Store, run: Any) -> None:
    nbsweep.log(
        {
            "f32": np.float32(0.1),
            "i64": np.int64(2**40),
            "zero_d": np.array(3.5),
            "flag": np.bool_(True),
            "t": torch.tensor(0.25),
            "ti": torch.tensor(7),
            "vec": np.array([1.0, 2.0]),
            "mat": torch.tensor([[1, 2], [3, 4]]),
            "nested": {"a": [1, None, "x", {"b": np.float64(2.5)}], "t": (1, 2)},
            "nan": float("nan"),
            "inf": -math.inf,
            "big": 2**70,
        }
    )
    [(step, row)] = _history(store, run.run_id)
    assert step == 0 and type(step) is int
    assert row["f32"] == float(np.float32(0.1)) and type(row["f32"]) is float
    assert row["i64"] == 2**40 and type(row["i64"]) is int
    assert row["zero_d"] == 3.5 and row["flag"] is True
    assert row["t"] == 0.25 and row["ti"] == 7 and type(row["ti"]) is int
    assert row["vec"] == [1.0, 2.0] and row["mat"] == [[1, 2], [3, 4]]
    assert row["nested"] == {"a": [1, None, "x", {"b": 2.5}], "t": [1, 2]}
    assert math.isnan(row["nan"]) and row["inf"] == -math.inf and row["big"] == 2**70


@pytest.mark.parametrize(
    ("value", "path", "kind"),
    [
        (decimal.Decimal("1.5"), "'m'", "decimal.Decimal"),
        ({"when": datetime.datetime(2024, 1, 1)}, "'m.when'", "datetime.datetime"),
        ([1, b"raw"], r"'m\[1\]'", "bytes"),
        ({1, 2}, "'m'", "set"),
        (object(), "'m'", "object"),
        (1 + 2j, "'m'", "complex"),
        ({"a": [np.datetime64("2024-01-01")]}, r"'m.a\[0\]'", "numpy.datetime64"),
        (torch.tensor([1 + 1j]), r"'m\[0\]'", "complex"),
    ],
)
def test_other_values_are_refused_at_the_call_naming_the_key(
    store: Store, run: Any, value: Any, path: str, kind: str
) -> None:
    with pytest.raises(ValueError, match=rf"^nbsweep.log: {path} is a {kind}; log numbers"):
        nbsweep.log({"m": value})
    assert _history(store, run.run_id) == []
    assert store.run(run.run_id).steps == 0


def test_keys_that_are_not_strings_and_circular_values_are_refused(store: Store, run: Any) -> None:
    with pytest.raises(ValueError, match=r"'m' has a key \(1, 2\) of type tuple; keys"):
        nbsweep.log({"m": {(1, 2): 1.0}})
    with pytest.raises(ValueError, match=r"^nbsweep.log: a key 3 of type int; keys"):
        nbsweep.log({3: 1.0})  # type: ignore[dict-item]
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match=r"'m\[1\]' contains itself"):
        nbsweep.log({"m": loop})
    shared = [1.0]
    nbsweep.log({"a": shared, "b": shared})  # the same list twice is not a loop
    assert _history(store, run.run_id) == [(0, {"a": [1.0], "b": [1.0]})]


def test_the_store_refuses_what_log_refuses(store: Store) -> None:
    with pytest.raises(ValueError, match="'when' is a datetime.date"):
        encode_row({"when": datetime.date(2024, 1, 1)})


# -- step -------------------------------------------------------------------------------


def test_a_numpy_step_is_stored_as_an_integer(store: Store, run: Any) -> None:
    nbsweep.log({"loss": 1.0}, step=np.int64(3))
    nbsweep.log({"loss": 0.5}, step=np.uint8(7))
    nbsweep.log({"loss": 0.25}, step=torch.tensor(9))
    steps = [step for step, _ in _history(store, run.run_id)]
    assert steps == [3, 7, 9] and all(type(s) is int for s in steps)


@pytest.mark.parametrize("step", ["5", 2.5, np.float64(3.0), 2**70, 2**63, -1, True, None])
def test_bad_steps_are_refused_naming_step(store: Store, run: Any, step: Any) -> None:
    if step is None:
        step = np.bool_(True)
    with pytest.raises(ValueError, match=r"^nbsweep.log: step must be a whole number"):
        nbsweep.log({"loss": 1.0}, step=step)
    assert _history(store, run.run_id) == []


def test_a_step_past_int32_is_kept(store: Store, run: Any) -> None:
    nbsweep.log({"loss": 1.0}, step=2**31 + 5)
    nbsweep.log({"loss": 1.0}, step=2**63 - 1)
    assert [s for s, _ in _history(store, run.run_id)] == [2**31 + 5, 2**63 - 1]
    assert store.run(run.run_id).steps == 2


# -- reserved names ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ["run_id", "_step", "_timestamp", "_runtime"])
def test_reserved_names_are_refused(store: Store, run: Any, key: str) -> None:
    with pytest.raises(ValueError, match=rf"^nbsweep.log: '{key}' is a name nbsweep keeps"):
        nbsweep.log({key: 1.0})
    nbsweep.log({"loss": 1.0, "nested": {key: 1}})  # only history()'s own columns clash
    assert _history(store, run.run_id) == [(0, {"loss": 1.0, "nested": {key: 1}})]


# -- threads ----------------------------------------------------------------------------


def test_log_from_several_threads_of_one_run(store: Store, run: Any) -> None:
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(200):
                nbsweep.log({"loss": float(i), "thread": k})
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    steps = [step for step, _ in _history(store, run.run_id)]
    assert sorted(steps) == list(range(1600))
    stored = store.run(run.run_id)
    assert stored.steps == 1600 and stored.metric_count == 1600


# -- properties -------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_keys = st.text(min_size=1).filter(lambda k: k not in {"run_id", "_step", "_timestamp", "_runtime"})
_rows = st.dictionaries(_keys, _values, max_size=5)
_steps = st.integers(min_value=0, max_value=2**63 - 1)
_numpy = st.sampled_from([np.float32, np.float64, np.int8, np.int64, np.uint32, np.bool_])


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and the types kept (1 is not 1.0, True is not 1)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


_PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_PROPERTY
@given(row=_rows, step=_steps)
def test_log_round_trips_every_accepted_value_and_step(
    store: Store, row: dict[str, Any], step: int
) -> None:
    context = _start_run(store)
    context.log(row, step)
    [(stored_step, data)] = _history(store, context.run_id)
    assert stored_step == step and type(stored_step) is int
    assert _same(data, row)


@_PROPERTY
@given(kind=_numpy, number=st.integers(min_value=0, max_value=100), step=_steps)
def test_numpy_values_and_steps_round_trip_as_python_numbers(
    store: Store, kind: type, number: int, step: int
) -> None:
    context = _start_run(store)
    value = kind(number)
    context.log({"v": value, "a": np.array([value])}, np.uint64(step))
    [(stored_step, data)] = _history(store, context.run_id)
    assert stored_step == step and type(stored_step) is int
    assert data == {"v": value.item(), "a": [value.item()]}
    assert type(data["v"]) is type(value.item())


_refused = st.sampled_from(
    [decimal.Decimal(1), datetime.time(1), b"x", bytearray(b"x"), frozenset(), object(), 1j]
)


@_PROPERTY
@given(row=_rows, key=_keys, bad=_refused, step=st.one_of(st.text(), st.floats(), st.integers()))
def test_log_refuses_what_it_does_not_accept_naming_the_key(
    store: Store, row: dict[str, Any], key: str, bad: Any, step: Any
) -> None:
    context = _start_run(store)
    with pytest.raises(ValueError, match=f"^nbsweep.log: {_quoted(key)}"):
        context.log({**row, key: {"deep": [bad]}}, 0)
    if isinstance(step, int) and 0 <= step < 2**63:
        return
    with pytest.raises(ValueError, match="^nbsweep.log: step must be"):
        context.log(row, step)
    assert _history(store, context.run_id) == []


def _quoted(key: str) -> str:
    return re.escape(repr(f"{key}.deep[0]"))


# -- the column, on every backend -------------------------------------------------------


def test_the_step_columns_are_64_bit(store: Store) -> None:
    columns = {
        (table, c["name"]): c["type"]
        for table in ("nbsweep_rows", "nbsweep_runs")
        for c in sa.inspect(store.engine).get_columns(table)
    }
    for where in (("nbsweep_rows", "step"), ("nbsweep_runs", "steps")):
        kind = columns[where]
        assert isinstance(kind, sa.BigInteger) or (
            store.is_sqlite and isinstance(kind, sa.Integer)
        ), where


# -- end to end -------------------------------------------------------------------------


def test_a_sweep_keeps_numpy_steps_and_values_and_fails_a_bad_summary(sqlite_store: str) -> None:
    config = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": ["good", "bad"]}},
    }
    sweep = nbsweep.sweep(config, trainfns.logs_every_kind, workers=1, store=sqlite_store)
    assert sweep.wait(timeout=120) == "finished"
    runs = sweep.runs.set_index("config/x")
    assert list(runs["state"]) == ["finished", "failed"]
    assert list(runs["steps"]) == [3, 3]
    error = runs.loc["bad", "error"]
    assert "the summary returned by train: 'when' is a datetime.datetime" in error
    assert runs.loc["good", "summary/best"] == 0.0
    history = sweep.history()
    assert list(history["_step"]) == [0, 10, 20, 0, 10, 20]
    assert (
        list(history["run_id"])
        == [runs.loc["good", "run_id"]] * 3 + [runs.loc["bad", "run_id"]] * 3
    )
    first = history.iloc[1]
    assert (first["loss"], first["acc"], first["count"]) == (0.5, 0.25, 1)
    assert first["grid"] == [[0, 1], [2, 3]] and history["flag"].tolist() == [True] * 6
    assert math.isnan(first["nan"]) and first["note"] == "ok"
    assert first["extra"] == {"lrs": [1e-3, None]}
