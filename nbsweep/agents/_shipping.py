"""How the train function reaches agent processes: by reference, or by value with dill.

An importable function travels as ``module:qualname``. One defined in a notebook (or in
``__main__``) travels by value, pickled with dill (``recurse=True``) so that the notebook's
globals, helpers and classes come along. The pickle goes to a private file (0600) read by the
agents, never into the store. A function that cannot be pickled fails when the sweep is
created, naming the global that is to blame.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import os
import sys
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dill

from nbsweep._errors import ShippingError
from nbsweep.store import private_dir

SPEC_NAME = "train.json"
PICKLE_NAME = "train.pkl"


def reference(fn: Callable[..., Any]) -> str | None:
    """``module:qualname`` when ``fn`` can be imported back by that name, else None."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:  # any import or lookup failure means: ship it by value
        return None
    return f"{module}:{qualname}" if found is fn else None


def resolve(ref: str) -> Callable[..., Any]:
    """The function named by a ``module:qualname`` reference."""
    module, _, qualname = ref.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ShippingError(
            f"train function {ref} cannot be imported ({exc}); pass train= to resume the sweep"
        ) from exc
    return found


class _Pickler(dill.Pickler):  # type: ignore[misc]
    """dill's pickler, except that a module agents can import travels by name.

    dill pickles every module outside site-packages by value (an editable install of nbsweep,
    the user's project checkout), dragging its live state, e.g. open store connections, along.
    """

    dispatch = dill.Pickler.dispatch.copy()


def _save_module(pickler: Any, module: types.ModuleType) -> None:
    name = module.__name__
    if name != "__main__" and sys.modules.get(name) is module and getattr(module, "__file__", None):
        pickler.save_reduce(dill._dill._import_module, (name,), obj=module)
    else:
        dill._dill.save_module(pickler, module)


_Pickler.dispatch[types.ModuleType] = _save_module


def pickle_function(fn: Callable[..., Any]) -> bytes:
    """dill's by-value pickle of ``fn``; SweepError names the global that cannot travel."""
    try:
        buffer = io.BytesIO()
        _Pickler(buffer, recurse=True).dump(fn)
        return buffer.getvalue()
    except Exception as exc:
        culprit = _culprit(fn)
        name = getattr(fn, "__qualname__", repr(fn))
        if culprit is None:
            raise ShippingError(
                f"train function {name} cannot be sent to the agent processes: {exc}."
                " Move it to an importable module"
            ) from exc
        what, value, why = culprit
        raise ShippingError(
            f"train function {name} cannot be sent to the agent processes: {what}"
            f" ({type(value).__name__}) cannot be pickled ({why}). Create it inside the"
            " function, or move the function to an importable module"
        ) from exc


def _culprit(fn: Callable[..., Any]) -> tuple[str, Any, str] | None:
    """The first global, closure variable or default of ``fn`` that dill cannot pickle."""
    for what, value in _captured(fn, set()):
        try:
            dill.dumps(value, recurse=True)
        except Exception as exc:
            return what, value, f"{type(exc).__name__}: {exc}"
    return None


def _captured(fn: Any, seen: set[int]) -> Iterator[tuple[str, Any]]:
    """Every value ``fn`` carries along: referenced globals, closure cells and defaults."""
    if id(fn) in seen or not isinstance(fn, types.FunctionType):
        return
    seen.add(id(fn))
    code = fn.__code__
    for name in _global_names(code):
        if name in fn.__globals__:
            value = fn.__globals__[name]
            if isinstance(value, types.FunctionType) and value.__module__ == fn.__module__:
                yield from _captured(value, seen)
            elif not isinstance(value, types.ModuleType):
                yield f"global {name!r}", value
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            yield f"closure variable {name!r}", cell.cell_contents
        except ValueError:  # an empty cell
            continue
    for index, value in enumerate(fn.__defaults__ or ()):
        yield f"default argument #{index + 1}", value


def _global_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


def ship(fn: Callable[..., Any], directory: Path) -> Path:
    """Write what agents need to load ``fn`` into ``directory``; returns the spec file."""
    if not callable(fn):
        raise ShippingError(f"train must be a function, not {type(fn).__name__}")
    try:
        inspect.signature(fn).bind({})
    except TypeError as exc:
        name = getattr(fn, "__name__", "train")
        raise ShippingError(
            f"train function {name} cannot be called with the run config ({exc}); define it"
            f" as def {name}(config)"
        ) from None
    except ValueError:
        pass  # no signature to read (some builtins): the first run will tell
    private_dir(directory)
    spec: dict[str, Any] = {"sys_path": [p for p in sys.path if p and os.path.isdir(p)]}
    ref = reference(fn)
    if ref is not None:
        spec["ref"] = ref
    else:
        payload = pickle_function(fn)
        _write_private(directory / PICKLE_NAME, payload)
        spec["pickle"] = PICKLE_NAME
    _write_private(directory / SPEC_NAME, json.dumps(spec).encode())
    return directory / SPEC_NAME


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner can read, replacing it atomically.

    The temporary name is per thread: two agents starting on one Dask worker write at once.
    """
    temp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temp, path)


def load(spec_path: str | os.PathLike[str]) -> Callable[..., Any]:
    """The train function described by a spec file written by :func:`ship`."""
    path = Path(spec_path)
    spec = json.loads(path.read_text())
    for entry in reversed(spec.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if "ref" in spec:
        return resolve(spec["ref"])
    return dill.loads((path.parent / spec["pickle"]).read_bytes())
