"""warm_start: a bayes sweep that learns from an earlier sweep's runs, with real agents."""

from __future__ import annotations

from typing import Any

import pytest

import nbsweep
from nbsweep import SweepError, SweepNotFoundError
from nbsweep.controller import Controller
from nbsweep.search import make_searcher
from tests import trainfns

pytestmark = pytest.mark.timeout(120)


def space(low: float, high: float, method: str = "bayes", **more: Any) -> dict[str, Any]:
    """``trainfns.quadratic``: loss (x - 3)^2 + 1 after one epoch, best at x = 3."""
    return {
        "method": method,
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"min": low, "max": high}, "epochs": {"value": 1}},
        **more,
    }


# A grid, so that the earlier runs are the same on every test run (a random sweep's draws
# depend on how deep its controller queued them).
COARSE_X = [0.0, 0.5, 2.0, 2.5, 3.5, 4.0, 5.0, 7.0, 8.0, 9.5]


@pytest.fixture(scope="module")
def coarse(tmp_path_factory: pytest.TempPathFactory) -> nbsweep.Sweep:
    """A finished grid sweep of 10 runs over x in [0, 10] (the tests add sweeps beside it)."""
    store = str(tmp_path_factory.mktemp("warm") / ".nbsweep" / "nbsweep.db")
    config = space(0.0, 10.0, "grid")
    config["parameters"]["x"] = {"values": COARSE_X}
    sweep = nbsweep.sweep(config, trainfns.quadratic, 2, store)
    assert sweep.wait() == "finished"
    return sweep


def test_bayes_starts_from_the_earlier_runs_that_fit_its_space(coarse: nbsweep.Sweep) -> None:
    inside = 5  # x = 2, 2.5, 3.5, 4 and 5 lie in the new range [1, 6]

    config = space(1.0, 6.0, run_cap=2)
    with pytest.warns(UserWarning, match=r"outside the new space"):
        warm = nbsweep.sweep(config, trainfns.quadratic, 1, coarse.store, seed=5, warm_start=coarse)
    assert warm.wait() == "finished"
    cold = nbsweep.sweep(config, trainfns.quadratic, 1, coarse.store, seed=5)
    assert cold.wait() == "finished"

    # The earlier runs are not runs of the new sweep: two runs, run_cap counts only those.
    assert len(warm.runs) == 2 and warm.progress == (2, 2)
    assert set(warm.runs["run_id"]).isdisjoint(coarse.runs["run_id"])
    info = warm.warm_start
    assert info.sources == (coarse.id,) and info.used == inside
    assert info.ignored == {"with parameters.x outside the new space": 10 - inside}
    assert f"warm start: {inside} runs of sweep {coarse.id} used" in info.note
    assert info.note in warm.events()["message"].tolist()
    assert cold.warm_start is None
    # The first suggestion is the searcher's answer to the earlier runs (the cold sweep's, to
    # none): with what they showed, it lands between the runs around the optimum at once.
    searcher = make_searcher(nbsweep.validate(config), seed=5)
    first = warm.runs["config/x"].iloc[0]
    assert first == pytest.approx(searcher.suggest(list(info.records), 1)[0]["x"])
    assert cold.runs["config/x"].iloc[0] == pytest.approx(searcher.suggest([], 1)[0]["x"])
    assert 2.0 < first < 4.0
    assert [r.config["x"] for r in info.records] == [2.0, 2.5, 3.5, 4.0, 5.0]


def test_warm_start_is_kept_in_the_store_for_a_resumed_controller(
    coarse: nbsweep.Sweep,
) -> None:
    config = space(0.0, 10.0, run_cap=1)
    first = nbsweep.sweep(config, trainfns.quadratic, 1, coarse.store, warm_start=[coarse.id])
    assert first.wait() == "finished"
    reopened = nbsweep.load(first.id, store=coarse.store)
    assert reopened.warm_start.used == 10 and reopened.warm_start.ignored == {}
    # A controller built from the store alone (as resume does) feeds the same runs to bayes.
    controller = Controller(coarse.store, first.id)
    controller.tick()  # reads the sweep's runs (it is finished: nothing else happens)
    own = [*first.runs["run_id"]]
    assert [r.id for r in controller.records(warm=True)] == [*coarse.runs["run_id"], *own]
    assert [r.id for r in controller.records()] == own  # early termination sees only its own


def test_runs_that_lack_a_parameter_or_differ_in_a_constant_are_ignored(
    coarse: nbsweep.Sweep,
) -> None:
    config = space(0.0, 10.0, run_cap=1)
    config["parameters"]["epochs"] = {"value": 2}
    config["parameters"]["lr"] = {"min": 0.1, "max": 1.0}
    with pytest.warns(UserWarning, match="0 runs of sweep"):
        sweep = nbsweep.sweep(config, trainfns.quadratic, 1, coarse.store, warm_start=coarse)
    assert sweep.wait() == "finished"
    assert sweep.warm_start.used == 0
    # Parameters are checked in the space's order: epochs, then lr.
    assert sweep.warm_start.ignored == {"with parameters.epochs outside the new space": 10}


@pytest.mark.parametrize("method", ["random", "grid"])
def test_random_and_grid_refuse_warm_start(coarse: nbsweep.Sweep, method: str) -> None:
    config = {
        "method": method,
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": [1, 2]}},
    }
    before = len(nbsweep.list_sweeps(coarse.store))
    with pytest.raises(SweepError, match=f"warm_start: method '{method}' does not learn"):
        nbsweep.sweep(config, trainfns.quadratic, 1, coarse.store, warm_start=coarse)
    assert len(nbsweep.list_sweeps(coarse.store)) == before  # nothing half-created


def test_unknown_or_foreign_sources_are_named(coarse: nbsweep.Sweep, tmp_path: Any) -> None:
    config = space(0.0, 10.0, run_cap=1)
    with pytest.raises(SweepNotFoundError, match="warm_start: sweep 'nope' is not in store"):
        nbsweep.sweep(config, trainfns.quadratic, 1, coarse.store, warm_start="nope")
    other = str(tmp_path / "other" / "nbsweep.db")
    with pytest.raises(SweepError, match=f"warm_start: sweep {coarse.id} lives in store"):
        nbsweep.sweep(config, trainfns.quadratic, 1, other, warm_start=coarse)
    with pytest.raises(SweepError, match="not int"):
        nbsweep.sweep(config, trainfns.quadratic, 1, coarse.store, warm_start=7)
