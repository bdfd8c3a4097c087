"""Brushing parallel coordinates selects exactly the dragged values, and keeps doing so."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nbsweep import validate, views
from nbsweep.widgets._parallel import ParallelView, describe, trace_spec

CONFIG = validate(
    {
        "method": "random",
        "metric": {"name": "val_loss", "goal": "minimize"},
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
            "width": {"distribution": "uniform", "min": 0.0, "max": 10.0},
            "optimizer": {"values": ["adam", "sgd"]},
        },
    }
)
LR = [3e-5, 2e-4, 9e-4, 1.5e-3, 4e-3, 2e-2, 7e-2]
WIDTH = [0.5, 2.5, 3.1, 4.9, 6.0, 7.7, 9.9]
LOSS = [0.9, 0.31, 0.163, 0.17, 0.2, 0.2904, 0.55]


def snapshot(extra: list[tuple[str, str, float, float, float | None]] = ()) -> views.Snapshot:
    """Seven finished runs, plus ``extra`` (run id, state, lr, width, val_loss)."""
    rows = [
        (f"r{i}", "finished", lr, width, loss)
        for i, (lr, width, loss) in enumerate(zip(LR, WIDTH, LOSS, strict=True))
    ] + list(extra)
    runs = pd.DataFrame(
        {
            "run_id": [r[0] for r in rows],
            "state": [r[1] for r in rows],
            "config/lr": [r[2] for r in rows],
            "config/width": [r[3] for r in rows],
            "config/optimizer": ["adam" if i % 2 else "sgd" for i in range(len(rows))],
            "summary/val_loss": [r[4] for r in rows],
        }
    )
    return views.Snapshot(
        id="sw", name="brush", method="random", state="running", message="", config=CONFIG,
        created_at=0.0, progress=(len(rows), None), runs=runs,
    )  # fmt: skip


def inside(snap: views.Snapshot, column: str, low: float, high: float) -> set[str]:
    """The runs whose value lies in [low, high], straight from the data."""
    runs = snap.runs
    keep = runs[column].between(low, high) & runs["summary/val_loss"].notna()
    return set(runs.loc[keep, "run_id"])


def test_numeric_and_log_axes_carry_no_ticks_that_a_brush_would_snap_to():
    info = views.parallel_info(snapshot())
    spec = {d["label"]: d for d in trace_spec(info, {})["dimensions"]}
    assert "tickvals" not in spec["lr (log)"] and "tickvals" not in spec["width"]
    assert "tickvals" not in spec["val_loss"]
    assert spec["optimizer"]["ticktext"] == ["adam", "sgd"]


@pytest.fixture
def view() -> ParallelView:
    import anywidget  # noqa: F401 - the live plot needs it
    import plotly  # noqa: F401

    calls: list[int] = []
    view = ParallelView(on_brush=lambda: calls.append(1))
    view.update(views.parallel_info(snapshot()))
    assert view.interactive
    view.calls = calls  # type: ignore[attr-defined]
    return view


def axis(view: ParallelView, name: str):
    names = [d.name for d in view.info.dimensions]
    return view.figure.data[0].dimensions[names.index(name)]


def test_a_drag_selects_exactly_the_values_inside_it(view):
    snap = snapshot()
    # What a drag along val_loss from 0.163 to 0.2 sends back: the axis positions.
    axis(view, "val_loss").constraintrange = [0.163, 0.2]
    assert view.calls
    assert view.selected(views.parallel_info(snap)) == inside(snap, "summary/val_loss", 0.163, 0.2)
    assert view.selected(views.parallel_info(snap)) == {"r2", "r3", "r4"}
    assert "0.163–0.2" in view.hint.value and "3 of 7 runs" in view.hint.value


def test_a_drag_on_a_log_axis_maps_positions_to_values_exactly(view):
    snap = snapshot()
    low, high = math.log10(9e-4), math.log10(4e-3)
    axis(view, "lr").constraintrange = [low, high]
    assert view.selected(views.parallel_info(snap)) == inside(snap, "config/lr", 9e-4, 4e-3)
    assert view.brushed == {"lr": [(low, high)]}
    assert describe(view.info, view.brushed) == "lr 0.0009–0.004"


def test_brushes_on_several_axes_intersect(view):
    snap = snapshot()
    axis(view, "lr").constraintrange = [math.log10(2e-4), math.log10(2e-2)]
    axis(view, "width").constraintrange = [3.0, 8.0]
    expected = inside(snap, "config/lr", 2e-4, 2e-2) & inside(snap, "config/width", 3.0, 8.0)
    assert view.selected(views.parallel_info(snap)) == expected == {"r2", "r3", "r4", "r5"}


def test_ranges_survive_a_live_redraw_and_select_new_runs_inside_them(view):
    axis(view, "val_loss").constraintrange = [0.163, 0.2]
    # A new run ends inside the range, another outside, one is still pending.
    later = snapshot(
        [
            ("r7", "finished", 1e-3, 5.0, 0.18),
            ("r8", "finished", 1e-3, 5.0, 0.4),
            ("r9", "pending", 1e-3, 5.0, None),
        ]
    )
    info = views.parallel_info(later)
    view.update(info)
    assert axis(view, "val_loss").constraintrange == (0.163, 0.2)  # the plot keeps the brush
    assert view.selected(info) == inside(later, "summary/val_loss", 0.163, 0.2) | {"r7"}
    table = views.runs_table_info(later, only=view.selected(info))
    assert {row.run_id for row in table.rows} == {"r2", "r3", "r4", "r7"}
    # Hidden: the plotted runs outside the brush; the pending run is not among them.
    assert table.hidden == len(info.run_ids) - 4 == 5


def test_clearing_removes_every_brush(view):
    axis(view, "width").constraintrange = [3.0, 8.0]
    view.clear_ranges()
    assert view.brushed == {} and view.selected(view.info) is None
    assert all(d.constraintrange is None for d in view.figure.data[0].dimensions)
