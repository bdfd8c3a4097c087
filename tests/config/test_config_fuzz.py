"""Property: whatever it is fed, validate() raises nothing but ConfigError (warnings allowed).

And whatever it returns validates again to itself, and holds only what JSON keeps (string
keys; strings, numbers, bools, None, lists and mappings), so the store never writes a repr.
"""

from __future__ import annotations

import datetime
import math
import warnings
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbsweep.config import DISTRIBUTIONS, ConfigError, ConfigWarning, validate
from nbsweep.config._validate import EARLY_TERMINATE, ROOT_KEYS, SCHEDULER_KEYS

# The key vocabulary of real configs, so generated dicts reach deep into the checks.
VOCABULARY = sorted(
    set(ROOT_KEYS)
    | set(SCHEDULER_KEYS)
    | {key for spec in DISTRIBUTIONS.values() for key in spec.keys}
    | {key for schema in EARLY_TERMINATE.values() for key in schema.checks}
    | {"distribution", "parameters", "name", "goal", "target", "impute", "type", "env"}
    | {"impute_while_running", "pruner", "sampler", "args", "settings", "resource_args"}
)
WORDS = sorted(
    set(DISTRIBUTIONS)
    | set(EARLY_TERMINATE)
    | {"grid", "random", "bayes", "custom", "minimize", "maximize", "worst", "best", "latest"}
    | {"false", "local", "cloud", "optuna", "ax", "wandb", "sweep", "low", "high"}
    | {"wandb/sweep-jobs/job-optuna-sweep-scheduler:latest"}
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-3, max_value=30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 0.5, 1.0, 1.5, 1e-5, -1.0, math.inf, math.nan]),
    st.text(max_size=8),
    st.sampled_from(WORDS),
    # what YAML or a Python dict may hold that JSON cannot: YAML dates, !!binary, !!set
    st.dates(),
    st.binary(max_size=3),
    st.sets(st.integers(0, 3), max_size=2),
)
keys = st.one_of(
    st.sampled_from(VOCABULARY),
    st.sampled_from(VOCABULARY),  # twice as likely as random text
    st.text(max_size=8),
    st.integers(min_value=-2, max_value=2),
    st.dates(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=15,
)
configs = st.dictionaries(st.sampled_from(sorted(ROOT_KEYS)) | keys, values, max_size=8)

# Near-valid configs, so that the success paths (inference, defaults, cross rules) run too.
numbers = st.one_of(
    st.integers(min_value=-2, max_value=10),
    st.sampled_from([0.0, 0.5, 1.0, 2.5, 1e-5, -1.0, math.inf, math.nan, True]),
)
names = st.sampled_from(["a", "b", "x.y", "1a", "_c-d"])
leaf_specs = st.one_of(
    st.fixed_dictionaries(
        {"distribution": st.sampled_from(sorted(DISTRIBUTIONS))},
        optional={key: numbers for key in ("min", "max", "q", "mu", "sigma", "a", "b")},
    ),
    st.fixed_dictionaries({}, optional={"min": numbers, "max": numbers, "value": scalars}),
    st.fixed_dictionaries(
        {"values": st.lists(scalars, max_size=3)},
        optional={"probabilities": st.lists(numbers, max_size=3)},
    ),
)
param_specs = st.recursive(
    leaf_specs,
    lambda inner: st.fixed_dictionaries({"parameters": st.dictionaries(names, inner, max_size=3)}),
    max_leaves=6,
)
shaped = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["grid", "random", "bayes", "custom"]),
        "parameters": st.dictionaries(names, param_specs, max_size=3),
    },
    optional={
        "metric": st.fixed_dictionaries(
            {"name": st.sampled_from(["loss", ""])},
            optional={"goal": st.sampled_from(["minimize", "maximize", "maximise"])},
        ),
        "early_terminate": st.fixed_dictionaries(
            {"type": st.sampled_from(sorted(EARLY_TERMINATE))},
            optional={key: numbers for key in ("min_iter", "max_iter", "s", "eta")},
        ),
        "run_cap": numbers,
        "seed": numbers,
        "scheduler": st.fixed_dictionaries(
            {}, optional={"num_workers": numbers, "job": st.sampled_from(WORDS)}
        ),
    },
)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_config_errors(config: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        try:
            out = validate(config)
        except ConfigError as error:
            assert error.problems
            assert all(isinstance(p, str) and p for p in error.problems)
            return
    assert out["method"] in ("grid", "random", "bayes", "custom")
    assert_plain(out.as_dict())
    # a normalised config is a valid config, and normalising it again changes nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        assert validate(out) == out


def assert_plain(value: Any) -> None:
    if isinstance(value, dict):
        assert all(isinstance(key, str) for key in value), value
        for item in value.values():
            assert_plain(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            assert_plain(item)
    else:
        assert value is None or isinstance(value, (str, int, float)), value
        assert not isinstance(value, datetime.date), value


@FUZZ
@given(configs)
def test_any_dict_gives_a_config_or_a_config_error(config: dict[Any, Any]) -> None:
    only_config_errors(config)


@settings(max_examples=150, deadline=None)
@given(shaped)
def test_near_valid_configs_give_a_config_or_a_config_error(config: dict[str, Any]) -> None:
    only_config_errors(config)


@FUZZ
@given(values)
def test_any_value_gives_a_config_or_a_config_error(config: Any) -> None:
    only_config_errors(config)


@FUZZ
@given(configs)
def test_any_dumped_yaml_gives_a_config_or_a_config_error(config: dict[Any, Any]) -> None:
    only_config_errors(yaml.safe_dump(config) + "\n")


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(":-[]{}!&*#|>'\"%@`,?\n\t .e1ab")), max_size=40))
def test_yaml_like_text_gives_a_config_or_a_config_error(text: str) -> None:
    only_config_errors(text + "\n")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    only_config_errors(text + "\n")
