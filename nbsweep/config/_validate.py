"""Validate and normalise a sweep config: W&B's schema, plus the checks W&B leaves to a crash.

Every check appends ``key.path: message`` to one list, so a single ``ConfigError`` names every
problem. The schema lives in tables (root keys, distributions, early-terminate types, scheduler
keys); each table maps a key to a small checker that returns the normalised value.
"""

from __future__ import annotations

import copy
import difflib
import math
import numbers
import os
import re
import reprlib
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from importlib.metadata import entry_points
from typing import Any, NamedTuple

from nbsweep._errors import ConfigError
from nbsweep.config._distributions import (
    DISTRIBUTIONS,
    GRID_DISTRIBUTIONS,
    PARAMETER_KEYS,
    POSITIVE_MIN_DISTRIBUTIONS,
    V1_LOG_DISTRIBUTIONS,
)
from nbsweep.config._yaml import MAX_CONFIG_VALUES, load_yaml


class ConfigWarning(UserWarning):
    """A config that runs, but probably not as meant (deprecated or ignored keys)."""


METHODS = ("grid", "random", "bayes", "custom")
GOALS = ("minimize", "maximize")
IMPUTES = ("latest", "best", "worst")
IMPUTES_WHILE_RUNNING = ("latest", "best", "worst", "false")
METRIC_DEFAULTS: Mapping[str, Any] = {
    "goal": "minimize",
    "impute": "worst",
    "impute_while_running": "false",
}
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
MAX_NESTING = 32  # nested parameter blocks; deeper is surely a mistake (or a YAML alias loop)
MAX_PARAMETER_SPECS = 10_000  # bounds the walk when YAML aliases repeat blocks
# Bayes encodes each value of a categorical as a feature column of every candidate it scores
# (over a thousand per suggestion): more values cost memory and teach the model nothing.
MAX_BAYES_CATEGORIES = 10_000

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60


class _Context:
    """Collects problems and warnings while the config is walked."""

    def __init__(self, stored: bool = False) -> None:
        self.stored = stored  # a stored config: its scheduler name was checked when it was made
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.specs_seen = 0

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")


_Check = Callable[[_Context, str, Any], Any]


def _show(value: Any) -> str:
    return _short.repr(value)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{value} (a boolean, not a number or string)"
    return f"{type(value).__name__} {_show(value)}"


def _did_you_mean(word: Any, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    match = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _unknown_key(ctx: _Context, path: str, key: Any, known: Iterable[str]) -> None:
    ctx.problem(path, f"unknown key{_did_you_mean(key, known)}")


def _is_number(value: Any) -> bool:
    # bools are ints in Python but never numbers in a sweep config (W&B's schema agrees)
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    # ints beyond the float range are refused too: sampling turns bounds into floats
    if _is_int(value):
        return abs(value) <= sys.float_info.max
    return _is_number(value) and math.isfinite(value)


def _join(choices: Sequence[str]) -> str:
    return ", ".join(choices)


def _child(path: str, key: Any) -> str:
    return f"{path}.{key}" if isinstance(key, str) else f"{path}.{_show(key)}"


# ---------------------------------------------------------------- small checkers


def _string(ctx: _Context, path: str, value: Any) -> Any:
    if not isinstance(value, str):
        ctx.problem(path, f"must be a string, got {_describe(value)}")
    return value


def _mapping(ctx: _Context, path: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        ctx.problem(path, f"must be a mapping, got {_describe(value)}")
        return value
    _plain_data(ctx, path, value)
    return dict(value)


def _plain_data(ctx: _Context, path: str, value: Any) -> None:
    """Report the first value of free-form data (``value``, ``values``, ``command``, ``launch``)
    that JSON cannot keep: YAML dates and ``!!binary``, sets, other objects. The store would
    refuse it, or train would get its ``repr``."""
    problem = next(_not_plain(path, value), None)
    if problem is not None:
        ctx.problem(*problem)


def _not_plain(path: str, value: Any) -> Iterator[tuple[str, str]]:
    if value is None or isinstance(value, (str, int, float)):  # bools, numpy's float64 too
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                yield path, f"key {_show(key)} is a {type(key).__name__}; keys must be strings"
            yield from _not_plain(_child(path, key), item)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _not_plain(f"{path}[{i}]", item)
    elif _is_array(value):  # numpy and torch values: kept as the numbers they hold
        yield from _not_plain(path, value.tolist())
    else:
        hint = " (in YAML, quote a date to keep it text)" if isinstance(value, date) else ""
        yield (
            path,
            f"a {type(value).__name__} ({_show(value)}) cannot be kept in a sweep config; use "
            f"strings, numbers, true/false, null, lists and mappings{hint}",
        )


def _is_array(value: Any) -> bool:
    return type(value).__module__.partition(".")[0] in ("numpy", "torch") and hasattr(
        value, "tolist"
    )


def _list(ctx: _Context, path: str, value: Any) -> Any:
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        ctx.problem(path, f"must be a list, got {_describe(value)}")
    _plain_data(ctx, path, value)
    return value


def _bool(ctx: _Context, path: str, value: Any) -> Any:
    if not isinstance(value, bool):
        ctx.problem(path, f"must be true or false, got {_describe(value)}")
    return value


def _one_of(*choices: str) -> _Check:
    def check(ctx: _Context, path: str, value: Any) -> Any:
        if not (isinstance(value, str) and value in choices):
            hint = _did_you_mean(value, choices)
            ctx.problem(path, f"must be one of {_join(choices)}, got {_show(value)}{hint}")
        return value

    return check


def _int_at_least(low: int, why: str = "") -> _Check:
    def check(ctx: _Context, path: str, value: Any) -> Any:
        if not _is_int(value):
            ctx.problem(path, f"must be an integer >= {low}{why}, got {_describe(value)}")
        elif value < low:
            ctx.problem(path, f"must be an integer >= {low}{why}, got {value}")
        return value

    return check


def _number(ctx: _Context, path: str, value: Any) -> Any:
    if not _is_finite(value):
        ctx.problem(path, f"must be a finite number, got {_describe(value)}")
    return value


def _number_above(low: float) -> _Check:
    def check(ctx: _Context, path: str, value: Any) -> Any:
        if not _is_finite(value):
            ctx.problem(path, f"must be a number > {low}, got {_describe(value)}")
        elif value <= low:
            ctx.problem(path, f"must be > {low}, got {value}")
        return value

    return check


def _keyed(
    ctx: _Context,
    path: str,
    value: Any,
    checks: Mapping[str, _Check],
    *,
    required: Sequence[str] = (),
    extra_ok: bool = False,
) -> Any:
    """Check a mapping against a key table; returns a plain dict (or the bad value)."""
    if not isinstance(value, Mapping):
        ctx.problem(path, f"must be a mapping, got {_describe(value)}")
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        check = checks.get(key) if isinstance(key, str) else None
        if check is not None:
            out[key] = check(ctx, _child(path, key), item)
        elif extra_ok and isinstance(key, str):
            _plain_data(ctx, _child(path, key), item)
            out[key] = item
        else:
            _unknown_key(ctx, _child(path, key), key, tuple(checks))
    for key in required:
        if key not in value:
            ctx.problem(_child(path, key), "required")
    return out


# ---------------------------------------------------------------- metric


def _metric(ctx: _Context, path: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        ctx.problem(
            path,
            f"must be a mapping such as {{name: val_loss, goal: minimize}}, got {_describe(value)}",
        )
        return value
    checks: dict[str, _Check] = {
        "name": _metric_name,
        "goal": _one_of(*GOALS),
        "target": _number,
        "impute": _one_of(*IMPUTES),
        "impute_while_running": _impute_while_running,
    }
    out = _keyed(ctx, path, value, checks, required=("name",))
    for key, default in METRIC_DEFAULTS.items():
        out.setdefault(key, default)
    return out


def _metric_name(ctx: _Context, path: str, value: Any) -> Any:
    if not isinstance(value, str) or not value:
        ctx.problem(path, f"must be the non-empty name of a logged metric, got {_describe(value)}")
    return value


def _impute_while_running(ctx: _Context, path: str, value: Any) -> Any:
    # YAML turns a bare `false` into a bool; W&B's schema wants the string "false".
    if value is False:
        return "false"
    return _one_of(*IMPUTES_WHILE_RUNNING)(ctx, path, value)


def _metrics(ctx: _Context, path: str, value: Any) -> Any:
    if not isinstance(value, (list, tuple)):
        ctx.problem(path, f"must be a list of metrics, got {_describe(value)}")
        return value
    if len(value) < 2:
        ctx.problem(path, "must list at least 2 metrics (use 'metric' for one)")
    return [_metric(ctx, f"{path}[{i}]", item) for i, item in enumerate(value)]


# ---------------------------------------------------------------- early_terminate


class StopperSchema(NamedTuple):
    """One ``early_terminate.type``: its key checks, required keys, defaults, cross rules."""

    checks: Mapping[str, _Check]
    required: tuple[str, ...]
    defaults: Mapping[str, Any]
    cross: Callable[[_Context, str, dict[str, Any]], None]


def _hyperband_cross(ctx: _Context, path: str, spec: dict[str, Any]) -> None:
    has_min, has_max, has_s = ("min_iter" in spec), ("max_iter" in spec), ("s" in spec)
    if has_max and not has_s:
        ctx.problem(f"{path}.s", "required with max_iter (the number of bands)")
    elif not has_max and not has_min:
        ctx.problem(path, "hyperband needs min_iter, or max_iter and s")
    if has_max and has_min:
        ctx.warn(f"{path}.min_iter", "ignored: with max_iter given, max_iter and s set the bands")
    if has_s and not has_max and has_min:
        ctx.warn(f"{path}.s", "ignored without max_iter: min_iter and eta set the bands")
    max_iter, eta = spec.get("max_iter"), spec.get("eta")
    if has_max and has_s and _is_int(max_iter) and _is_finite(eta) and eta > 1 > max_iter / eta:
        # W&B's first band is max_iter/eta; below 1 there is no band and W&B raises.
        ctx.problem(
            f"{path}.max_iter",
            f"{max_iter} gives no band with eta {eta}: max_iter must be at least eta",
        )


def _asha_cross(ctx: _Context, path: str, spec: dict[str, Any]) -> None:
    low, high = spec.get("min_iter"), spec.get("max_iter")
    if _is_int(low) and _is_int(high) and high <= low:
        ctx.problem(f"{path}.max_iter", f"must be greater than min_iter ({low}), got {high}")


_S_IS_INT = " (W&B's hyperband crashes on a float such as 2.0)"

EARLY_TERMINATE: Mapping[str, StopperSchema] = {
    "hyperband": StopperSchema(
        checks={
            "min_iter": _int_at_least(1),
            "max_iter": _int_at_least(1),
            "s": _int_at_least(1, _S_IS_INT),
            "eta": _number_above(1),
            "strict": _bool,
        },
        required=(),
        defaults={"eta": 3, "strict": True},
        cross=_hyperband_cross,
    ),
    "asha": StopperSchema(
        checks={
            "min_iter": _int_at_least(1),
            "max_iter": _int_at_least(1),
            "eta": _number_above(1),
        },
        required=("min_iter",),
        defaults={"eta": 3},
        cross=_asha_cross,
    ),
    # ASHA's rungs, judged with a model of the metric against the iteration (docs/config.md).
    "multifidelity": StopperSchema(
        checks={
            "min_iter": _int_at_least(1),
            "max_iter": _int_at_least(2),
            "eta": _number_above(1),
        },
        required=("max_iter",),
        defaults={"eta": 3, "min_iter": 1},
        cross=_asha_cross,
    ),
}


def _early_terminate(ctx: _Context, path: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        ctx.problem(
            path,
            f"must be a mapping such as {{type: hyperband, min_iter: 3}}, got {_describe(value)}",
        )
        return value
    kind = value.get("type")
    types = tuple(EARLY_TERMINATE)
    if "type" not in value:
        ctx.problem(f"{path}.type", f"required: one of {_join(types)}")
    elif not (isinstance(kind, str) and kind in EARLY_TERMINATE):
        ctx.problem(
            f"{path}.type",
            f"must be one of {_join(types)}, got {_show(kind)}{_did_you_mean(kind, types)}",
        )
    if not (isinstance(kind, str) and kind in EARLY_TERMINATE):
        for key in value:
            if key != "type" and not any(key in s.checks for s in EARLY_TERMINATE.values()):
                _unknown_key(ctx, _child(path, key), key, ("type", *_all_stopper_keys()))
        return dict(value)
    schema = EARLY_TERMINATE[kind]
    rest = {k: v for k, v in value.items() if k != "type"}
    out = _keyed(ctx, path, rest, schema.checks, required=schema.required)
    for key, default in schema.defaults.items():
        out.setdefault(key, default)
    schema.cross(ctx, path, out)
    return {"type": kind, **out}


def _all_stopper_keys() -> list[str]:
    return sorted({key for schema in EARLY_TERMINATE.values() for key in schema.checks})


# ---------------------------------------------------------------- scheduler and friends


def _resource_args(ctx: _Context, path: str, value: Any) -> Any:
    out = _mapping(ctx, path, value)
    if isinstance(out, dict) and "env" in out:
        env = out["env"]
        if not isinstance(env, (list, tuple)) or not all(isinstance(v, str) for v in env):
            ctx.problem(
                f"{path}.env", f"must be a list of environment variable names, got {_describe(env)}"
            )
        else:
            out["env"] = list(env)
    return out


def _optuna_part(ctx: _Context, path: str, value: Any) -> Any:
    return _keyed(ctx, path, value, {"type": _string, "args": _mapping}, required=("type",))


def _scheduler_settings(ctx: _Context, path: str, value: Any) -> Any:
    return _keyed(ctx, path, value, {"pruner": _optuna_part, "sampler": _optuna_part})


# Entry points of this group declare schedulers (``nbsweep.schedulers`` loads them).
SCHEDULER_GROUP = "nbsweep.schedulers"
# Names ``nbsweep.register_scheduler`` registered in this process. The classes stay in
# ``nbsweep.schedulers``; validation, below it, needs only the names.
_registered_schedulers: set[str] = set()


def register_scheduler_name(name: str) -> None:
    """Let ``scheduler.engine`` name a scheduler registered in this process."""
    _registered_schedulers.add(name)


def known_scheduler_names() -> list[str]:
    """Every scheduler name this process can run: nbsweep's, declared ones, registered ones."""
    declared = (ep.name for ep in entry_points(group=SCHEDULER_GROUP))
    return sorted({"nbsweep", *declared, *_registered_schedulers})


def _engine(ctx: _Context, path: str, value: Any) -> Any:
    """W&B's engines, or the name of a scheduler registered here (``register_scheduler``)."""
    if isinstance(value, str) and (ctx.stored or value in ("optuna", "ax", "wandb")):
        return value
    return _one_of("optuna", "ax", "wandb", *known_scheduler_names())(ctx, path, value)


SCHEDULER_KEYS: Mapping[str, _Check] = {
    # W&B's engine schema (custom schedulers, `method: custom`), or a registered scheduler
    "engine": _engine,
    "source": _string,
    "optimizer": _string,
    "search_space": _string,
    # W&B Launch's scheduler job
    "num_workers": _int_at_least(1),
    "job": _string,
    "resource": _string,
    "resource_args": _resource_args,
    "docker_image": _string,
    "settings": _scheduler_settings,
    "priority": _one_of("low", "medium", "high"),
}


def _scheduler(ctx: _Context, path: str, value: Any) -> Any:
    out = _keyed(ctx, path, value, SCHEDULER_KEYS)
    if isinstance(out, dict):
        for key in ("optimizer", "search_space"):
            if key in out and "source" not in out:
                ctx.problem(f"{path}.source", f"required with {path}.{key}")
        if any(k in out for k in ("source", "optimizer", "search_space")) and "engine" not in out:
            ctx.problem(f"{path}.engine", "required with source, optimizer or search_space")
    return out


def external_scheduler(scheduler: Any) -> str | None:
    """The scheduler's name when it, not nbsweep's method, does the search (optuna, ax...)."""
    if not isinstance(scheduler, Mapping):
        return None
    engine, job = scheduler.get("engine"), scheduler.get("job")
    if isinstance(engine, str) and engine not in ("wandb", "nbsweep"):
        return engine
    if isinstance(job, str) and "optuna" in job.lower():
        return "optuna"
    return None


def _controller(ctx: _Context, path: str, value: Any) -> Any:
    return _keyed(
        ctx, path, value, {"type": _one_of("local", "cloud")}, required=("type",), extra_ok=True
    )


def _run_cap(ctx: _Context, path: str, value: Any) -> Any:
    # W&B's jsonschema takes 5.0 as an integer; keep that, but hand the engine an int.
    if _is_finite(value) and not _is_int(value) and value == math.floor(value):
        value = int(value)
    return _int_at_least(1)(ctx, path, value)


ROOT_KEYS: Mapping[str, _Check] = {
    "method": _one_of(*METHODS),
    "metric": _metric,
    "metrics": _metrics,
    "parameters": lambda ctx, path, value: _parameters(ctx, path, value, depth=0),
    "early_terminate": _early_terminate,
    "run_cap": _run_cap,
    "name": _string,
    "description": _string,
    "program": _string,
    "command": _list,
    "controller": _controller,
    "entity": _string,
    "project": _string,
    "job": _string,
    "image_uri": _string,
    "scheduler": _scheduler,
    "apiVersion": _string,
    "kind": _one_of("sweep"),
    "queue": _string,
    "launch": _mapping,
    "seed": _int_at_least(0),
}


# ---------------------------------------------------------------- parameters


def _parameters(ctx: _Context, path: str, value: Any, depth: int) -> Any:
    if not isinstance(value, Mapping):
        ctx.problem(path, f"must be a mapping of parameter names to specs, got {_describe(value)}")
        return value
    if not value:
        ctx.problem(path, "must not be empty: name at least one parameter")
    out: dict[str, Any] = {}
    for name, spec in value.items():
        sub = _child(path, name)
        if not isinstance(name, str):
            ctx.problem(sub, f"parameter names must be strings, got {_describe(name)}")
            continue
        if not NAME_PATTERN.fullmatch(name):
            ctx.problem(
                sub,
                "invalid parameter name: start with a letter or _, then use only "
                "letters, digits, _, . and -",
            )
        out[name] = _parameter(ctx, sub, spec, depth)
    return out


def _parameter(ctx: _Context, path: str, spec: Any, depth: int) -> Any:
    ctx.specs_seen += 1
    if ctx.specs_seen > MAX_PARAMETER_SPECS:
        if ctx.specs_seen == MAX_PARAMETER_SPECS + 1:
            ctx.problem(path, f"more than {MAX_PARAMETER_SPECS} parameter specs in all")
        return {}  # not the spec: walking it again is what the budget prevents
    if not isinstance(spec, Mapping):
        if isinstance(spec, (list, tuple)):
            hint = f"; to search these, write {{values: {_show(list(spec))}}}"
        else:
            hint = f"; to fix it, write {{value: {_show(spec)}}}"
        ctx.problem(
            path,
            f"must be a mapping such as {{values: [...]}} or {{min: 0, max: 1}}, "
            f"got {_describe(spec)}{hint}",
        )
        return spec
    for key in spec:
        if not isinstance(key, str):
            ctx.problem(_child(path, key), f"keys must be strings, got {_describe(key)}")
    if "when" not in spec:
        return _unconditional(ctx, path, spec, depth)
    out = _unconditional(ctx, path, {k: v for k, v in spec.items() if k != "when"}, depth)
    if isinstance(out, dict):
        out["when"] = _when(ctx, f"{path}.when", spec["when"])
    return out


def _when(ctx: _Context, path: str, value: Any) -> Any:
    """nbsweep's conditions: ``{parent: value or [values]}``, normalised to lists. Parents are
    resolved and checked once the whole block is known (``_conditional``)."""
    if not isinstance(value, Mapping) or not value:
        ctx.problem(
            path,
            "must map the parameters this one depends on to their values, such as "
            f"{{optimizer: sgd}} or {{num_layers: [2, 3]}}, got {_describe(value)}",
        )
        return value
    out: dict[str, Any] = {}
    for name, values in value.items():
        sub = _child(path, name)
        if not isinstance(name, str) or not all(
            NAME_PATTERN.fullmatch(part) for part in name.split("/")
        ):
            ctx.problem(sub, "must name a parameter (model/depth for one in a nested block)")
            continue
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if not values:
            ctx.problem(sub, "must list at least one value")
        _plain_data(ctx, sub, values)
        out[name] = values
    return out


def _unconditional(ctx: _Context, path: str, spec: Mapping[Any, Any], depth: int) -> Any:
    """A parameter spec or nested block, its ``when`` aside."""
    if "parameters" in spec:
        return _block(ctx, path, spec, depth)
    explicit = "distribution" in spec
    if explicit:
        dist = spec["distribution"]
        if not (isinstance(dist, str) and dist in DISTRIBUTIONS):
            ctx.problem(
                f"{path}.distribution",
                f"unknown distribution {_show(dist)}"
                f"{_did_you_mean(dist, tuple(DISTRIBUTIONS))}; one of: "
                f"{_join(tuple(DISTRIBUTIONS))}",
            )
            return dict(spec)
    else:
        for key in spec:
            if isinstance(key, str) and key not in PARAMETER_KEYS:
                _unknown_key(ctx, _child(path, key), key, PARAMETER_KEYS | {"when"})
        inferred = _infer(ctx, path, spec)
        if inferred is None:
            return dict(spec)
        dist = inferred
    return _leaf(ctx, path, spec, dist, explicit)


def _block(ctx: _Context, path: str, spec: Mapping[Any, Any], depth: int) -> Any:
    for key in spec:
        if key != "parameters" and isinstance(key, str):
            ctx.problem(
                _child(path, key),
                "a nested block takes only 'parameters' and 'when'; "
                "put distributions on the parameters inside it",
            )
    if depth + 1 >= MAX_NESTING:
        ctx.problem(path, f"parameter blocks nested more than {MAX_NESTING} deep")
        return {"parameters": {}}
    return {"parameters": _parameters(ctx, f"{path}.parameters", spec["parameters"], depth + 1)}


def _infer(ctx: _Context, path: str, spec: Mapping[Any, Any]) -> str | None:
    """The distribution W&B infers when none is given (spec §5.1), or None with a problem."""
    if "value" in spec:
        if "values" in spec:
            ctx.problem(
                path,
                "'value' and 'values' cannot be used together: 'value' fixes the "
                "parameter, 'values' lists the choices",
            )
            return None
        return "constant"
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if "min" in spec or "max" in spec:
        bounds = [spec[k] for k in ("min", "max") if k in spec]
        return "int_uniform" if all(_is_int(b) for b in bounds) else "uniform"
    given = sorted(k for k in spec if isinstance(k, str) and k in PARAMETER_KEYS)
    if given:
        fits = _fitting(given)
        ctx.problem(
            path,
            f"cannot infer the distribution from {_join(given)}; add "
            f"'distribution' (one of: {_join(fits) or _join(tuple(DISTRIBUTIONS))})",
        )
    elif not spec:  # otherwise its unknown keys were reported, with did-you-mean
        ctx.problem(
            path,
            "empty parameter spec: give value, values, min and max, "
            "distribution, or parameters (a nested block)",
        )
    return None


def _fitting(keys: Sequence[str]) -> list[str]:
    return [
        name
        for name, d in DISTRIBUTIONS.items()
        if set(keys) <= d.keys and name not in V1_LOG_DISTRIBUTIONS
    ]


def _leaf(ctx: _Context, path: str, spec: Mapping[Any, Any], dist: str, explicit: bool) -> Any:
    table = DISTRIBUTIONS[dist]
    stray = [
        k
        for k in spec
        if isinstance(k, str)
        and k in PARAMETER_KEYS
        and k != "distribution"
        and k not in table.keys
    ]
    for key in stray:
        if explicit:
            how = f"distribution {dist!r} takes only {_join(sorted(table.keys))}"
        else:
            fits = _fitting([k for k in spec if isinstance(k, str) and k in PARAMETER_KEYS])
            how = f"the inferred distribution {dist!r} takes only {_join(sorted(table.keys))}"
            if fits:
                how += f"; set distribution: {fits[0]} to use it"
        ctx.problem(_child(path, key), f"does not belong here: {how}")
    if explicit:
        for key in spec:
            if isinstance(key, str) and key not in PARAMETER_KEYS:
                known = table.keys | {"distribution", "when"}
                _unknown_key(ctx, _child(path, key), key, sorted(known))
    out: dict[str, Any] = {"distribution": dist}
    for key in table.required:
        if key not in spec:
            ctx.problem(_child(path, key), f"required by distribution {dist!r}")
        else:
            out[key] = _LEAF_CHECKS[key](ctx, _child(path, key), spec[key], dist)
    for key, default in table.defaults.items():
        out[key] = (
            _LEAF_CHECKS[key](ctx, _child(path, key), spec[key], dist) if key in spec else default
        )
    _leaf_cross(ctx, path, out, dist)
    return out


def _any(ctx: _Context, path: str, value: Any, dist: str) -> Any:
    _plain_data(ctx, path, value)
    return value


def _values(ctx: _Context, path: str, value: Any, dist: str) -> Any:
    if not isinstance(value, (list, tuple)):
        ctx.problem(path, f"must be a list of choices, got {_describe(value)}")
        return value
    if not value:
        ctx.problem(path, "'values' must not be empty")
    _plain_data(ctx, path, value)
    return list(value)


def _probabilities(ctx: _Context, path: str, value: Any, dist: str) -> Any:
    if not isinstance(value, (list, tuple)):
        ctx.problem(path, f"must be a list of numbers, got {_describe(value)}")
        return value
    for i, p in enumerate(value):
        if not _is_finite(p) or p < 0:
            ctx.problem(f"{path}[{i}]", f"must be a number >= 0, got {_describe(p)}")
    return list(value)


def _bound(ctx: _Context, path: str, value: Any, dist: str) -> Any:
    if dist == "int_uniform":
        if not _is_int(value):
            ctx.problem(
                path,
                f"must be an integer for int_uniform (use distribution: uniform "
                f"for real numbers), got {_describe(value)}",
            )
    elif not _is_finite(value):
        ctx.problem(path, f"must be a finite number, got {_describe(value)}")
    return value


def _leaf_number(low: float | None, strict: bool) -> Callable[..., Any]:
    def check(ctx: _Context, path: str, value: Any, dist: str) -> Any:
        if not _is_finite(value):
            ctx.problem(path, f"must be a finite number, got {_describe(value)}")
        elif low is not None and (value <= low if strict else value < low):
            ctx.problem(path, f"must be {'>' if strict else '>='} {low}, got {value}")
        return value

    return check


_LEAF_CHECKS: Mapping[str, Callable[[_Context, str, Any, str], Any]] = {
    "value": _any,
    "values": _values,
    "probabilities": _probabilities,
    "min": _bound,
    "max": _bound,
    "q": _leaf_number(0, strict=True),
    "mu": _leaf_number(None, strict=False),
    "sigma": _leaf_number(0, strict=False),
    "a": _leaf_number(0, strict=False),
    "b": _leaf_number(0, strict=False),
}


def _leaf_cross(ctx: _Context, path: str, leaf: dict[str, Any], dist: str) -> None:
    low, high = leaf.get("min"), leaf.get("max")
    bounds_ok = _is_finite(low) and _is_finite(high)
    if bounds_ok and low >= high:
        ctx.problem(path, f"min {low} is not less than max {high}")
    if dist in POSITIVE_MIN_DISTRIBUTIONS and _is_finite(low) and low <= 0:
        ctx.problem(f"{path}.min", f"must be > 0 for {dist} (its logarithm is taken), got {low}")
    if dist == "categorical_w_probabilities":
        values, probs = leaf.get("values"), leaf.get("probabilities")
        if isinstance(values, list) and isinstance(probs, list):
            if len(values) != len(probs):
                ctx.problem(
                    f"{path}.probabilities",
                    f"has {len(probs)} entries but values has "
                    f"{len(values)}; give one probability per value",
                )
            elif all(_is_finite(p) for p in probs):
                total = math.fsum(float(p) for p in probs)
                # the tolerance of np.isclose(total, 1.0), which W&B uses
                if not abs(total - 1.0) <= 1e-8 + 1e-5:
                    ctx.problem(f"{path}.probabilities", f"must sum to 1, sums to {total:.6g}")
    if dist in V1_LOG_DISTRIBUTIONS and bounds_ok:
        ctx.warn(path, _v1_message(dist, low, high, leaf))


def _v1_message(dist: str, low: float, high: float, leaf: Mapping[str, Any]) -> str:
    replacement = V1_LOG_DISTRIBUTIONS[dist]
    if dist == "inv_log_uniform":  # log(1/X) ~ U(min, max): X in [e^-max, e^-min]
        new_low, new_high = _exp(-high), _exp(-low)
    else:
        new_low, new_high = _exp(low), _exp(high)
    q = f", q: {leaf['q']}" if "q" in leaf else ""
    head = f"{dist!r} takes natural-log exponents as min/max and is deprecated; "
    same = f"use {replacement!r} with min: {new_low:.6g}, max: {new_high:.6g}{q}"
    if low <= 0:
        return head + same
    # Positive exponents are rare; most likely the bounds were meant as the values.
    return (
        f"{head}as written it samples between {new_low:.6g} and {new_high:.6g}. If "
        f"{low:.6g} and {high:.6g} are the values you meant, use {replacement!r} with "
        f"min: {low:.6g}, max: {high:.6g}{q}; to keep this range, {same}"
    )


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


# ---------------------------------------------------------------- whole config


def _leaves(params: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, leaf) for every normalised leaf, nested blocks included."""
    if not isinstance(params, dict):
        return
    for name, spec in params.items():
        if not isinstance(spec, dict):
            continue
        if "parameters" in spec and "distribution" not in spec:
            yield from _leaves(spec["parameters"], f"{path}.{name}.parameters")
        elif spec.get("distribution") in DISTRIBUTIONS:
            yield f"{path}.{name}", spec


def _cross(ctx: _Context, raw: Mapping[str, Any], out: dict[str, Any]) -> None:
    """Rules that tie keys together (spec §2, §3.1) and the checks W&B defers to a crash."""
    scheduler = out.get("scheduler")
    external = external_scheduler(scheduler)
    if "method" not in raw:
        if external is not None:
            out["method"] = "custom"  # the scheduler searches; nbsweep's method is moot
        else:
            ctx.problem("method", f"required: one of {_join(METHODS)}")
    search_space = scheduler.get("search_space") if isinstance(scheduler, Mapping) else None
    if "parameters" not in raw and not (isinstance(search_space, str) and search_space):
        ctx.problem("parameters", "required (unless scheduler.search_space names a search space)")
    method = out.get("method")
    if "metric" in raw and "metrics" in raw:
        ctx.problem("metrics", "cannot be used together with metric; keep one")
    if "metrics" in raw and method != "custom":
        ctx.problem("metrics", "only method: custom uses several metrics; use metric")
    if external is not None:
        if "early_terminate" in raw:
            ctx.problem(
                "early_terminate",
                f"the {external} scheduler stops runs itself "
                "(scheduler.settings.pruner); remove early_terminate",
            )
        controller = out.get("controller")
        if isinstance(controller, Mapping) and controller.get("type") == "local":
            ctx.problem("controller.type", f"'local' cannot drive the {external} scheduler")
    if "early_terminate" in raw and "metric" not in raw:
        ctx.problem("early_terminate", "needs metric: early termination compares runs on it")
    leaves = list(_leaves(out.get("parameters"), "parameters"))
    conditional = _has_when(out.get("parameters"))
    if method == "grid":
        for path, leaf in leaves:
            if leaf["distribution"] not in GRID_DISTRIBUTIONS:
                ctx.problem(
                    path,
                    f"grid search cannot enumerate {leaf['distribution']!r}; "
                    "use values: [...], int_uniform, q_uniform or value, or another "
                    "method (random, bayes)",
                )
        if not ctx.stored:  # a stored sweep may predate the limit: it can still be read
            _grid_bounds(ctx, leaves, conditional)
    if method == "bayes" and not ctx.stored:
        for path, leaf in leaves:
            values = leaf.get("values")
            if isinstance(values, list) and len(values) > MAX_BAYES_CATEGORIES:
                ctx.problem(
                    f"{path}.values",
                    f"{len(values):,} values are more than the {MAX_BAYES_CATEGORIES:,} bayes "
                    "search can encode; use int_uniform for a range of numbers, or method random",
                )
    if method == "bayes":
        if "metric" not in raw:
            ctx.problem("metric", "required by bayes search: add {name: ..., goal: ...}")
        if leaves and all(leaf["distribution"] == "constant" for _, leaf in leaves):
            ctx.problem(
                "parameters", "bayes search needs at least one parameter that is not constant"
            )
    if conditional:
        _conditional(ctx, out, external)


def _has_when(params: Any) -> bool:
    """Whether any parameter or nested block of ``params`` has a ``when``."""
    return isinstance(params, dict) and any(
        isinstance(spec, dict)
        and ("when" in spec or ("distribution" not in spec and _has_when(spec.get("parameters"))))
        for spec in params.values()
    )


def _conditional(ctx: _Context, out: Mapping[str, Any], external: str | None) -> None:
    """Resolve and check every ``when`` (unknown parents, values a parent cannot take,
    cycles), and count a conditional grid exactly."""
    from nbsweep.space import MAX_GRID_POINTS, Space, format_count

    method = out.get("method")
    if external is not None or method == "custom":
        ctx.problem(
            "parameters",
            "conditional parameters (when) are searched by method grid, random or bayes; "
            f"the {external or 'custom'} scheduler does not take them",
        )
        return
    if ctx.problems:  # the space is built from valid specs only; these come first
        return
    try:
        space = Space.from_parameters(out["parameters"])
    except ConfigError as exc:
        ctx.problems.extend(exc.problems)
        return
    if method == "grid" and not ctx.stored:
        size = space.grid_size()
        if size > MAX_GRID_POINTS:
            ctx.problem(
                "parameters",
                f"the grid has at least {format_count(size)} valid combinations, more than "
                f"the {MAX_GRID_POINTS:,} a grid may have; {_NARROW}",
            )


_NARROW = "narrow min/max, raise q, list fewer values, or sample with method random or bayes"


def _grid_bounds(
    ctx: _Context, leaves: list[tuple[str, dict[str, Any]]], conditional: bool
) -> None:
    """Refuse a grid of more than ``MAX_GRID_POINTS`` points, counted from its axes' bounds
    (an ``int_uniform`` over 0..10^12 is a count here, never a list). A conditional grid's
    total is its valid combinations, counted once its conditions are checked."""
    from nbsweep.space import MAX_GRID_POINTS, format_count

    axes = [(path, _grid_axis(leaf)) for path, leaf in leaves]
    sized = [(path, n) for path, n in axes if n is not None and n > 1]
    too_big = [(path, n) for path, n in sized if n > MAX_GRID_POINTS]
    for path, n in too_big:
        ctx.problem(
            path,
            f"grid search would list {format_count(n)} values here, more than the "
            f"{MAX_GRID_POINTS:,} points a grid may have; {_NARROW}",
        )
    total = math.prod(n for _, n in sized)
    if not too_big and not conditional and total > MAX_GRID_POINTS:
        axes_shown = " x ".join(f"{path} ({n:,})" for path, n in sized)
        ctx.problem(
            "parameters",
            f"the grid has {format_count(total)} points ({axes_shown}), more than the "
            f"{MAX_GRID_POINTS:,} a grid may have; {_NARROW}",
        )


def _grid_axis(leaf: Mapping[str, Any]) -> int | None:
    """How many values grid search lists for a leaf; None when its keys are already refused."""
    from nbsweep.space import grid_count

    dist, low, high, q = (leaf.get(k) for k in ("distribution", "min", "max", "q"))
    if dist == "categorical" and isinstance(leaf.get("values"), list):
        return grid_count(leaf)
    if dist == "int_uniform" and _is_int(low) and _is_int(high):
        return grid_count(leaf)
    if dist == "q_uniform" and all(_is_finite(v) for v in (low, high, q)) and q > 0:
        return grid_count(leaf)
    return None


def _bounded(config: Mapping[Any, Any]) -> None:
    """Refuse a config that contains itself, or that holds more than ``MAX_CONFIG_VALUES``
    values counting a shared part each time it appears (a list holding the same list twice,
    30 deep, is a Python "billion laughs"). Checked before anything walks the config for real:
    writing it to the store would expand it."""
    count = 0
    inside: set[int] = set()  # the mappings and lists the walk is in now
    stack: list[tuple[Any, str, bool]] = [(config, "", False)]
    while stack:
        value, path, leaving = stack.pop()
        if leaving:
            inside.discard(id(value))
            continue
        count += math.prod(getattr(value, "shape", ())) if _is_array(value) else 1
        if count > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"{path or 'the config'}: the config holds more than {MAX_CONFIG_VALUES:,} "
                "values, counting a part it shares each time it appears"
            )
        if isinstance(value, Mapping):
            items = [(item, _child(path, key) if path else str(key)) for key, item in value.items()]
        elif isinstance(value, (list, tuple)):
            items = [(item, f"{path}[{i}]") for i, item in enumerate(value)]
        else:
            continue
        if id(value) in inside:
            raise ConfigError(
                f"{path}: contains itself (this {type(value).__name__} is one it lies in); "
                "a config must be a tree of values"
            )
        inside.add(id(value))
        stack.append((value, path, True))
        stack.extend((item, where, False) for item, where in reversed(items))


def _to_mapping(config: Any) -> Mapping[Any, Any]:
    if isinstance(config, Mapping):
        try:
            return copy.deepcopy(config)
        except RecursionError:
            raise ConfigError("the config is nested too deeply to copy") from None
        except Exception as exc:  # noqa: BLE001 - any uncopyable object in a user's dict
            raise ConfigError(f"the config holds a value that cannot be copied ({exc})") from None
    if isinstance(config, (str, os.PathLike)):
        loaded = load_yaml(config)
        if isinstance(loaded, Mapping):
            return loaded
        shown = "an empty document" if loaded is None else _describe(loaded)
        raise ConfigError(
            f"the sweep config must be a mapping of keys (method, metric, parameters, ...), "
            f"got {shown}"
        )
    raise ConfigError(
        f"the sweep config must be a dict, YAML text or a path to a .yaml file, "
        f"got {_describe(config)}"
    )


def normalise(
    config: Mapping[str, Any] | str | os.PathLike[str], *, stored: bool = False, quiet: bool = False
) -> dict[str, Any]:
    """The config normalised: distributions inferred and defaults filled in.

    The caller's dict is never changed. Every problem is reported at once in one
    ``ConfigError``; a config that runs but probably not as meant emits a ``ConfigWarning``
    (pointing at the caller of ``validate``) unless ``quiet``. ``stored``: a config read back
    from the store, validated when its sweep was made; its scheduler may be registered in
    another process only.
    """
    raw = _to_mapping(config)
    if not stored:  # stored configs were checked when their sweeps were made
        _bounded(raw)
    ctx = _Context(stored)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        check = ROOT_KEYS.get(key) if isinstance(key, str) else None
        if check is None:
            if isinstance(key, str):
                _unknown_key(ctx, key, key, tuple(ROOT_KEYS))
            else:
                ctx.problem(_show(key), f"keys must be strings, got {_describe(key)}")
            continue
        out[key] = check(ctx, key, value)
    _cross(ctx, raw, out)
    if not quiet:
        for message in ctx.warnings:
            warnings.warn(ConfigWarning(message), stacklevel=3)
    if ctx.problems:
        raise ConfigError(ctx.problems)
    return out
