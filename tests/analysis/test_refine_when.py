"""refine, importance and confirm on a conditional sweep (parameters with ``when``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import nbsweep
from nbsweep._confirm import confirm_config
from nbsweep.analysis import importance, refine
from tests.analysis import trainers

pytestmark = pytest.mark.timeout(120)

CONFIG = {
    "method": "random",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {
        "optimizer": {"values": ["adam", "sgd", "rmsprop"]},
        "momentum": {"min": 0.0, "max": 0.99, "when": {"optimizer": ["sgd", "rmsprop"]}},
        "beta": {"min": 0.5, "max": 0.999, "when": {"optimizer": "adam"}},
        "sgd_options": {
            "when": {"optimizer": "sgd"},
            "parameters": {
                "nesterov": {"values": [True, False]},
                "dampening": {"min": 0.0, "max": 1.0, "when": {"nesterov": True}},
            },
        },
        "layers": {"min": 1, "max": 3},
        "units_3": {"values": [32, 64], "when": {"layers": 3}},
    },
}


def _runs(configs: list[dict[str, Any]]) -> pd.DataFrame:
    """A runs frame as ``sweep.runs`` gives it: the i-th config scores loss i (best first),
    and an inactive parameter is an empty cell, as it is absent from the run's config."""
    rows = []
    for i, config in enumerate(configs):
        row: dict[str, Any] = {"run_id": f"r{i}", "state": "finished", "summary/loss": float(i)}
        row.update({f"config/{name}": value for name, value in config.items()})
        rows.append(row)
    return pd.DataFrame(rows)


ADAM = {"optimizer": "adam", "layers": 1}
SGD = {"optimizer": "sgd", "layers": 2, "sgd_options/nesterov": False}
# The worst half: rmsprop, three layers, nesterov on (what the best half never used).
WORST = [
    {"optimizer": "rmsprop", "layers": 3, "units_3": 32, "momentum": 0.01},
    {"optimizer": "rmsprop", "layers": 3, "units_3": 64, "momentum": 0.02},
    {
        "optimizer": "sgd",
        "layers": 3,
        "units_3": 64,
        "momentum": 0.03,
        "sgd_options/nesterov": True,
        "sgd_options/dampening": 0.5,
    },
    {"optimizer": "adam", "layers": 3, "units_3": 32, "beta": 0.51},
]


def test_refine_keeps_when_and_narrows_each_child_from_its_active_runs() -> None:
    best = [
        {**ADAM, "beta": 0.9},
        {**SGD, "momentum": 0.5},
        {**ADAM, "beta": 0.95},
        {**SGD, "momentum": 0.6},
    ]
    refined = refine(CONFIG, _runs(best + WORST), top=0.5, margin=0.0)
    assert nbsweep.validate(refined) == refined
    parameters = refined["parameters"]
    assert parameters["optimizer"]["values"] == ["adam", "sgd"]
    # rmsprop is gone from the parent, so from the child's condition too.
    momentum = parameters["momentum"]
    assert momentum["when"] == {"optimizer": ["sgd"]}
    assert (momentum["min"], momentum["max"]) == (0.5, 0.6)  # the sgd runs only
    beta = parameters["beta"]
    assert beta["when"] == {"optimizer": ["adam"]}
    assert (beta["min"], beta["max"]) == (0.9, 0.95)  # the adam runs only
    block = parameters["sgd_options"]
    assert block["when"] == {"optimizer": ["sgd"]}
    # nesterov was False in every top run where it was active: fixed, condition kept; the
    # dampening it switched on can never be active again, so it goes.
    assert block["parameters"]["nesterov"] == {"distribution": "constant", "value": False}
    assert set(block["parameters"]) == {"nesterov"}
    # layers narrowed to 1..2 (int bounds): units_3 (only when layers is 3) goes.
    assert (parameters["layers"]["min"], parameters["layers"]["max"]) == (1, 2)
    assert "units_3" not in parameters


def test_refine_drops_the_children_of_a_parent_fixed_to_another_value() -> None:
    best = [{**ADAM, "beta": 0.9}, {**ADAM, "beta": 0.95}, {**ADAM, "beta": 0.92}]
    refined = refine(CONFIG, _runs(best + WORST), top=0.4, margin=0.0)
    assert nbsweep.validate(refined) == refined
    parameters = refined["parameters"]
    assert parameters["optimizer"] == {"distribution": "constant", "value": "adam"}
    assert parameters["layers"] == {"distribution": "constant", "value": 1}
    assert set(parameters) == {"optimizer", "beta", "layers"}
    assert parameters["beta"]["when"] == {"optimizer": ["adam"]}


def test_a_child_fixed_by_refine_keeps_its_when() -> None:
    best = [
        {**ADAM, "beta": 0.9},
        {**SGD, "momentum": 0.5},
        {**ADAM, "beta": 0.9},
        {**SGD, "momentum": 0.5},
    ]
    refined = refine(CONFIG, _runs(best + WORST), top=0.5)
    assert nbsweep.validate(refined) == refined
    parameters = refined["parameters"]
    assert parameters["beta"] == {
        "distribution": "constant",
        "value": 0.9,
        "when": {"optimizer": ["adam"]},
    }
    assert parameters["momentum"] == {
        "distribution": "constant",
        "value": 0.5,
        "when": {"optimizer": ["sgd"]},
    }
    assert parameters["sgd_options"]["parameters"]["nesterov"]["value"] is False


def test_importance_learns_from_a_conditional_sweep() -> None:
    best = [
        {**ADAM, "beta": 0.9},
        {**SGD, "momentum": 0.5},
        {**ADAM, "beta": 0.95},
        {**SGD, "momentum": 0.6},
    ]
    table = importance(_runs(best + WORST), "loss", "minimize")
    assert table["importance"].sum() == pytest.approx(1.0)
    assert not table["importance"].isna().any()
    assert set(table["parameter"]) >= {"optimizer", "momentum", "beta", "units_3"}


def test_confirm_leaves_the_best_runs_inactive_parameters_absent() -> None:
    config = nbsweep.validate(CONFIG)
    best = {"optimizer": "adam", "beta": 0.9, "layers": 1}  # a run config: inactive ones absent
    confirmed = confirm_config(config, best, [0, 1])
    assert nbsweep.validate(confirmed) == confirmed
    parameters = confirmed["parameters"]
    assert set(parameters) == {"optimizer", "beta", "layers", "seed"}
    assert parameters["beta"]["value"] == 0.9


def test_refine_and_confirm_a_conditional_sweep(tmp_path: Path) -> None:
    config = {
        "method": "grid",
        "name": "branches",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {
            "optimizer": {"values": ["adam", "sgd"]},
            "momentum": {"values": [0.1, 0.5, 0.8, 0.9], "when": {"optimizer": "sgd"}},
        },
    }
    store = str(tmp_path / ".nbsweep" / "nbsweep.db")
    sweep = nbsweep.sweep(config, trainers.branches, workers=1, store=store)
    assert sweep.wait() == "finished" and len(sweep.runs) == 5

    refined = sweep.refine(top=0.4)  # adam, then sgd at 0.8
    assert refined["parameters"] == {
        "optimizer": {"distribution": "categorical", "values": ["adam", "sgd"]},
        "momentum": {"distribution": "constant", "value": 0.8, "when": {"optimizer": ["sgd"]}},
    }
    assert sweep.importance()["importance"].sum() == pytest.approx(1.0)

    result = sweep.confirm(seeds=2, workers=1)  # the best run is adam's: no momentum
    assert result.n == 2 and result.failed == 0 and result.mean == 0.0
    runs = result.sweep.runs
    assert runs["config/optimizer"].tolist() == ["adam"] * 2
    assert "config/momentum" not in runs or runs["config/momentum"].isna().all()
