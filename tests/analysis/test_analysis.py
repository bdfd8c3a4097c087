"""Analysis of finished runs: best values, parameter importance, coarse-to-fine refine."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

import nbsweep
from nbsweep import ConfigError, SweepError
from nbsweep.analysis import best_value, importance, metric_values, refine


def frame(rows: list[dict[str, Any]], metric: str = "loss") -> pd.DataFrame:
    """The shape of ``sweep.runs``: run_id, state, config/<path>, summary/<metric>."""
    out = []
    for i, row in enumerate(rows):
        row = dict(row)  # rows repeated with * n are one dict: leave it whole
        record = {"run_id": f"r{i}", "state": row.pop("state", "finished")}
        if "y" in row:
            record[f"summary/{metric}"] = row.pop("y")
        record.update({f"config/{k}": v for k, v in row.items()})
        out.append(record)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- best values


@pytest.mark.parametrize(
    ("values", "goal", "expected"),
    [
        ([3, 1.5, 2], "minimize", 1.5),
        ([3, 1.5, 2], "maximize", 3.0),
        ([math.nan, "0", None, True, -math.inf, 2.0, np.float32(1.0)], "minimize", 1.0),
        ([], "minimize", math.nan),
        ([math.nan, False], "maximize", math.nan),
    ],
)
def test_best_value(values: list[Any], goal: str, expected: float) -> None:
    got = best_value(values, goal)
    assert got == expected or (math.isnan(got) and math.isnan(expected))


def test_best_value_names_a_bad_goal() -> None:
    with pytest.raises(ValueError, match="goal: 'minimise'"):
        best_value([1], "minimise")


def test_metric_values_drop_invalid_summaries() -> None:
    runs = frame([{"y": 1.0}, {"y": "nan"}, {"y": True}, {"y": None}, {"y": 2}])
    assert metric_values(runs, "loss").tolist()[::4] == [1.0, 2.0]
    assert metric_values(runs, "loss").isna().tolist() == [False, True, True, True, False]
    assert metric_values(runs, "acc").isna().all()


# --------------------------------------------------------------------------- importance


def synthetic(seed: int = 0) -> list[dict[str, Any]]:
    """y depends strongly on x1, a little on the optimizer, not at all on x2.

    x1 and x2 form a full 8 x 8 grid, so x2 is exactly uncorrelated with x1.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i, x1 in enumerate(np.linspace(0, 1, 8)):
        for j, x2 in enumerate(np.linspace(0, 1, 8)):
            opt = "sgd" if (i + j) % 2 else "adam"
            y = 5 * x1 + (0.3 if opt == "sgd" else 0.0) + rng.normal(0, 0.05)
            rows.append({"x1": x1, "x2": x2, "opt": opt, "model/depth": j % 3 + 1, "y": y})
    return rows


def test_importance_finds_the_parameter_that_matters() -> None:
    table = importance(frame(synthetic()), "loss", "minimize")
    assert list(table.columns) == ["parameter", "importance", "correlation"]
    assert set(table["parameter"]) == {"x1", "x2", "opt", "model/depth"}
    assert table["parameter"].iloc[0] == "x1"
    by = table.set_index("parameter")
    assert by.at["x1", "importance"] > 0.8
    assert by.at["x2", "importance"] < 0.1
    assert by.at["x1", "correlation"] > 0.95
    assert abs(by.at["x2", "correlation"]) < 0.3
    assert table["importance"].sum() == pytest.approx(1.0)
    assert list(table["importance"]) == sorted(table["importance"], reverse=True)


def test_importance_sums_one_hot_columns_back_to_the_categorical() -> None:
    rng = np.random.default_rng(1)
    rows = [
        {"opt": o, "x": rng.uniform(), "y": {"adam": 0.0, "sgd": 2.0, "rms": 1.0}[o]}
        for o in ["adam", "sgd", "rms"] * 10
    ]
    table = importance(frame(rows), "loss", "minimize").set_index("parameter")
    assert list(table.index) == ["opt", "x"]  # one row for the categorical, not one per value
    assert table.at["opt", "importance"] > 0.9
    # the categories explain the whole spread: correlation ratio 1, unsigned
    assert table.at["opt", "correlation"] == pytest.approx(1.0)


def test_importance_correlation_sign_follows_the_metric() -> None:
    rows = [{"lr": lr, "y": 10 - lr} for lr in range(10)]
    table = importance(frame(rows, "acc"), "acc", "maximize").set_index("parameter")
    assert table.at["lr", "correlation"] == pytest.approx(-1.0)


def test_importance_handles_values_that_are_lists_bools_and_missing() -> None:
    rows = [
        {"layers": [64, 64] if i % 2 else [128], "flag": bool(i % 3), "extra": i if i % 2 else None}
        | {"y": float(i % 2)}
        for i in range(12)
    ]
    table = importance(frame(rows), "loss", "minimize").set_index("parameter")
    assert table.index[0] == "layers"
    assert not table["importance"].isna().any()


def test_importance_with_too_few_runs_is_nan_and_does_not_raise() -> None:
    rows = [{"x": 1.0, "y": 1.0}, {"x": 2.0, "y": 2.0}, {"x": 3.0, "state": "running"}]
    rows.append({"x": 4.0, "y": math.nan})
    table = importance(frame(rows), "loss", "minimize")
    assert table["parameter"].tolist() == ["x"]
    assert table["importance"].isna().all() and table["correlation"].isna().all()
    no_summary = importance(frame([{"x": 1.0}] * 5), "loss", "minimize")
    assert no_summary["importance"].isna().all()


def test_importance_of_a_flat_metric_is_zero() -> None:
    rows = [{"x": float(i), "y": 1.0} for i in range(5)]
    table = importance(frame(rows), "loss", "minimize")
    assert table["importance"].tolist() == [0.0]
    assert math.isnan(table["correlation"].iloc[0])


def test_importance_is_reproducible() -> None:
    runs = frame(synthetic(seed=3))
    pd.testing.assert_frame_equal(
        importance(runs, "loss", "minimize"), importance(runs, "loss", "minimize")
    )


# --------------------------------------------------------------------------- refine

CONFIG: dict[str, Any] = {
    "method": "random",
    "metric": {"name": "loss", "goal": "minimize"},
    "early_terminate": {"type": "hyperband", "min_iter": 3},
    "parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 1.0e-5, "max": 1.0e-1},
        "dropout": {"min": 0.0, "max": 0.5},
        "layers": {"min": 1, "max": 8},
        "opt": {"values": ["adam", "sgd", "rmsprop"]},
        "batch": {"values": [32, 64, 128]},
        "epochs": {"value": 10},
        "model": {
            "parameters": {
                "width": {"values": [64, 128, 256]},
                "act": {"values": ["relu", "gelu"]},
            }
        },
    },
}

TOP = [  # the 4 best of 20 finished runs (top 0.2)
    {"lr": 1e-3, "dropout": 0.1, "layers": 3, "opt": "adam", "batch": 64, "width": 128},
    {"lr": 4e-3, "dropout": 0.2, "layers": 5, "opt": "rmsprop", "batch": 64, "width": 256},
    {"lr": 2e-3, "dropout": 0.15, "layers": 4, "opt": "adam", "batch": 64, "width": 256},
    {"lr": 3e-3, "dropout": 0.12, "layers": 3, "opt": "adam", "batch": 64, "width": 128},
]


def coarse_runs() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i, t in enumerate(TOP):
        rows.append(_row(t, "gelu", y=0.1 + 0.01 * i))
    for i in range(16):
        other = {
            "lr": float(10 ** rng.uniform(-5, -1)),
            "dropout": float(rng.uniform(0, 0.5)),
            "layers": int(rng.integers(1, 9)),
            "opt": str(rng.choice(["adam", "sgd", "rmsprop"])),
            "batch": int(rng.choice([32, 64, 128])),
            "width": int(rng.choice([64, 128, 256])),
        }
        rows.append(_row(other, str(rng.choice(["relu", "gelu"])), y=1.0 + i))
    # Not finished: never among the top, however good their summary.
    rows.append(_row({**TOP[0], "lr": 0.09, "opt": "sgd"}, "relu", y=0.0, state="running"))
    rows.append(_row({**TOP[0], "lr": 0.09, "opt": "sgd"}, "relu", y=0.0, state="stopped"))
    return frame(rows)


def _row(p: dict[str, Any], act: str, y: float, state: str = "finished") -> dict[str, Any]:
    row = {k: v for k, v in p.items() if k != "width"}
    return row | {"epochs": 10, "model/width": p["width"], "model/act": act, "y": y, "state": state}


def test_refine_narrows_around_the_top_runs() -> None:
    out = refine(CONFIG, coarse_runs(), top=0.2)
    params = out["parameters"]

    lr = params["lr"]
    assert lr["distribution"] == "log_uniform_values"  # log scale kept
    # the span [1e-3, 4e-3] widened by 10% of its width on each side, in log space
    pad = 0.1 * math.log(4)
    assert lr["min"] == pytest.approx(1e-3 * math.exp(-pad))
    assert lr["max"] == pytest.approx(4e-3 * math.exp(pad))

    assert params["dropout"]["distribution"] == "uniform"
    assert params["dropout"]["min"] == pytest.approx(0.09)
    assert params["dropout"]["max"] == pytest.approx(0.21)

    assert params["layers"] == {"distribution": "int_uniform", "min": 2, "max": 6}
    assert isinstance(params["layers"]["min"], int)

    assert params["opt"] == {"distribution": "categorical", "values": ["adam", "rmsprop"]}
    assert params["batch"] == {"distribution": "constant", "value": 64}  # flat: fixed
    assert params["epochs"] == {"distribution": "constant", "value": 10}
    assert params["model"]["parameters"]["width"]["values"] == [128, 256]
    assert params["model"]["parameters"]["act"] == {"distribution": "constant", "value": "gelu"}

    assert out["method"] == "random"
    assert out["early_terminate"] == nbsweep.validate(CONFIG)["early_terminate"]
    assert nbsweep.validate(out) == out


def test_refine_clips_to_the_original_range() -> None:
    config = {
        "method": "bayes",
        "metric": {"name": "acc", "goal": "maximize"},
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 1.0e-4, "max": 1.0e-2},
            "x": {"min": 0.0, "max": 1.0},
        },
    }
    rows = [{"lr": 1e-4, "x": 0.0, "y": 0.9}, {"lr": 1e-2, "x": 1.0, "y": 0.8}]
    rows += [{"lr": 1e-3, "x": 0.5, "y": 0.1}] * 8
    out = refine(config, frame(rows, "acc"))["parameters"]
    assert out["lr"]["min"] == pytest.approx(1e-4) and out["lr"]["max"] == pytest.approx(1e-2)
    assert (out["x"]["min"], out["x"]["max"]) == (0.0, 1.0)


def test_refine_grid_stays_grid_on_the_q_lattice() -> None:
    config = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {
            "q": {"distribution": "q_uniform", "min": 0.0, "max": 2.0, "q": 0.25},
            "n": {"min": 1, "max": 10},
            "c": {"values": ["a", "b", "c"]},
        },
    }
    rows = [
        {"q": 0.5, "n": 3, "c": "a", "y": 0.1},
        {"q": 1.0, "n": 7, "c": "b", "y": 0.2},
        *[{"q": 1.75, "n": 10, "c": "c", "y": 5.0}] * 8,
    ]
    out = refine(config, frame(rows), top=0.2)
    assert out["method"] == "grid"
    q = out["parameters"]["q"]
    # [0.5, 1.0] widened to [0.45, 1.05], then outward to multiples of 0.25
    assert (q["min"], q["max"], q["q"]) == (0.25, 1.25, 0.25)
    assert out["parameters"]["n"] == {"distribution": "int_uniform", "min": 2, "max": 8}
    assert out["parameters"]["c"]["values"] == ["a", "b"]


def test_refine_with_everything_fixed_is_a_grid_of_one() -> None:
    config = {
        "method": "bayes",
        "metric": {"name": "loss"},
        "parameters": {"lr": {"min": 0.0, "max": 1.0}, "opt": {"values": ["a", "b"]}},
    }
    rows = [{"lr": 0.3, "opt": "a", "y": 0.1}] * 2 + [{"lr": 0.9, "opt": "b", "y": 1.0}] * 8
    out = refine(config, frame(rows))
    assert out["method"] == "grid"
    assert out["parameters"] == {
        "lr": {"distribution": "constant", "value": 0.3},
        "opt": {"distribution": "constant", "value": "a"},
    }


def test_refine_other_distributions() -> None:
    config = {
        "method": "random",
        "metric": {"name": "loss"},
        "parameters": {
            "w": {"distribution": "normal", "mu": 0.0, "sigma": 5.0},
            "b": {"distribution": "q_beta", "a": 2, "b": 2, "q": 0.01},
            "p": {"values": ["x", "y", "z"], "probabilities": [0.5, 0.3, 0.2]},
            "v1": {"distribution": "log_uniform", "min": -10, "max": 0},  # exponents
            "s": {"distribution": "log_normal", "mu": 0.0, "sigma": 2.0},
        },
    }
    tops = [
        {"w": 1.0, "b": 0.2, "p": "x", "v1": math.exp(-5), "s": math.e, "y": 0.0},
        {"w": 3.0, "b": 0.4, "p": "z", "v1": math.exp(-3), "s": math.e**3, "y": 0.1},
    ]
    rows = tops + [{"w": -8.0, "b": 0.9, "p": "y", "v1": 0.5, "s": 50.0, "y": 9.0}] * 8
    out = refine(config, frame(rows))["parameters"]
    assert out["v1"]["distribution"] == "log_uniform"
    assert out["v1"]["min"] == pytest.approx(-5.2) and out["v1"]["max"] == pytest.approx(-2.8)
    assert out["s"]["mu"] == pytest.approx(2.0) and out["s"]["sigma"] == pytest.approx(1.2)
    assert out["w"]["distribution"] == "normal"
    assert out["w"]["mu"] == pytest.approx(2.0) and out["w"]["sigma"] == pytest.approx(1.2)
    assert out["b"]["distribution"] == "q_uniform" and out["b"]["q"] == 0.01
    assert out["b"]["min"] == pytest.approx(0.18) and out["b"]["max"] == pytest.approx(0.42)
    assert out["p"]["values"] == ["x", "z"]
    assert out["p"]["probabilities"] == pytest.approx([0.5 / 0.7, 0.2 / 0.7])


def test_refine_needs_two_finished_runs() -> None:
    rows = [{"lr": 0.1, "y": 1.0}, {"lr": 0.2, "y": 0.5, "state": "running"}]
    config = {"method": "random", "metric": {"name": "loss"}, "parameters": CONFIG["parameters"]}
    with pytest.raises(SweepError, match=r"at least 2 finished runs with a valid summary/loss"):
        refine(config, frame(rows))


def test_refine_needs_a_metric() -> None:
    with pytest.raises(ConfigError, match="metric"):
        refine({"method": "random", "parameters": {"x": {"values": [1, 2]}}}, frame([]))
