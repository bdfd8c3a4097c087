"""sweep.confirm: the best config again under several seeds, with real agents."""

from __future__ import annotations

import re
import statistics

import pytest

import nbsweep
from nbsweep import SweepError
from tests.analysis import trainers

pytestmark = pytest.mark.timeout(120)

CONFIG = {
    "method": "grid",
    "name": "coarse",
    "metric": {"name": "loss", "goal": "minimize", "target": 10.0},
    "early_terminate": {"type": "hyperband", "min_iter": 1},
    "parameters": {
        "x": {"values": [1, 3, 5]},
        "model": {"parameters": {"width": {"value": 8}}},
    },
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> nbsweep.Sweep:
    store = str(tmp_path_factory.mktemp("confirm") / ".nbsweep" / "nbsweep.db")
    # Without metric.target (the first run, x=1, would reach it and end the sweep).
    config = {**CONFIG, "metric": {"name": "loss", "goal": "minimize"}}
    sweep = nbsweep.sweep(config, trainers.noisy, workers=1, store=store)
    assert sweep.wait() == "finished"
    return sweep


def test_confirm_reruns_the_best_config_under_each_seed(finished: nbsweep.Sweep) -> None:
    result = finished.confirm(seeds=3, workers=2)
    values = [trainers.expected(3, seed) for seed in range(3)]
    assert result.seeds == (0, 1, 2)
    assert result.values == pytest.approx(values)  # each run seeded from its config.seed
    assert result.n == 3 and result.failed == 0
    assert result.mean == pytest.approx(statistics.fmean(values))
    assert result.std == pytest.approx(statistics.stdev(values))
    assert re.fullmatch(r"loss = 0\.0\d+ ± 0\.00\d+ \(n=3\)", repr(result)), repr(result)

    child = result.sweep
    assert child.name == "coarse-confirm" and child.method == "grid"
    runs = child.runs.sort_values("config/seed")
    assert runs["config/x"].tolist() == [3] * 3
    assert runs["config/model/width"].tolist() == [8] * 3
    assert runs["summary/seed_env"].tolist() == ["0", "1", "2"]
    assert runs["summary/hash_env"].tolist() == ["0", "1", "2"]
    assert len(finished.runs) == 3  # the confirmation runs are not runs of the sweep


def test_confirm_config_keeps_every_seed_running_to_the_end() -> None:
    from nbsweep._confirm import confirm_config

    config = nbsweep.validate(CONFIG)
    out = nbsweep.validate(confirm_config(config, {"x": 5, "model": {"width": 8}}, [4, 9]))
    assert "early_terminate" not in out and "target" not in out["metric"]
    assert out["parameters"]["seed"] == {"distribution": "categorical", "values": [4, 9]}
    assert out["parameters"]["x"] == {"distribution": "constant", "value": 5}


def test_confirm_with_a_seed_list_and_another_function(finished: nbsweep.Sweep) -> None:
    with pytest.raises(SweepError, match="no confirmation run of sweep .* logged a valid loss"):
        finished.confirm(seeds=[7, 8], train=trainers.unseeded, workers=1)
    result = finished.confirm(seeds=(11, 12), workers=1)
    assert result.seeds == (11, 12)
    assert result.values == pytest.approx([trainers.expected(3, 11), trainers.expected(3, 12)])


@pytest.mark.parametrize(
    ("seeds", "message"),
    [(1, "at least 2 seeds"), ([3, 3], "2 distinct"), ("five", "a count or a list")],
)
def test_confirm_names_bad_seeds(finished: nbsweep.Sweep, seeds: object, message: str) -> None:
    before = len(nbsweep.list_sweeps(finished.store))
    with pytest.raises(SweepError, match=message):
        finished.confirm(seeds=seeds)  # type: ignore[arg-type]
    assert len(nbsweep.list_sweeps(finished.store)) == before
