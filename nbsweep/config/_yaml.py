"""Safe YAML loading for sweep configs: no Python tags, YAML 1.2 floats, exact error places."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from nbsweep._errors import ConfigError

YAML_SUFFIXES = (".yaml", ".yml")
# The most values (mappings, lists and scalars) a config may hold, counting what an alias or a
# shared part repeats each time it appears: a "billion laughs" document is a few lines that
# expand to 10^9 values in whatever writes it out. Real sweep configs hold hundreds.
MAX_CONFIG_VALUES = 1_000_000

# YAML 1.2 core-schema floats. PyYAML implements YAML 1.1, where a float needs a dot, so
# `min: 1e-5` would arrive as the *string* "1e-5" and fail validation (W&B's loader has this
# trap). The first alternative keeps 1.1's dotted forms, the second adds exponent-only ones.
_FLOAT_12 = re.compile(
    r"""^(?:
        [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
      | [-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
      | [-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
      | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
      | [-+]?\.(?:inf|Inf|INF)
      | \.(?:nan|NaN|NAN)
    )$""",
    re.VERBOSE,
)


class SweepLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats, duplicate keys refused and expansion capped.

    SafeLoader already refuses ``!!python/...`` tags; a duplicate key is refused because
    PyYAML would silently keep the last one, hiding half of what the user wrote. Each node's
    size with its aliases expanded is counted as it is composed, before anything is built
    from it, so an alias bomb stops at ``MAX_CONFIG_VALUES``, and an alias inside the node it
    names (a value that contains itself) is refused.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expanded: dict[yaml.Node, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        node: yaml.Node = super().compose_node(parent, index)
        if node in self._expanded:
            return node
        if isinstance(event, yaml.AliasEvent):  # its anchor's node is still being composed
            raise ComposerError(
                None,
                None,
                f"the alias *{event.anchor} lies inside the node it names, so that value "
                "would contain itself",
                event.start_mark,
            )
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
        size = 1 + sum(self._expanded[child] for child in children)
        if size > MAX_CONFIG_VALUES:
            raise ComposerError(
                None,
                None,
                f"this value expands to more than {MAX_CONFIG_VALUES:,} values (each alias "
                "counts as the values it repeats); a sweep config is far smaller",
                node.start_mark,
            )
        self._expanded[node] = size
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable key: the base class reports it with its place
                continue
            if duplicate:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


# Our float resolver goes first so it wins over YAML 1.1's int/str readings of the same text.
SweepLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "-+0123456789.":
    SweepLoader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:float", _FLOAT_12)
    )


def yaml_path(source: object) -> Path | None:
    """The file a config argument names, or None when it is YAML text (or not a string).

    A string names a file when it is one line and ends in .yaml/.yml or is an existing file.
    """
    if isinstance(source, os.PathLike):
        return Path(os.fspath(source)).expanduser()
    if not isinstance(source, str) or "\n" in source or not source.strip():
        return None
    text = source.strip()
    if text.lower().endswith(YAML_SUFFIXES) or os.path.isfile(os.path.expanduser(text)):
        return Path(text).expanduser()
    return None


def load_yaml(text_or_path: str | os.PathLike[str]) -> Any:
    """Parse YAML text, or the YAML file a path names, safely; problems are ConfigErrors."""
    path = yaml_path(text_or_path)
    if path is None:
        if not isinstance(text_or_path, str):
            raise ConfigError(f"expected YAML text or a path, got {type(text_or_path).__name__}")
        return _parse(text_or_path, "YAML")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (give a YAML file path or YAML text)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    return _parse(text, str(path))


def _parse(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=SweepLoader)  # noqa: S506 - SweepLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_marked_message(exc, where)) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise ConfigError(
            f"{where}: line {line}, column {column}: character {char!r} is not allowed in YAML"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{where}: the YAML is nested too deeply to read") from None


def _marked_message(exc: yaml.MarkedYAMLError, where: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    place = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = exc.problem or "invalid YAML"
    if exc.context and exc.context not in problem:
        problem = f"{problem} ({exc.context})"
    if isinstance(exc, ConstructorError) and "constructor for the tag" in problem:
        problem += "; only plain YAML data is allowed (Python object tags are never run)"
    return f"{where}: {place}{problem}"
