"""Bounded validation: configs that would exhaust memory are refused with a ConfigError.

A grid is counted, never listed; YAML aliases and Python dicts with shared parts are counted
as they expand; values JSON cannot keep (YAML dates, ``!!binary``) are refused with their key.
Each test that could exhaust memory without its fix runs in a child process whose address
space is capped, so a regression fails cleanly instead of waking the OOM killer.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbsweep.config import ConfigError, ConfigWarning, SweepConfig, load_yaml, validate
from nbsweep.config._yaml import MAX_CONFIG_VALUES
from nbsweep.space import MAX_GRID_POINTS, Parameter

REPO = Path(__file__).resolve().parents[2]
MEMORY_CAP = 2 << 30  # bytes of address space for a child; importing nbsweep needs ~1 GiB


def problems(config: Any) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        with pytest.raises(ConfigError) as info:
            validate(config)
    return info.value.problems


def grid(**parameters: Any) -> dict[str, Any]:
    return {"method": "grid", "parameters": parameters}


def in_capped_process(code: str) -> str:
    """Run ``code`` in a child limited to ``MEMORY_CAP``; its stdout, or the test fails."""
    prelude = (
        f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({MEMORY_CAP}, {MEMORY_CAP}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def config_error_of(call: str, setup: str = "") -> str:
    """The ConfigError message ``call`` raises in a capped child (or what it did instead)."""
    head = "from nbsweep.config import ConfigError, SweepConfig, load_yaml, validate\n"
    head += "from nbsweep.space import Space\n"
    tail = f"""
try:
    result = {call}
except ConfigError as error:
    print("ConfigError:", error)
else:
    print("returned:", type(result).__name__)
"""
    return in_capped_process(head + textwrap.dedent(setup) + tail)


# ---------------------------------------------------------------- grids


def test_a_grid_over_a_huge_int_uniform_is_refused_naming_it_and_its_count() -> None:
    (problem,) = problems(grid(x={"min": 0, "max": 10**12}))
    assert problem.startswith("parameters.x: ")
    assert "1,000,000,000,001" in problem
    assert f"{MAX_GRID_POINTS:,}" in problem


def test_a_grid_over_a_tiny_q_is_refused() -> None:
    (problem,) = problems(grid(lr={"distribution": "q_uniform", "min": 0, "max": 1, "q": 1e-12}))
    assert problem.startswith("parameters.lr: ")
    assert "1,000,000,000,000" in problem


def test_a_grid_whose_product_is_too_large_names_every_axis_and_the_count() -> None:
    config = grid(
        a={"min": 1, "max": 1000},
        b={"parameters": {"c": {"min": 1, "max": 1000}}},
        d={"values": [1, 2]},
        e={"value": "constant"},
    )
    (problem,) = problems(config)
    assert problem.startswith("parameters: ")
    assert "2,000,000" in problem
    for name in ("parameters.a", "parameters.b.parameters.c", "parameters.d"):
        assert name in problem
    assert "parameters.e" not in problem


def test_a_grid_at_the_limit_is_accepted_and_counted_without_listing_it() -> None:
    config = validate(grid(a={"min": 1, "max": 1000}, b={"min": 1, "max": 1000}))
    assert config.grid_size == MAX_GRID_POINTS


def test_other_methods_may_sample_from_huge_ranges() -> None:
    config = validate({"method": "random", "parameters": {"x": {"min": 0, "max": 10**12}}})
    assert config.grid_size is None
    assert 0 <= config.space.sample(np.random.default_rng(0))["x"] <= 10**12


def test_bayes_refuses_a_categorical_too_large_to_encode() -> None:
    values = list(range(20_000))
    config = {
        "method": "bayes",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": values}},
    }
    (problem,) = problems(config)
    assert problem.startswith("parameters.x.values: ")
    assert "20,000" in problem
    random = validate({**config, "method": "random"})
    assert random.space.sample(np.random.default_rng(0))["x"] in values


def test_grid_size_of_a_stored_huge_grid_is_counted_not_listed() -> None:
    # A sweep stored before the limit can still be opened and its size shown.
    out = in_capped_process(
        """
        from nbsweep.config import SweepConfig
        spec = {"distribution": "int_uniform", "min": 0, "max": 10**12}
        config = SweepConfig.from_stored({"method": "grid", "parameters": {"x": spec}})
        print(config.grid_size)
        q = {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 1e-12}
        print(SweepConfig.from_stored({"method": "grid", "parameters": {"x": q}}).grid_size)
        """
    )
    assert out.split() == [str(10**12 + 1), str(10**12)]


@pytest.mark.parametrize(
    "spec",
    [
        {"distribution": "int_uniform", "min": 0, "max": 10**12},
        {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 1e-12},
    ],
)
def test_enumerating_a_huge_parameter_is_a_config_error(spec: dict[str, Any]) -> None:
    out = config_error_of(
        "Space.from_parameters({'x': spec}).parameters[0].grid_values()", f"spec = {spec!r}"
    )
    assert out.startswith("ConfigError:"), out
    assert "parameters.x: " in out and f"{MAX_GRID_POINTS:,}" in out


def test_grid_search_over_a_stored_huge_grid_is_a_config_error() -> None:
    out = config_error_of(
        "GridSearch(config)",
        """
        from nbsweep.search import GridSearch
        spec = {"distribution": "int_uniform", "min": 0, "max": 10**12}
        config = SweepConfig.from_stored({"method": "grid", "parameters": {"x": spec}})
        """,
    )
    assert out.startswith("ConfigError:"), out
    assert "parameters.x: " in out


@settings(max_examples=200, deadline=None)
@given(
    low=st.integers(-50, 50) | st.floats(-50, 50),
    span=st.floats(1e-3, 100),
    q=st.floats(1e-2, 10) | st.integers(1, 10),
)
def test_q_uniform_is_counted_as_numpy_lists_it(low: float, span: float, q: float) -> None:
    spec = {"distribution": "q_uniform", "min": low, "max": low + span, "q": q}
    parameter = Parameter(("x",), spec)
    assert parameter.grid_count() == len(np.arange(low, low + span, q))


@settings(max_examples=100, deadline=None)
@given(low=st.integers(-(10**15), 10**15), span=st.integers(1, 10**15))
def test_int_uniform_is_counted_exactly(low: int, span: int) -> None:
    spec = {"distribution": "int_uniform", "min": low, "max": low + span}
    assert Parameter(("x",), spec).grid_count() == span + 1


# ---------------------------------------------------------------- YAML and dict bombs


def laughs(levels: int = 9, width: int = 10) -> str:
    """Billion laughs: each level lists the previous one ``width`` times (10**9 values)."""
    lines = ["method: random", "parameters:", "  x:", "    value: &l0 lol"]
    anchors = ["  y:", "    value:"]
    for i in range(1, levels + 1):
        refs = ", ".join([f"*l{i - 1}"] * width)
        anchors.append(f"      - &l{i} [{refs}]")
    return "\n".join(lines + anchors) + f"\n  z:\n    value: *l{levels}\n"


def test_a_yaml_alias_bomb_is_refused_when_loaded() -> None:
    out = config_error_of("load_yaml(text)", f"text = {laughs()!r}")
    assert out.startswith("ConfigError:"), out
    assert f"{MAX_CONFIG_VALUES:,}" in out and "line " in out


def test_a_yaml_alias_bomb_is_refused_by_validate() -> None:
    out = config_error_of("validate(text)", f"text = {laughs()!r}")
    assert out.startswith("ConfigError:"), out


def test_a_yaml_merge_key_bomb_is_refused() -> None:
    # ``<<`` copies the merged pairs: each level doubles them in PyYAML before 6.0.2's dedupe.
    lines = ["a0: &a0 {k: 1}"]
    lines += [f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}]}}" for i in range(1, 40)]
    out = config_error_of("load_yaml(text)", f"text = {chr(10).join(lines)!r}")
    assert out.startswith("ConfigError:"), out


def test_a_yaml_alias_inside_its_own_anchor_is_refused() -> None:
    with pytest.raises(ConfigError, match="line 1, column"):
        load_yaml("a: &a [1, *a]\n")


def test_yaml_that_uses_aliases_modestly_still_loads() -> None:
    text = "method: grid\nparameters:\n  a: &c {values: [1, 2]}\n  b: *c\n"
    assert validate(text).grid_size == 4


def test_a_dict_with_shared_parts_is_counted_as_it_expands() -> None:
    out = config_error_of(
        "validate(config)",
        """
        node = ["lol"]
        for _ in range(40):
            node = [node, node]
        config = {"method": "random", "parameters": {"x": {"value": node}}}
        """,
    )
    assert out.startswith("ConfigError:"), out
    assert "parameters.x.value" in out


def test_a_dict_that_contains_itself_is_refused() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    (problem,) = problems({"method": "random", "parameters": {"x": {"value": loop}}})
    assert problem.startswith("parameters.x.value[1]: ")
    assert "contains itself" in problem


# ---------------------------------------------------------------- non-JSON values


@pytest.mark.parametrize(
    ("yaml_value", "path", "kind"),
    [
        ("{value: 2024-01-01}", "parameters.x.value", "date"),
        ("{value: 2001-12-14t21:59:43.10-05:00}", "parameters.x.value", "datetime"),
        ("{value: !!binary aGVsbG8=}", "parameters.x.value", "bytes"),
        ("{value: !!set {a, b}}", "parameters.x.value", "set"),
        ("{values: [1, 2024-01-01]}", "parameters.x.values[1]", "date"),
        ("{value: {when: 2024-01-01}}", "parameters.x.value.when", "date"),
        ("{value: {2024-01-01: a}}", "parameters.x.value", "date"),
    ],
)
def test_yaml_values_json_cannot_keep_are_refused_naming_the_key(
    yaml_value: str, path: str, kind: str
) -> None:
    (problem,) = problems(f"method: random\nparameters:\n  x: {yaml_value}\n")
    assert problem.startswith(f"{path}: "), problem
    assert kind in problem


def test_non_json_values_in_other_free_form_keys_are_refused() -> None:
    config = {
        "method": "random",
        "parameters": {"x": {"value": 1}},
        "command": ["python", b"train.py"],
        "launch": {"when": datetime.date(2024, 1, 1)},
        "scheduler": {"resource_args": {"tags": {1, 2}}},
    }
    found = problems(config)
    assert [p.split(":")[0] for p in found] == [
        "command[1]",
        "launch.when",
        "scheduler.resource_args.tags",
    ]


def test_numpy_values_are_kept() -> None:
    config = validate(
        {"method": "random", "parameters": {"x": {"values": [np.int64(1), np.float32(2.5)]}}}
    )
    assert json.loads(json.dumps(config.as_dict(), default=lambda v: v.item()))


def test_a_validated_config_is_plain_json() -> None:
    text = "method: grid\nparameters:\n  x: {values: [1, 2.5, 'a', null, true, [1], {k: v}]}\n"
    config = validate(text)
    assert json.loads(json.dumps(config.as_dict())) == config
    assert config.grid_size == 7


def test_stored_configs_are_read_back_as_they_were() -> None:
    spec = {"distribution": "int_uniform", "min": 0, "max": 10**7}
    stored = {"method": "grid", "parameters": {"x": spec}}
    assert SweepConfig.from_stored(stored).grid_size == 10**7 + 1
