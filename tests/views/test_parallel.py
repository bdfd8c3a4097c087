"""Parallel coordinates: axes over the search space, rank colours, exact brushing."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nbsweep import views


def test_axes_span_the_search_space_with_integer_and_log_ticks(make_snapshot):
    info = views.parallel_info(make_snapshot())
    dims = {d.name: d for d in info.dimensions}
    lr = dims["lr"]  # log_uniform_values 1e-4 .. 1e-1; runs used 1e-4 .. 1e-2
    assert lr.is_log and lr.range == pytest.approx((-4.0, -1.0))
    assert lr.tick_labels == ["1e-4", "1e-3", "0.01", "0.1"]
    depth = dims["model/depth"]  # int_uniform 1 .. 4; runs used 2, 3, 4
    assert depth.is_integer and depth.range == (1.0, 4.0)
    assert depth.ticks == [1.0, 2.0, 3.0, 4.0] and depth.tick_labels == ["1", "2", "3", "4"]
    assert dims["optimizer"].categories == ("adam", "sgd")
    assert dims["val_loss"].range == pytest.approx((0.2, 0.9))


def test_positions_map_back_to_values_exactly(make_snapshot):
    dims = {d.name: d for d in views.parallel_info(make_snapshot()).dimensions}
    assert dims["lr"].value_at(dims["lr"].position_of(0.00123)) == pytest.approx(0.00123)
    assert dims["optimizer"].value_at(1.2) == "sgd"
    assert dims["optimizer"].position_of("adam") == 0.0
    assert math.isnan(dims["lr"].position_of(-1.0))


def test_colours_are_quantile_ranks_and_the_best_run_is_named(make_snapshot):
    info = views.parallel_info(make_snapshot())
    assert info.run_ids == ["r1", "r2", "r4"]
    # val_loss 0.3, 0.2, 0.9 (minimize): r2 best (1), r1 middle, r4 worst (0).
    assert info.colour_ranks == pytest.approx([0.5, 1.0, 0.0])
    assert info.best_run_id == "r2" and info.best_index == 1
    assert info.colour_tick_labels[0] == "0.9" and info.colour_tick_labels[-1] == "0.2"


def test_brushing_selects_exactly_the_runs_inside_on_several_axes(make_snapshot):
    info = views.parallel_info(make_snapshot())
    assert views.runs_in_value_ranges(info, {"val_loss": [(0.2, 0.3)]}) == {"r1", "r2"}
    assert views.runs_in_value_ranges(info, {"val_loss": [(0.0, 0.2)]}) == {"r2"}
    assert views.runs_in_value_ranges(info, {"val_loss": [(0.21, 0.29)]}) == set()
    both = {"val_loss": [(0.0, 0.5)], "lr": [(1e-3, 1e-3)]}
    assert views.runs_in_value_ranges(info, both) == {"r1"}
    # Positions, as plotly's constraintrange gives them; a reversed drag is the same range.
    assert views.runs_in_ranges(info, {"lr": [(-1.5, -3.5)]}) == {"r1", "r2"}
    spans = {"lr": [(-4.5, -3.5), (-2.5, -1.5)]}
    assert views.runs_in_ranges(info, spans) == {"r2", "r4"}


def test_hidden_count_leaves_out_runs_without_a_line(make_snapshot):
    runs = make_snapshot().runs
    pending = {c: None for c in runs.columns} | {"run_id": "r5", "state": "pending"}
    snap = make_snapshot(runs=pd.concat([runs, pd.DataFrame([pending])], ignore_index=True))
    info = views.parallel_info(snap)
    kept = views.runs_in_value_ranges(info, {"val_loss": [(0.0, 0.25)]})
    table = views.runs_table_info(snap, only=kept)
    assert [r.run_id for r in table.rows] == ["r2"]
    # Three runs have lines, one is kept: two hidden; the failed and the pending run have none.
    assert table.hidden == 2 and table.not_plotted == 2
