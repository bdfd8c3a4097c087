"""The views beyond the parallel plot: header, curves, history, slice, timeline, run detail."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nbsweep import _plotly, plot, views
from nbsweep.stopping import Band


def test_best_comes_from_ended_runs_and_a_better_running_run_is_said_apart(make_snapshot):
    runs = make_snapshot().runs
    runs.loc[3, ["state", "summary/val_loss"]] = ["running", 0.05]
    info = views.header_info(make_snapshot(runs=runs, state="running"))
    assert info.best_run_id == "r2" and info.best_value == pytest.approx(0.2)
    assert info.best_running_id == "r4" and info.best_running == pytest.approx(0.05)
    assert info.created_text == "2026-01-01 10:00:00 UTC"


def test_elapsed_runs_on_between_snapshots_while_live(make_snapshot):
    info = views.header_info(make_snapshot(state="running", progress=(2, 8)))
    assert info.elapsed_at(info.taken_at + 10) == pytest.approx(info.elapsed_s + 10)
    done = views.header_info(make_snapshot())
    assert done.elapsed_at(done.taken_at + 10) == done.elapsed_s


def test_format_time_drops_nanoseconds():
    stamp = pd.Timestamp("2026-01-01 10:00:05.123456789", tz="UTC")
    assert views.format_time(stamp) == "2026-01-01 10:00:05 UTC"
    assert views.format_time(pd.NaT) == "—"


def test_curves_count_from_one_like_bands_or_use_steps(make_snapshot):
    snap = make_snapshot()
    curves = {c.run_id: c for c in views.curves_info(snap).curves}
    bands = {c.run_id: c for c in views.bands_info(snap).curves}
    assert curves["r4"].x == bands["r4"].x == [1.0, 2.0]
    steps = {c.run_id: c for c in views.curves_info(snap, x="step").curves}
    assert steps["r4"].x == [0.0, 1.0]
    with pytest.raises(ValueError, match="x must be"):
        views.curves_info(snap, x="time")


def test_each_run_has_its_own_style_and_log_y_is_automatic(make_snapshot):
    styles = [views.run_style(i) for i in range(50)]
    assert len({(s.colour, s.dash) for s in styles}) == 50
    snap = make_snapshot()
    info = views.curves_info(snap)
    assert len({c.colour for c in info.curves}) == len(info.curves)
    assert not info.log_y and views.curves_info(snap, log_y=True).log_y
    history = snap.history.copy()
    history.loc[history["run_id"] == "r4", "val_loss"] = [120.0, 90.0]
    assert views.curves_info(make_snapshot(history=history)).log_y
    smoothed = views.curves_info(snap, smoothing=0.5).curves[0]
    assert smoothed.smoothed[0] == smoothed.y[0] and smoothed.smoothed[1] != smoothed.y[1]


def test_history_is_the_best_so_far_in_order_of_ending(make_snapshot):
    info = views.history_info(make_snapshot())
    # Ended with val_loss: r4 at 10:00:50 (0.9), r1 at 10:01:00 (0.3), r2 at 10:01:30 (0.2).
    assert [p.run_id for p in info.points] == ["r4", "r1", "r2"]
    assert info.best_so_far == pytest.approx([0.9, 0.3, 0.2])
    assert info.points[0].ended_s == pytest.approx(50.0) and info.best_run_id == "r2"


def test_slice_has_a_panel_per_parameter_with_the_run_ids(make_snapshot):
    info = views.slice_info(make_snapshot())
    panels = {p.parameter: p for p in info.panels}
    assert list(panels) == ["lr", "optimizer", "model/depth"]
    assert panels["lr"].is_log and panels["lr"].x == [0.001, 0.01, 0.0001]
    assert panels["lr"].run_ids == ["r1", "r2", "r4"]
    assert panels["optimizer"].tick_labels == ["adam", "sgd"]
    assert info.best_run_id == "r2"


def test_timeline_has_a_row_per_agent_with_bars_by_state(make_snapshot):
    runs = make_snapshot().runs
    runs["started_at"] = runs["created_at"]
    runs["gpu_util"] = [80.0, None, None, 40.0]
    info = views.timeline_info(make_snapshot(runs=runs))
    assert [r.agent for r in info.rows] == ["a0", "a1"]
    a0 = info.rows[0].bars
    assert [(b.run_id, b.state, b.start_s, b.end_s) for b in a0] == [
        ("r1", "finished", 0.0, 60.0),
        ("r3", "failed", 10.0, 20.0),
    ]
    assert a0[0].colour == views.STATE_COLOURS["finished"] and info.has_gpu


def test_run_detail_has_config_summary_curves_and_log(make_snapshot, tmp_path):
    log = tmp_path / "r2.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    info = views.run_detail_info(make_snapshot(), "r2", views.log_tail(log, lines=3))
    assert info.config["model/depth"] == 3 and info.summary["val_loss"] == 0.2
    assert set(info.curves) == {"val_loss", "acc"}
    assert info.curves["val_loss"].x == [1.0, 2.0, 3.0, 4.0]
    assert info.log_tail == "line 97\nline 98\nline 99"
    assert views.log_tail(tmp_path / "missing.log") == ""
    with pytest.raises(KeyError):
        views.run_detail_info(make_snapshot(), "nope")


def test_importance_leaves_out_parameters_that_never_changed(make_snapshot):
    runs = make_snapshot().runs
    runs["config/optimizer"] = "adam"  # searched, but every run drew the same
    rows = views.importance_info(make_snapshot(runs=runs)).rows
    assert {r.parameter for r in rows} <= {"lr", "model/depth"}
    assert "epochs" not in {r.parameter for r in rows}


def _all_infos(snap):
    runs = snap.runs
    runs["started_at"] = runs["created_at"]
    snap = views.Snapshot(**{**snap.__dict__, "runs": runs, "bands": [Band(2, 0.75, 3, 1, 2)]})
    return [
        views.parallel_info(snap),
        views.bands_info(snap),
        views.curves_info(snap, smoothing=0.6),
        views.history_info(snap),
        views.slice_info(snap),
        views.timeline_info(snap),
        views.run_detail_info(snap, "r1"),
        views.importance_info(snap),
    ]


def test_matplotlib_draws_every_view(make_snapshot):
    draw = [
        plot.draw_parallel,
        plot.draw_bands,
        plot.draw_curves,
        plot.draw_history,
        plot.draw_slice,
        plot.draw_timeline,
        plot.draw_run_detail,
        plot.draw_importance,
    ]
    for info, renderer in zip(_all_infos(make_snapshot()), draw, strict=True):
        assert plot.to_png(renderer(info)).startswith(b"\x89PNG")


def test_plotly_draws_every_view_with_hover_naming_runs(make_snapshot):
    infos = _all_infos(make_snapshot())
    figures = [
        _plotly.parallel_figure(infos[0]),
        _plotly.bands_figure(infos[1]),
        _plotly.curves_figure(infos[2]),
        _plotly.history_figure(infos[3]),
        _plotly.slice_figure(infos[4]),
        _plotly.timeline_figure(infos[5]),
        _plotly.run_detail_figure(infos[6]),
    ]
    curves = figures[2]
    named = [t for t in curves.data if t.showlegend is not False]
    assert {t.legendgroup for t in named} == {"r1", "r2", "r4"}
    assert all("customdata[0]" in t.hovertemplate for t in named)
    parcoords = figures[0].data[0]
    numeric = [d for d in parcoords.dimensions if d.label != "optimizer"]
    assert all(d.tickvals is None for d in numeric)  # no snapping of a brush to ticks
    assert parcoords.line.cmin == 0 and parcoords.line.cmax == 1
    texts = " ".join(a.text for a in figures[1].layout.annotations)
    assert "1 stopped / 3 reached" in texts
    for fig in figures:
        assert fig.layout.width is None  # fills the cell: no fixed width
        fig.to_json()


def test_empty_sweeps_say_so(make_snapshot):
    empty = make_snapshot(runs=make_snapshot().runs.iloc[:0], history=None)
    assert not views.history_info(empty).points and not views.timeline_info(empty).rows
    assert math.isnan(views.parallel_info(make_snapshot()).dimensions[0].position_of(None))
    for fig in (
        plot.draw_history(views.history_info(empty)),
        plot.draw_timeline(views.timeline_info(empty)),
        plot.draw_slice(views.slice_info(empty)),
    ):
        assert plot.to_png(fig).startswith(b"\x89PNG")
    _plotly.history_figure(views.history_info(empty)).to_json()


def test_progress_counts_what_run_cap_counts():
    from types import SimpleNamespace

    from nbsweep import validate
    from nbsweep._frames import progress_of

    def run(i, state, steps=3, requeued_from=None):
        return SimpleNamespace(id=f"r{i}", state=state, steps=steps, requeued_from=requeued_from)

    # 27 finished, 2 crashed after logging (one queued again, as r29), 1 crashed at once.
    runs = [run(i, "finished") for i in range(27)]
    runs += [run(27, "crashed"), run(28, "crashed"), run(31, "crashed", steps=0)]
    runs += [run(29, "finished", requeued_from="r27")]
    capped = validate({"method": "random", "run_cap": 30, "parameters": {"x": {"values": [1]}}})
    # The controller counts 30 runs against the cap (the crash at once does not count): the
    # header says so as soon as the last counted run ends.
    assert progress_of(capped, runs) == (30, 30)
    grid = validate({"method": "grid", "parameters": {"x": {"values": [1, 2]}}})
    pair = [run(0, "crashed"), run(1, "finished", requeued_from="r0"), run(2, "finished")]
    assert progress_of(grid, pair) == (2, 2)  # a grid point queued again counts once
