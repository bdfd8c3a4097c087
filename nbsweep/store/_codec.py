"""The one place where values become the store's JSON text and come back.

Configs, summaries, logged rows and the warm-start list are stored as compact JSON. Every
write goes through ``encode`` (or ``encode_row`` for a logged row) and every read through
``decode``, so what a value may be, and how it is checked, is decided here only.

The value policy: numbers (Python, numpy and torch scalars, NaN and inf), strings, bools and
None, and lists and dicts of them with string keys. A numpy array or torch tensor is its
(nested) list, a tuple a list. Anything else is refused with a ``ValueError`` naming the key
path, so that what ``history()`` gives back is what was logged, never a ``repr`` of it.

Error text is capped here too (``capped``): at most 64 KiB per run, event or sweep message.
"""

from __future__ import annotations

import contextlib
import json
import operator
from collections.abc import Mapping
from typing import Any

# The columns ``Sweep.history()`` adds to every row, and the summary's own ``_runtime``: a
# logged key of one of these names would overwrite them.
RESERVED = ("run_id", "_step", "_timestamp", "_runtime")
MAX_STEP = 2**63 - 1  # the store's step column is a signed 64-bit integer
_PLAIN = frozenset({str, int, float, bool, type(None)})
_ARRAY_MODULES = frozenset({"numpy", "torch"})
_ACCEPTED = "numbers, strings, bools, None, or lists/dicts of them"
# The most bytes of error text kept per run, event or sweep message (see ``capped``).
ERROR_BYTES = 64 * 1024
_NOTE_BYTES = 100  # room for the note that says how much was cut


def encode(value: Any) -> str:
    """JSON text of a config, summary or list, checked against the value policy."""
    return _dumps(_plain(value, "", ("the store", "store"), set()))


def encode_row(values: Mapping[str, Any]) -> str:
    """JSON text of one row a run logged (``logged_row``)."""
    return _dumps(logged_row(values))


def decode(text: str | None) -> Any:
    """The value of stored JSON text; nothing stored reads as an empty mapping."""
    return json.loads(text) if text else {}


def as_stored(value: Any) -> Any:
    """``value`` as the store gives it back (tuples as lists, numpy values as numbers)."""
    return decode(encode(value))


def logged_row(
    values: Mapping[str, Any], where: str = "nbsweep.log", verb: str = "log"
) -> dict[str, Any]:
    """A logged row (or a returned summary) as the store keeps it, in plain Python values.

    Raises ``ValueError`` naming the key of a value the policy refuses or of a reserved name;
    the message starts with ``where`` and says what to ``verb`` instead.
    """
    row: dict[str, Any] = _plain(values, "", (where, verb), set())
    for key in RESERVED:
        if key in row:
            other = key.lstrip("_") if key.startswith("_") else f"logged_{key}"
            raise ValueError(
                f"{where}: {key!r} is a name nbsweep keeps for its own column of history()"
                f" and the runs' summaries; rename it (for example to {other!r})"
            )
    return row


def logged_step(step: Any) -> int:
    """``step`` as a Python int, refused unless a whole number from 0 to ``MAX_STEP``."""
    number = -1
    if not (isinstance(step, bool) or "bool" in str(getattr(step, "dtype", ""))):
        with contextlib.suppress(TypeError):
            number = operator.index(step)  # ints, numpy integers, integer 0-d tensors
    if not 0 <= number <= MAX_STEP:
        raise ValueError(
            f"nbsweep.log: step must be a whole number from 0 to 2**63-1 (an int or a numpy"
            f" integer), not {step!r} ({_kind(step)}); leave it out to count rows"
        )
    return number


def capped(text: str | None) -> str | None:
    """Error text as stored: its last ``ERROR_BYTES`` bytes (UTF-8), saying what was cut.

    Every text that reports a failure (a run's error, an event's or a sweep's message) is
    stored through this. Its end says what failed (the end of a traceback, how a program
    exited); a program that printed long lines would otherwise store megabytes a run.
    """
    if text is None:
        return None
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= ERROR_BYTES:
        return text
    kept = data[len(data) - ERROR_BYTES + _NOTE_BYTES :]
    note = f"[nbsweep: the first {len(data) - len(kept)} bytes of this error were cut]\n"
    # A character cut in two at the start is dropped; never more than the cap.
    return note + kept.decode("utf-8", "ignore")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _plain(value: Any, path: str, caller: tuple[str, str], open_: set[int]) -> Any:
    """``value`` in plain JSON types; ``open_`` holds the containers ``value`` lies in."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict and all(type(k) is str and type(v) in _PLAIN for k, v in value.items()):
        return dict(value)  # the common row, {"loss": 0.1, "epoch": 3}: nothing to convert
    where, verb = caller
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in open_:
            what = repr(path) if path else "the row"
            raise ValueError(f"{where}: {what} contains itself; {verb} a value without a loop")
        open_.add(id(value))
        try:
            if isinstance(value, Mapping):
                out = {}
                for key, item in value.items():
                    if not isinstance(key, str):
                        at = f"{path!r} has a key" if path else "a key"
                        raise ValueError(
                            f"{where}: {at} {key!r} of type {_kind(key)}; keys must be strings"
                        )
                    key = str.__str__(key)
                    out[key] = _plain(item, f"{path}.{key}" if path else key, caller, open_)
                return out
            return [_plain(item, f"{path}[{i}]", caller, open_) for i, item in enumerate(value)]
        finally:
            open_.discard(id(value))
    if kind.__module__.partition(".")[0] in _ARRAY_MODULES and hasattr(value, "tolist"):
        if "datetime" not in str(getattr(value, "dtype", "")):
            return _plain(value.tolist(), path, caller, open_)
    elif isinstance(value, (str, int, float)):  # subclasses, such as enums: their plain value
        base = next(b for b in (int, float, str) if isinstance(value, b))
        return base(value) if base is not str else str.__str__(value)
    raise ValueError(f"{where}: {path!r} is a {_kind(value)}; {verb} {_ACCEPTED}")


def _kind(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
