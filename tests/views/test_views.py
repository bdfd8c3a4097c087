"""View info computed from hand-made sweep DataFrames: what every renderer draws."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from nbsweep import plot, views
from nbsweep.stopping import Band
from nbsweep.widgets import _html


def test_parameters_are_flattened_with_log_and_categorical_axes_and_no_constants(make_snapshot):
    params = {p.name: p for p in views.parameters_of(make_snapshot().config)}
    assert list(params) == ["lr", "optimizer", "model/depth"]
    assert params["lr"].is_log and not params["lr"].is_categorical
    assert params["optimizer"].is_categorical and params["optimizer"].values == ("adam", "sgd")
    assert not params["model/depth"].is_log


def test_header_reports_progress_elapsed_and_best_run(make_snapshot):
    info = views.header_info(make_snapshot())
    assert (info.done, info.total) == (4, 4)
    assert info.progress_text == "4 / 4 runs"
    assert info.best_run_id == "r2" and info.best_value == pytest.approx(0.20)
    assert info.best_config["lr"] == 0.01 and info.best_config["model/depth"] == 3
    # A finished sweep's clock stops at its last run's end, not at the time of the snapshot.
    assert info.elapsed_s == pytest.approx(90.0)
    assert info.eta_s is None
    assert info.counts == {"finished": 2, "failed": 1, "stopped": 1}


def test_header_best_follows_maximize_and_eta_is_linear_while_running(make_snapshot):
    config = make_snapshot().config.replace(metric={"name": "val_loss", "goal": "maximize"})
    snap = make_snapshot(config=config, state="running", progress=(2, 8))
    info = views.header_info(snap)
    assert info.best_run_id == "r4"
    assert info.elapsed_s == pytest.approx(300.0)
    assert info.eta_s == pytest.approx(300.0 / 2 * 6)


def test_header_without_metric_has_no_best(make_snapshot):
    config = make_snapshot().config.replace(metric=None, early_terminate=None)
    info = views.header_info(make_snapshot(config=config, progress=(4, None)))
    assert info.best_value is None and info.metric is None
    assert info.progress_text == "4 runs"


def test_runs_table_sorts_best_first_with_missing_values_last(make_snapshot):
    info = views.runs_table_info(make_snapshot())
    assert [r.run_id for r in info.rows] == ["r2", "r1", "r4", "r3"]
    assert info.parameters == ["lr", "optimizer", "model/depth"]
    failed = info.rows[-1]
    assert failed.state == "failed" and "lr too large" in failed.error
    assert failed.colour == views.STATE_COLOURS["failed"]


def test_runs_table_sorts_by_parameter_and_reverses_and_filters(make_snapshot):
    snap = make_snapshot()
    by_lr = views.runs_table_info(snap, sort_by="lr")
    assert [r.params["lr"] for r in by_lr.rows] == [0.1, 0.01, 0.001, 0.0001]
    ascending = views.runs_table_info(snap, sort_by="lr", ascending=True)
    assert [r.params["lr"] for r in ascending.rows] == [0.0001, 0.001, 0.01, 0.1]
    newest = views.runs_table_info(snap, sort_by="created")
    assert [r.run_id for r in newest.rows] == ["r4", "r3", "r2", "r1"]
    only = views.runs_table_info(snap, only={"r1", "r3"})
    assert [r.run_id for r in only.rows] == ["r1", "r3"] and only.hidden == 2
    with pytest.raises(ValueError, match="cannot sort by 'nope'"):
        views.runs_table_info(snap, sort_by="nope")


def test_curves_count_iterations_from_one_and_default_to_the_metric(make_snapshot):
    info = views.curves_info(make_snapshot())
    assert info.key == "val_loss" and info.keys == ["val_loss", "acc"]
    curves = {c.run_id: c for c in info.curves}
    assert set(curves) == {"r1", "r2", "r4"}
    assert curves["r4"].x == [1.0, 2.0] and curves["r4"].state == "stopped"
    acc = views.curves_info(make_snapshot(), key="acc")
    assert acc.curves[0].y[0] == pytest.approx(0.1)


def test_bands_count_iterations_as_valid_metric_values(make_snapshot):
    history = make_snapshot().history.copy()
    # A NaN row is not an iteration (W&B counts valid values only).
    history.loc[len(history)] = {"run_id": "r1", "_step": 10, "val_loss": math.nan, "acc": 0.5}
    bands = [Band(iteration=2, threshold=0.75, reached=3, stopped=1, continued=2)]
    info = views.bands_info(make_snapshot(history=history, bands=bands))
    assert info.enabled and info.bands == bands
    curves = {c.run_id: c for c in info.curves}
    assert curves["r1"].x == [1.0, 2.0, 3.0, 4.0]
    table = _html.bands_table_html(info)
    assert "0.75" in table and "<td>2</td><td>0.75</td><td>3</td><td>1</td><td>2</td>" in table


def test_parallel_coordinates_place_log_and_categorical_axes(make_snapshot):
    info = views.parallel_info(make_snapshot())
    # The failed run has no metric, so it has no line.
    assert info.run_ids == ["r1", "r2", "r4"]
    dims = {d.name: d for d in info.dimensions}
    assert list(dims) == ["lr", "optimizer", "model/depth", "val_loss"]
    assert dims["lr"].is_log
    assert dims["lr"].values == pytest.approx([-3.0, -2.0, -4.0])
    assert dims["lr"].tick_labels == ["1e-4", "1e-3", "0.01", "0.1"]  # the search space
    assert dims["optimizer"].is_categorical
    assert dims["optimizer"].tick_labels == ["adam", "sgd"]
    assert dims["optimizer"].values == [0.0, 1.0, 1.0]
    assert info.colour_values == pytest.approx([0.3, 0.2, 0.9])


def test_brushing_ranges_select_runs_on_every_axis(make_snapshot):
    info = views.parallel_info(make_snapshot())
    assert views.runs_in_ranges(info, {"lr": [(-3.5, -1.5)]}) == {"r1", "r2"}
    assert views.runs_in_ranges(info, {"lr": [(-3.5, -1.5)], "optimizer": [(0.5, 1.5)]}) == {"r2"}
    two_spans = {"lr": [(-4.5, -3.5), (-2.5, -1.5)]}
    assert views.runs_in_ranges(info, two_spans) == {"r2", "r4"}


def test_importance_waits_for_enough_runs(make_snapshot):
    snap = make_snapshot(runs=make_snapshot().runs.iloc[:2])
    info = views.importance_info(snap)
    assert info.rows == [] and "needs 3 runs with val_loss (has 2)" in info.note
    config = snap.config.replace(metric=None, early_terminate=None)
    assert views.importance_info(make_snapshot(config=config)).note.startswith("the sweep has no")


def test_format_helpers():
    assert views.format_duration(3725) == "1h02m"
    assert views.format_duration(65) == "1m05s"
    assert views.format_duration(None) == "—"
    assert views.format_value(0.000123456) == "0.0001235"
    assert views.format_value(None) == "—"
    naive = pd.Timestamp("2026-01-01 00:00:00").to_pydatetime()
    assert views.to_epoch(naive) == views.to_epoch("2026-01-01T00:00:00+00:00")


def test_html_renders_header_and_table_escaped(make_snapshot):
    runs = make_snapshot().runs
    runs.loc[0, "config/optimizer"] = "<script>"
    snap = make_snapshot(runs=runs)
    page = _html.header_html(views.header_info(snap)) + _html.runs_table_html(
        views.runs_table_info(snap)
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "4 / 4 runs" in page and "lr-search" in page
    assert "ValueError: lr too large" in page


def test_header_says_how_many_earlier_runs_a_warm_start_used(make_snapshot):
    from nbsweep._runs import RunRecord
    from nbsweep._warm_start import WarmStart

    records = tuple(RunRecord(f"old{i}", {"lr": 0.01}, "finished", (), 0.5) for i in range(3))
    warm = WarmStart(("abc123", "def456"), records, {"not finished": 2})
    info = views.header_info(make_snapshot(warm_start=warm))
    assert info.warm_start_text == "warm start: 3 runs from abc123, def456"
    assert "warm start: 3 runs from abc123, def456" in _html.header_html(info)
    cold = views.header_info(make_snapshot())
    assert cold.warm_start_text is None and "warm start" not in _html.header_html(cold)


def test_matplotlib_renderers_draw_every_view(make_snapshot):
    snap = make_snapshot(bands=[Band(2, 0.75, 3, 1, 2)])
    figures = [
        plot.draw_parallel(views.parallel_info(snap)),
        plot.draw_bands(views.bands_info(snap)),
        plot.draw_curves(views.curves_info(snap)),
    ]
    parallel = figures[0].axes[0]
    # One polyline per run (one collection), the best run again on top, outlined in black;
    # one vertical line per dimension.
    lines = run_lines(parallel)
    assert len(lines) == 5 and lines[3] == "#000000" and lines[4] == lines[2]
    assert len(parallel.lines) == 4
    assert [t.get_text() for t in parallel.get_xticklabels()][0] == "lr\n(log)"
    bands = figures[1].axes[0]
    # A line per run in its own colour, and a cross where the stopped run stopped.
    legend = [t.get_text() for t in bands.get_legend().get_texts()]
    assert legend == ["r1 (finished)", "r2 (finished)", "r4 (stopped)"]
    assert len({line.get_color() for line in bands.lines if line.get_label() in legend}) == 3
    named = [line for line in figures[2].axes[0].lines if not line.get_label().startswith("_")]
    assert len(named) == 3  # few curves: one named line each
    for fig in figures:
        assert plot.to_png(fig).startswith(b"\x89PNG")


def run_lines(ax: Any) -> list[str]:
    """The colour of each polyline drawn inside the line collections of ``ax``."""
    from matplotlib.colors import to_hex

    colours = []
    for collection in ax.collections:
        rgba = collection.get_colors()
        segments = collection.get_segments()
        colours += [to_hex(rgba[i % len(rgba)]) for i in range(len(segments))]
    return colours
