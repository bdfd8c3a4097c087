"""Conditional parameters in the views: a parameter a run leaves out is missing, not a value."""

from __future__ import annotations

import math

import pandas as pd

import nbsweep
from nbsweep import views
from nbsweep.plot import draw_importance, draw_parallel
from tests.notebook.conftest import CONFIG, runs_frame


def conditional_snapshot(make_snapshot) -> views.Snapshot:
    parameters = {
        **CONFIG["parameters"],
        "momentum": {"min": 0.0, "max": 0.99, "when": {"optimizer": "sgd"}},
        "nesterov": {"values": [True, False], "when": {"optimizer": "sgd"}},
    }
    config = nbsweep.validate({**CONFIG, "parameters": parameters})
    runs = runs_frame()  # optimizer: adam, sgd, adam, sgd
    runs["config/momentum"] = [math.nan, 0.9, math.nan, 0.5]
    runs["config/nesterov"] = [None, True, None, False]
    runs["summary/val_loss"] = [0.30, 0.20, 0.25, 0.90]
    runs["state"] = "finished"
    return make_snapshot(config=config, runs=runs)


def test_inactive_parameters_have_no_point_on_their_axes(make_snapshot) -> None:
    info = views.parallel_info(conditional_snapshot(make_snapshot))
    dims = {d.name: d for d in info.dimensions}
    for name in ("momentum", "nesterov"):
        positions = dims[name].values
        assert math.isnan(positions[0]) and math.isnan(positions[2]), name
        assert not math.isnan(positions[1]) and not math.isnan(positions[3]), name
    assert dims["nesterov"].categories == ("True", "False")
    draw_parallel(info)


def test_importance_counts_conditional_parameters(make_snapshot) -> None:
    info = views.importance_info(conditional_snapshot(make_snapshot))
    assert {"momentum", "nesterov"} <= {row.parameter for row in info.rows}
    draw_importance(info)
    assert pd.notna(info.rows[0].importance)
