"""Metric values that are not numbers, or a metric that is never logged."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import nbsweep
from tests.faults import faulty
from tests.faults.conftest import Fault

pytestmark = pytest.mark.timeout(120)

KINDS = ["never", "nan", "inf", "text", "number"]


def test_odd_metric_values_and_a_metric_never_logged(
    tmp_path: Path, fault: Callable[..., Fault], bad_inputs: Callable[..., None]
) -> None:
    store = str(tmp_path / "store.db")
    config = {
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"kind": {"values": KINDS}},
        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
    }
    check = fault("metric NaN, inf, a string, or never logged", store)
    check.expect(3 * len(KINDS))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sweep = nbsweep.sweep(config, faulty.odd_metrics, workers=1, store=store)
        assert sweep.wait() == "finished"
    runs = sweep.runs.set_index("config/kind")
    assert list(runs["state"]) == ["finished"] * len(KINDS)
    first = runs.loc["never", "run_id"]
    expected = (
        f"metric.name 'loss' was never logged by run {first}, the first run to finish;"
        " it logged: acc, epoch. Fix metric.name in the config, or log 'loss' as a number"
        " from the train function"
    )
    assert [str(w.message) for w in caught if "metric.name" in str(w.message)] == [expected]
    assert list(sweep.events().query("kind == 'warning'")["message"]) == [expected]
    history = sweep.history().set_index("run_id")
    assert len(history) == 3 * len(KINDS)  # every row is kept as logged
    assert history.loc[runs.loc["nan", "run_id"], "loss"].map(math.isnan).all()
    assert (history.loc[runs.loc["inf", "run_id"], "loss"] == math.inf).all()
    assert (history.loc[runs.loc["text", "run_id"], "loss"] == "high").all()
    assert sweep.best_run is not None and sweep.best_run.config["kind"] == "number"
    bad_inputs("a metric.name no run logs", 1)
    check.check(
        "runs finish and keep every value as logged; search, hyperband and best_run count only"
        " finite numbers; after the first run a warning names the keys it logged",
        sweep.state,
    )


def test_log_keeps_what_it_accepts_and_refuses_the_rest_by_name(
    tmp_path: Path, fault: Callable[..., Fault], bad_inputs: Callable[..., None]
) -> None:
    store = str(tmp_path / "store.db")
    config = {"method": "grid", "metric": {"name": "loss"}, "parameters": {"x": {"values": [1]}}}
    check = fault("nbsweep.log from 4 threads, with refused values, steps and names", store)
    check.expect(102)
    sweep = nbsweep.sweep(config, faulty.odd_logs, workers=1, store=store)
    assert sweep.wait() == "finished"
    (run,) = sweep.runs.to_dict("records")
    assert run["state"] == "finished" and run["steps"] == 102
    assert run["summary/refused_by_name"] == run["summary/tried"] == 11
    history = sweep.history()
    steps = history["_step"].tolist()
    assert steps == [*range(100), 1000, 2**40] and all(type(s) is int for s in steps)
    assert set(history["run_id"]) == {run["run_id"]}  # no row under another run's id
    bad_inputs("values, steps and names nbsweep.log refuses", run["summary/tried"])
    check.check(
        "every row from the threads is kept once, steps 0-99 in order; each refused value,"
        " step and reserved name raises ValueError naming it, in the train function, and"
        " stores nothing; numpy and 2**40 steps come back as ints",
        sweep.state,
    )


def test_a_first_run_with_the_metric_gives_no_warning(tmp_path: Path) -> None:
    config = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"kind": {"values": ["number", "never"]}},
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sweep = nbsweep.sweep(config, faulty.odd_metrics, workers=1, store=str(tmp_path / "s.db"))
        assert sweep.wait() == "finished"
    assert not [w for w in caught if "metric.name" in str(w.message)]
    assert sweep.events().query("kind == 'warning'").empty


def test_bayes_searches_on_through_odd_values(tmp_path: Path) -> None:
    config = {
        "method": "bayes",
        "run_cap": 6,
        "seed": 0,
        "metric": {"name": "loss"},
        "parameters": {"kind": {"values": KINDS}, "x": {"min": 0.0, "max": 1.0}},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep = nbsweep.sweep(config, faulty.odd_metrics, workers=1, store=str(tmp_path / "s.db"))
        assert sweep.wait() == "finished"
    assert list(sweep.runs["state"]) == ["finished"] * 6
