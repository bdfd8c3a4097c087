"""Conditional parameters (``when``): how they are written, normalised and refused."""

from __future__ import annotations

from typing import Any

import pytest

import nbsweep
from nbsweep import ConfigError

BASE: dict[str, Any] = {
    "optimizer": {"values": ["adam", "sgd"]},
    "lr": {"min": 0.001, "max": 0.1},
    "layers": {"min": 1, "max": 3},
}


def config(method: str = "random", **parameters: Any) -> dict[str, Any]:
    return {"method": method, "parameters": {**BASE, **parameters}}


def problems(**parameters: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        nbsweep.validate(config(**parameters))
    return caught.value.problems


def test_when_is_normalised_to_lists_of_values() -> None:
    cfg = nbsweep.validate(config(momentum={"min": 0.0, "max": 0.9, "when": {"optimizer": "sgd"}}))
    assert cfg["parameters"]["momentum"] == {
        "distribution": "uniform",
        "min": 0.0,
        "max": 0.9,
        "when": {"optimizer": ["sgd"]},
    }


def test_a_config_without_when_is_unchanged() -> None:
    cfg = nbsweep.validate(config())
    assert not cfg.space.conditional
    assert all("when" not in spec for spec in cfg["parameters"].values())


def test_a_nested_block_takes_when() -> None:
    block = {"when": {"optimizer": "sgd"}, "parameters": {"momentum": {"min": 0.0, "max": 0.9}}}
    cfg = nbsweep.validate(config(sgd=block))
    (momentum,) = [p for p in cfg.space.parameters if p.name == "sgd/momentum"]
    assert [c.parent for c in momentum.when] == [("optimizer",)]


def test_unknown_parent_names_the_key_path_with_a_suggestion() -> None:
    found = problems(momentum={"min": 0.0, "max": 0.9, "when": {"optimiser": "sgd"}})
    assert found == [
        "parameters.momentum.when.optimiser: no parameter 'optimiser' to depend on; "
        "did you mean 'optimizer'?"
    ]


def test_a_value_the_parent_cannot_take_is_refused() -> None:
    (found,) = problems(momentum={"min": 0.0, "max": 0.9, "when": {"optimizer": "sgdd"}})
    assert found.startswith("parameters.momentum.when.optimizer: 'sgdd' is not a value of")
    assert "['adam', 'sgd']" in found
    (found,) = problems(units={"values": [8, 16], "when": {"layers": [2, 4]}})
    assert found.startswith("parameters.units.when.layers: 4 is not a value")


def test_a_continuous_parent_is_refused() -> None:
    (found,) = problems(momentum={"min": 0.0, "max": 0.9, "when": {"lr": 0.01}})
    assert found.startswith("parameters.momentum.when.lr: parameters.lr is 'uniform'")


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (
            {"a": {"values": [1, 2], "when": {"b": 1}}, "b": {"values": [1, 2], "when": {"a": 1}}},
            "parameters.a.when: the conditions form a cycle (a -> b -> a)",
        ),
        ({"a": {"values": [1, 2], "when": {"a": 1}}}, "parameters.a.when: 'a' depends on itself"),
        (
            {"m": {"when": {"m/x": 1}, "parameters": {"x": {"values": [1, 2]}}}},
            "parameters.m.when.m/x: 'm/x' lies inside what it would switch on and off",
        ),
    ],
)
def test_cycles_are_refused(parameters: dict[str, Any], expected: str) -> None:
    assert problems(**parameters) == [expected]


def test_parents_are_looked_up_in_the_block_then_outwards() -> None:
    model = {
        "parameters": {
            "kind": {"values": ["cnn", "mlp"]},
            "kernel": {"values": [3, 5], "when": {"kind": "cnn"}},
            "momentum": {"min": 0.0, "max": 0.9, "when": {"optimizer": "sgd"}},
        }
    }
    cfg = nbsweep.validate(
        config(model=model, top={"values": [1, 2], "when": {"model/kind": "mlp"}})
    )
    parents = {p.name: [c.parent for c in p.when] for p in cfg.space.parameters}
    assert parents["model/kernel"] == [("model", "kind")]
    assert parents["model/momentum"] == [("optimizer",)]
    assert parents["top"] == [("model", "kind")]


def test_bad_when_shapes_are_refused() -> None:
    assert problems(x={"value": 1, "when": []})[0].startswith("parameters.x.when: must map")
    assert problems(x={"value": 1, "when": {"optimizer": []}}) == [
        "parameters.x.when.optimizer: must list at least one value"
    ]
    assert problems(x={"value": 1, "whne": {"optimizer": "sgd"}}) == [
        "parameters.x.whne: unknown key; did you mean 'when'?"
    ]


def test_external_schedulers_do_not_take_conditions() -> None:
    raw = config(momentum={"min": 0.0, "max": 0.9, "when": {"optimizer": "sgd"}})
    raw["scheduler"] = {"engine": "optuna"}
    with pytest.raises(ConfigError, match="conditional parameters"):
        nbsweep.validate(raw)


def test_a_conditional_grid_is_bounded_by_its_valid_combinations() -> None:
    ten = list(range(10))
    grid = {"optimizer": BASE["optimizer"], "layers": BASE["layers"]}
    # 10^6 x 2 x 3 as a plain product, but only layer i's two units are active: 2 x 3 x 100.
    units = {f"{k}{i}": {"values": ten, "when": {"layers": i}} for k in "uv" for i in (1, 2, 3)}
    cfg = nbsweep.validate({"method": "grid", "parameters": {**grid, **units}})
    assert cfg.grid_size == 600
    # Seven units of ten values each, all active at 3 layers: too many.
    deep = {f"u{i}": {"values": ten, "when": {"layers": 3}} for i in range(7)}
    with pytest.raises(ConfigError, match="at least 20,000,004 valid combinations, more than"):
        nbsweep.validate({"method": "grid", "parameters": {**grid, **deep}})
