"""refine and importance on a finished sweep: what a user feeds into the next %%sweep."""

from __future__ import annotations

import pytest

import nbsweep
from nbsweep._warm_start import _project
from tests.analysis import trainers

pytestmark = pytest.mark.timeout(120)

CONFIG = {
    "method": "random",
    "run_cap": 20,
    "seed": 2,
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0},
        "depth": {"min": 1, "max": 8},
        "opt": {"values": ["adam", "sgd", "rmsprop"]},
        "epochs": {"value": 1},
    },
}


@pytest.fixture(scope="module")
def coarse(tmp_path_factory: pytest.TempPathFactory) -> nbsweep.Sweep:
    store = str(tmp_path_factory.mktemp("refine") / ".nbsweep" / "nbsweep.db")
    sweep = nbsweep.sweep(CONFIG, trainers.bowl, workers=2, store=store)
    assert sweep.wait() == "finished"
    return sweep


def test_refined_config_validates_and_holds_the_top_runs(coarse: nbsweep.Sweep) -> None:
    refined = coarse.refine(top=0.2)
    assert nbsweep.validate(refined) == refined
    runs = coarse.runs.sort_values("summary/loss")
    top = runs.head(4)  # 20% of 20 finished runs
    space = refined.space
    for run_id in top["run_id"]:
        config = coarse.get_run(run_id).config
        assert not isinstance(_project(space, config), str), (run_id, config, refined)
    lr = refined["parameters"]["lr"]
    assert lr["distribution"] == "log_uniform_values"
    assert lr["max"] / lr["min"] < 1e5  # narrower than the coarse 1e-5..1
    # The refined config runs as it is (what %%sweep would do with it).
    fine = nbsweep.sweep({**refined, "run_cap": 2}, trainers.bowl, workers=1, store=coarse.store)
    assert fine.wait() == "finished" and set(fine.runs["state"]) == {"finished"}


def test_importance_is_a_frame_of_forest_importance_and_correlation(
    coarse: nbsweep.Sweep,
) -> None:
    table = coarse.importance()
    assert list(table.columns) == ["parameter", "importance", "correlation"]
    assert set(table["parameter"]) == {"lr", "depth", "opt", "epochs"}
    assert table["importance"].sum() == pytest.approx(1.0)
    by = table.set_index("parameter")
    assert by.at["lr", "importance"] == table["importance"].max()  # lr dominates the bowl
    assert by.at["epochs", "importance"] == 0.0  # a constant explains nothing
    assert 0.0 <= by.at["opt", "correlation"] <= 1.0  # categorical: unsigned ratio
