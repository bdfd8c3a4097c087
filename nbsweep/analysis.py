"""Analysing a sweep's runs: best values, parameter importance, coarse-to-fine refinement.

Pure functions of the runs DataFrame (``sweep.runs``): one row per run with ``run_id``,
``state``, one ``config/<name>`` column per parameter (nested names joined by ``/``) and
``summary/<metric>``. Nothing here reads a store, so a notebook can run it on any frame.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nbsweep._errors import ConfigError, SweepError
from nbsweep._runs import is_valid_metric
from nbsweep._states import RunState
from nbsweep.config import ConfigWarning, SweepConfig, validate
from nbsweep.space import find_parent

__all__ = ["best_value", "importance", "metric_values", "refine"]

GOALS = ("minimize", "maximize")
# Fewer runs than this cannot separate a parameter's effect from noise.
MIN_RUNS_FOR_IMPORTANCE = 3
_FOREST_TREES = 100
_FOREST_SAMPLES = 2000
_FOREST_SEED = 0


def _check_goal(goal: str) -> None:
    if goal not in GOALS:
        raise ValueError(f"goal: {goal!r} must be minimize or maximize")


def best_value(values: Iterable[Any], goal: str) -> float:
    """The best valid value (finite number, not a bool) for ``goal``; NaN when there is none."""
    _check_goal(goal)
    valid = [float(v) for v in values if is_valid_metric(v)]
    if not valid:
        return math.nan
    return min(valid) if goal == "minimize" else max(valid)


def metric_values(runs: pd.DataFrame, metric: str) -> pd.Series:
    """Each run's ``summary/<metric>`` as a float, NaN where missing or not a valid number."""
    column = f"summary/{metric}"
    if column not in runs.columns:
        return pd.Series(math.nan, index=runs.index, dtype=float)
    return runs[column].map(lambda v: float(v) if is_valid_metric(v) else math.nan).astype(float)


def _parameter_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if isinstance(c, str) and c.startswith("config/")]


def _is_missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA: a run without this parameter (a list or dict is a value)."""
    if isinstance(value, (list, tuple, dict, set, np.ndarray)):
        return False
    return bool(pd.isna(value))


def _is_number(value: Any) -> bool:
    """Bools count as numbers 0/1 here: a flag's effect is a difference of means."""
    return isinstance(value, (int, float, np.integer, np.floating, np.bool_))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    keep = ~np.isnan(x)
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def _correlation_ratio(groups: Sequence[str], y: np.ndarray) -> float:
    """Eta, in [0, 1]: how much of the metric's spread the categories explain (unsigned)."""
    total = float(np.sum((y - y.mean()) ** 2))
    frame = pd.DataFrame({"g": list(groups), "y": y})
    if total == 0 or frame["g"].nunique() < 2:
        return math.nan
    stats = frame.groupby("g")["y"].agg(["count", "mean"])
    between = float(np.sum(stats["count"] * (stats["mean"] - y.mean()) ** 2))
    return math.sqrt(between / total)


def _category(value: Any) -> str:
    """A hashable label for any config value (lists and dicts included), typed: 1 is not '1'."""
    return repr(value)


def importance(runs: pd.DataFrame, metric: str, goal: str) -> pd.DataFrame:
    """W&B's parameter-importance panel: one row per parameter, most important first.

    Uses every run (any state) whose ``summary/<metric>`` is a valid number. ``importance`` is
    a random forest's impurity importance (scikit-learn ``RandomForestRegressor``, 100 trees,
    ``random_state=0``) of the parameter for predicting the metric; a categorical parameter is
    one-hot encoded and its columns' importances summed back, so importances sum to 1.
    ``correlation`` is Pearson's r with the metric for numeric parameters (bools as 0/1; runs
    missing the parameter left out), and for categorical ones the correlation ratio eta in
    [0, 1], which has no sign. Both are about the metric itself, whatever the ``goal``: a
    negative correlation lowers the metric. With fewer than 3 usable runs every value is NaN.
    """
    _check_goal(goal)
    columns = _parameter_columns(runs)
    names = [c.removeprefix("config/") for c in columns]
    y_all = metric_values(runs, metric)
    usable = runs[y_all.notna()]
    y = y_all[y_all.notna()].to_numpy(dtype=float)
    table = pd.DataFrame(
        {"parameter": names, "importance": math.nan, "correlation": math.nan},
        columns=["parameter", "importance", "correlation"],
    )
    if len(usable) < MIN_RUNS_FOR_IMPORTANCE or not columns:
        return table

    features: list[np.ndarray] = []
    owner: list[int] = []  # which parameter each feature column belongs to
    correlations: list[float] = []
    for index, column in enumerate(columns):
        cells = list(usable[column])
        present = [v for v in cells if not _is_missing(v)]
        if present and all(_is_number(v) for v in present):
            x = np.array([math.nan if _is_missing(v) else float(v) for v in cells])
            correlations.append(_pearson(x, y))
            if np.isnan(x).all():
                continue
            # The forest needs every cell; a missing numeric value takes the median.
            features.append(np.where(np.isnan(x), np.nanmedian(x), x)[:, None])
            owner.append(index)
        else:
            labels = [_category(v) for v in cells]
            correlations.append(_correlation_ratio(labels, y))
            onehot = pd.get_dummies(pd.Series(labels)).to_numpy(dtype=float)
            features.append(onehot)
            owner.extend([index] * onehot.shape[1])
    table["correlation"] = correlations
    table["importance"] = (
        _forest_importance(np.hstack(features), y, owner, len(columns))
        if features
        else 0.0  # no run holds a value of any parameter
    )
    order = table["importance"].sort_values(ascending=False, kind="mergesort").index
    return table.loc[order].reset_index(drop=True)


def _forest_importance(x: np.ndarray, y: np.ndarray, owner: list[int], count: int) -> np.ndarray:
    """Per parameter, the summed impurity importance of its feature columns."""
    from sklearn.ensemble import RandomForestRegressor

    out = np.zeros(count)
    if np.ptp(y) == 0:  # nothing to explain: no parameter matters
        return out
    # Each tree sees at most _FOREST_SAMPLES runs (bootstrapped, as always): past that the
    # importances barely move, and a dashboard of 10,000 runs waited seconds for them.
    forest = RandomForestRegressor(
        n_estimators=_FOREST_TREES,
        random_state=_FOREST_SEED,
        max_samples=min(len(y), _FOREST_SAMPLES),
    )
    forest.fit(x, y)
    np.add.at(out, owner, forest.feature_importances_)
    return out


# --------------------------------------------------------------------------- refine


# Where a range is shrunk: ``work`` maps values to the space the distribution is uniform in,
# ``bound`` maps a spec's min/max there, ``store`` maps a work-space bound back to a spec bound.
_IDENTITY = (lambda v: v, lambda b: b, lambda w: w)
_LOG_VALUES = (math.log, math.log, math.exp)
_RANGES: dict[str, tuple[Any, Any, Any]] = {
    "uniform": _IDENTITY,
    "q_uniform": _IDENTITY,
    "int_uniform": _IDENTITY,
    "log_uniform_values": _LOG_VALUES,
    "q_log_uniform_values": _LOG_VALUES,
    "inv_log_uniform_values": _LOG_VALUES,
    # W&B v1: min/max are natural-log exponents already.
    "log_uniform": (math.log, lambda b: b, lambda w: w),
    "q_log_uniform": (math.log, lambda b: b, lambda w: w),
    "inv_log_uniform": (lambda v: -math.log(v), lambda b: b, lambda w: w),
}
_LOG_DISTRIBUTIONS = frozenset(d for d in _RANGES if "log" in d)
_NORMALS = {"normal": False, "q_normal": False, "log_normal": True, "q_log_normal": True}
_BETAS = {"beta": "uniform", "q_beta": "q_uniform"}


def _plain(value: Any) -> Any:
    """numpy scalars from a DataFrame become plain Python values for the config."""
    return value.item() if isinstance(value, np.generic) else value


def _widen(low: float, high: float, margin: float) -> tuple[float, float]:
    pad = margin * (high - low)
    return low - pad, high + pad


def _snap(value: float, q: float, up: bool) -> float:
    """Round a bound outward to a multiple of ``q``, so grid points stay on the old lattice."""
    steps = math.ceil(value / q - 1e-9) if up else math.floor(value / q + 1e-9)
    return float(np.round(steps * q, 12))


def _refine_range(spec: dict[str, Any], top: list[Any], margin: float) -> dict[str, Any]:
    dist = spec["distribution"]
    work, bound, store = _RANGES[dist]
    if dist in _LOG_DISTRIBUTIONS:
        top = [v for v in top if v > 0]
        if not top:
            return spec
    points = [work(float(v)) for v in top]
    low, high = _widen(min(points), max(points), margin)
    low, high = max(low, bound(spec["min"])), min(high, bound(spec["max"]))
    new_min, new_max = store(low), store(high)
    if dist == "int_uniform":
        new_min, new_max = math.floor(new_min + 1e-9), math.ceil(new_max - 1e-9)
    elif dist == "q_uniform":
        q = float(spec["q"])
        new_min = max(_snap(new_min, q, up=False), float(spec["min"]))
        new_max = min(_snap(new_max, q, up=True), float(spec["max"]))
    if not new_min < new_max:  # the top runs lie outside this range: nothing to narrow to
        return spec
    return {**spec, "min": new_min, "max": new_max}


def _refine_normal(spec: dict[str, Any], top: list[Any], margin: float) -> dict[str, Any]:
    """Re-centre on the top runs: mu their middle, one sigma reaching the widened extremes."""
    is_log = _NORMALS[spec["distribution"]]
    if is_log:
        top = [v for v in top if v > 0]
        if not top:
            return spec
    points = [math.log(float(v)) if is_log else float(v) for v in top]
    low, high = _widen(min(points), max(points), margin)
    return {**spec, "mu": (low + high) / 2, "sigma": (high - low) / 2}


def _refine_beta(spec: dict[str, Any], top: list[Any], margin: float) -> dict[str, Any]:
    """A beta law cannot be narrowed to a range; a uniform law on [0, 1]'s sub-range can."""
    low, high = _widen(min(map(float, top)), max(map(float, top)), margin)
    out: dict[str, Any] = {"distribution": _BETAS[spec["distribution"]]}
    out["min"], out["max"] = max(low, 0.0), min(high, 1.0)
    if "q" in spec:
        out["q"] = spec["q"]
    return out


def _refine_categorical(spec: dict[str, Any], top: list[Any]) -> dict[str, Any]:
    values = list(spec["values"])
    keep = [i for i, v in enumerate(values) if any(_same(v, t) for t in top)]
    if not keep:  # the top runs used values this spec no longer lists
        return spec
    if len(keep) == 1:
        return {"value": values[keep[0]]}
    out = {**spec, "values": [values[i] for i in keep]}
    if "probabilities" in spec:
        probabilities = [float(spec["probabilities"][i]) for i in keep]
        total = math.fsum(probabilities)
        out["probabilities"] = (
            [p / total for p in probabilities] if total > 0 else [1 / len(keep)] * len(keep)
        )
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal as config values: 1 == 1.0, but a bool is not a number."""
    if isinstance(a, (bool, np.bool_)) != isinstance(b, (bool, np.bool_)):
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # numpy arrays compare elementwise
        return False


def _refine_leaf(spec: dict[str, Any], top: list[Any], margin: float) -> dict[str, Any]:
    dist = spec.get("distribution")
    if dist == "constant" or not top:
        return spec
    if dist in ("categorical", "categorical_w_probabilities"):
        return _refine_categorical(spec, top)
    if not all(_is_number(v) and not isinstance(v, (bool, np.bool_)) for v in top):
        return spec  # the top runs do not hold numbers for a numeric parameter: leave it
    if all(_same(v, top[0]) for v in top):  # flat across the top runs: fix it
        return {"value": int(top[0]) if dist == "int_uniform" else top[0]}
    if dist in _RANGES:
        return _refine_range(spec, top, margin)
    if dist in _NORMALS:
        return _refine_normal(spec, top, margin)
    return _refine_beta(spec, top, margin)  # the last family validate knows


def _is_block(spec: Any) -> bool:
    return isinstance(spec, Mapping) and "parameters" in spec and "distribution" not in spec


def _refine_parameters(
    parameters: Mapping[str, Any], top: pd.DataFrame, prefix: str, margin: float
) -> dict[str, Any]:
    """Each leaf refined from the top runs holding it: an empty cell is a run where the
    parameter was inactive (its ``when`` did not hold), not a missing value."""
    out: dict[str, Any] = {}
    for name, spec in parameters.items():
        column = f"{prefix}{name}"
        if _is_block(spec):
            inner = _refine_parameters(spec["parameters"], top, f"{column}/", margin)
            out[name] = {"parameters": inner}
        elif isinstance(spec, Mapping) and column in top.columns:
            values = [_plain(v) for v in top[column] if not _is_missing(v)]
            leaf = {key: value for key, value in spec.items() if key != "when"}
            out[name] = _refine_leaf(leaf, values, margin)
        else:
            out[name] = copy.deepcopy(spec)
            continue
        if "when" in spec:
            out[name]["when"] = copy.deepcopy(spec["when"])
    return out


def _specs(
    parameters: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> Iterable[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every parameter and block with its path, a block before what it holds."""
    for name, spec in parameters.items():
        yield (*prefix, name), spec
        if _is_block(spec):
            yield from _specs(spec["parameters"], (*prefix, name))


def _takes(spec: Mapping[str, Any], value: Any) -> bool:
    """Whether a refined parent can take ``value`` (a ``when`` names only these three kinds)."""
    if "values" in spec:
        return any(_same(value, v) for v in spec["values"])
    if "value" in spec:
        return _same(value, spec["value"])
    return spec["min"] <= value <= spec["max"]  # int_uniform


def _prune_conditions(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Drop from each ``when`` the values its narrowed parent no longer takes, and every
    parameter or block left with none (or whose parent went): it could never be active."""
    specs = dict(_specs(parameters))
    parents = {  # resolved once, before anything goes, as validation resolves them
        path: {name: find_parent(path[:-1], name, specs) for name in spec["when"]}
        for path, spec in specs.items()
        if "when" in spec
    }

    dead: set[tuple[str, ...]] = set()

    def gone(path: tuple[str, ...] | None) -> bool:
        return path is None or any(path[: len(d)] == d for d in dead)

    changed = True
    while changed:  # a parameter that goes takes the ones depending on it along
        changed = False
        for path, names in parents.items():
            if gone(path):
                continue
            when = specs[path]["when"]
            for name, parent in names.items():
                alive = not gone(parent)
                when[name] = [v for v in when[name] if alive and _takes(specs[parent], v)]
                if not when[name]:
                    dead.add(path)
                    changed = True
                    break
    return _without(parameters, dead)


def _without(
    parameters: Mapping[str, Any], dead: set[tuple[str, ...]], prefix: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``parameters`` less the ``dead`` paths, and less the blocks that leaves empty."""
    out: dict[str, Any] = {}
    for name, spec in parameters.items():
        path = (*prefix, name)
        if path in dead:
            continue
        if _is_block(spec):
            inner = _without(spec["parameters"], dead, path)
            if not inner:
                continue
            spec = {**spec, "parameters": inner}
        out[name] = spec
    return out


def _leaves(parameters: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for spec in parameters.values():
        if _is_block(spec):
            yield from _leaves(spec["parameters"])
        else:
            yield spec


def _method(method: Any, parameters: Mapping[str, Any]) -> Any:
    """The method stays, except that a config with nothing left to search is a grid of one.

    Grid needs no fallback: refining keeps categorical, int_uniform and q_uniform kinds (or
    fixes them), so a grid config stays enumerable.
    """
    # Leaves refine fixed are ``{"value": v}``; validated constants name their distribution.
    if all(spec.get("distribution", "constant") == "constant" for spec in _leaves(parameters)):
        return "grid"
    return method


def refine(
    config: Mapping[str, Any] | str, runs: pd.DataFrame, top: float = 0.2, margin: float = 0.1
) -> SweepConfig:
    """A narrower sweep config around the best finished runs (coarse-to-fine search).

    Takes the best ``top`` fraction of finished runs by ``summary/<metric>`` (at least 2).
    Numeric ranges shrink to the span of those runs widened by ``margin`` of that span on each
    side, in the space the distribution is uniform in (log space for log distributions),
    clipped to the old range; int_uniform keeps int bounds, q_uniform bounds stay multiples of
    q. Normal laws are re-centred on the span (mu its middle, sigma half its width); beta laws
    become uniform on the span. Categoricals keep the values the top runs used (probabilities
    renormalised); a parameter with one value across the top runs becomes ``{"value": v}``.
    A ``when`` stays, each parameter refined from the top runs it was active in; a ``when``
    drops the values its narrowed parent no longer takes, and one left with none goes.
    Constants and other keys are unchanged, and so is the method (grid stays enumerable),
    except that a config with nothing left to search becomes a grid of one run. ``config`` may
    be raw or normalised; the result is validated and returned normalised.
    """
    with warnings.catch_warnings():
        # A config that has run was validated already; its warnings were shown then.
        warnings.simplefilter("ignore", ConfigWarning)
        config = validate(config)
    if not 0 < top <= 1:
        raise ValueError(f"top: {top!r} must be a fraction in (0, 1]")
    if margin < 0:
        raise ValueError(f"margin: {margin!r} must be at least 0")
    metric = config.metric
    if metric is None:
        raise ConfigError("metric: refine ranks runs on the metric; add metric: {name, goal}")
    name, goal = metric.name, metric.goal
    values = metric_values(runs, name)
    if "state" not in runs:
        finished = values[:0]
    else:
        finished = values[(runs["state"] == RunState.FINISHED) & values.notna()]
    if len(finished) < 2:
        raise SweepError(
            f"refine needs at least 2 finished runs with a valid summary/{name}; "
            f"found {len(finished)}"
        )
    count = min(len(finished), max(2, math.ceil(top * len(finished))))
    best = finished.sort_values(ascending=goal == "minimize", kind="mergesort").index[:count]
    parameters = _refine_parameters(config.parameters, runs.loc[best], "config/", margin)
    parameters = _prune_conditions(parameters)
    return config.replace(parameters=parameters, method=_method(config.method, parameters))
