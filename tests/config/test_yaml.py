"""load_yaml: safe loading, YAML 1.2 floats, errors with their place, paths vs text."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from nbsweep.config import ConfigError, load_yaml


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-5", 1e-05),
        ("3e6", 3e6),
        ("-1E-3", -0.001),
        ("+2e+2", 200.0),
        ("1.0e-5", 1e-05),
        (".5", 0.5),
        ("-.5e1", -5.0),
        ("1.", 1.0),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
    ],
)
def test_yaml_12_floats_are_floats(text: str, value: float) -> None:
    loaded = load_yaml(f"x: {text}\n")["x"]
    assert type(loaded) is float
    assert loaded == value


def test_nan_is_a_float() -> None:
    assert math.isnan(load_yaml("x: .nan\n")["x"])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("1_000", 1000),
        ("0x1f", 31),
        ("1e5x", "1e5x"),
        ("e5", "e5"),
        ("1e", "1e"),
        ("'1e-5'", "1e-5"),
        ("true", True),
        ("null", None),
        ("v1.2.3", "v1.2.3"),
    ],
)
def test_other_scalars_keep_their_yaml_meaning(text: str, value: object) -> None:
    loaded = load_yaml(f"x: {text}\n")["x"]
    assert loaded == value
    assert type(loaded) is type(value)


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("method: grid\nparameters:\n  a: {values: [1, 2}\n", "line 3, column 20"),
        ("a: 1\n b: 2\n", "line 2, column 3"),
        ("a: [1, 2\n", "line 2, column 1"),
        ("a:\n\t- 1\n", "line 2, column 1"),
        ("a: 'unterminated\n", "line 2, column 1"),
        ("a: 1\nb: 2\na: 3\n", "line 3, column 1"),
        ("a: *nowhere\n", "line 1, column 4"),
        ("a: 1\n---\nb: 2\n", "line 2, column 1"),
    ],
)
def test_broken_yaml_reports_line_and_column(text: str, place: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(text)
    (problem,) = info.value.problems
    assert problem.startswith(f"YAML: {place}: "), problem


def test_duplicate_keys_are_refused_not_silently_overwritten() -> None:
    with pytest.raises(ConfigError, match="line 3, column 3: found duplicate key 'lr'"):
        load_yaml("parameters:\n  lr: {value: 1}\n  lr: {value: 2}\n")


def test_merge_keys_still_work() -> None:
    loaded = load_yaml("base: &b {min: 0, max: 1}\nx:\n  <<: *b\n  max: 2\n")
    assert loaded["x"] == {"min": 0, "max": 2}


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system",
        "!!python/object/new:os.system",
        "!!python/name:os.system",
        "!!python/module:os",
    ],
)
def test_python_tags_are_refused_and_never_run(tag: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ConfigError, match="Python object tags are never run"):
        load_yaml(f'x: {tag} ["touch {marker}"]\n')
    assert not marker.exists()


def test_a_control_character_is_reported_with_its_place() -> None:
    with pytest.raises(ConfigError, match=r"line 2, column 4: character '\\x07'"):
        load_yaml("a: 1\nb: \x07\n")


def test_deep_nesting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_yaml("[" * 500)


def test_path_or_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "sweep.yml"
    config.write_text("method: grid\n")
    plain = tmp_path / "sweep"  # no suffix: a path only because the file exists
    plain.write_text("method: random\n")
    assert load_yaml(config) == {"method": "grid"}
    assert load_yaml(str(config)) == {"method": "grid"}
    assert load_yaml(f"  {config}  ") == {"method": "grid"}
    assert load_yaml(str(plain)) == {"method": "random"}
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_yaml("~/sweep.yml") == {"method": "grid"}
    assert load_yaml("method: bayes") == {"method": "bayes"}
    assert load_yaml("sweep") == "sweep"  # not a file here: one-word YAML text


def test_missing_unreadable_and_non_utf8_files_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{tmp_path / 'gone.yaml'}: no such file"):
        load_yaml(str(tmp_path / "gone.yaml"))
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=f"{latin}: not UTF-8 text"):
        load_yaml(latin)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match=f"{folder}: cannot read the file"):
        load_yaml(folder)


def test_errors_in_a_file_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match=f"{broken}: line 2, column 1: "):
        load_yaml(os.fspath(broken))


def test_non_text_input_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="expected YAML text or a path, got bytes"):
        load_yaml(b"a: 1")  # type: ignore[arg-type]
