"""The layer check of ``make lint`` (``.ci/layers.py``) catches what it is there for.

Run on a small planted package, so that a checker that finds nothing cannot pass for one that
finds nothing wrong.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

LAYERS = (
    ("low", ("pkg.low", "pkg.engine")),
    ("mid", ("pkg.mid",)),
    ("high", ("pkg.high", "pkg")),
)


def _checker() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / ".ci" / "layers.py"
    spec = importlib.util.spec_from_file_location("layers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def _plant(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"pkg/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _check(root: Path) -> list[str]:
    return _checker().check(
        root, "pkg", LAYERS, engine=("pkg.engine",), not_for_engine=("pkg.mid",)
    )


def test_a_lazy_import_of_a_higher_layer_is_a_violation(tmp_path: Path) -> None:
    root = _plant(
        tmp_path,
        {
            "pkg/low.py": "def f():\n    from pkg import high\n",
            "pkg/high.py": "import pkg.mid\n",
            "pkg/mid.py": "x = 1\n",
        },
    )
    assert _check(root) == [
        "pkg/low.py:2: pkg.low imports pkg.high: layer 'low' imports layer 'high' above it;"
        " modules read down the layer table, never up"
    ]


def test_an_engine_module_may_not_import_the_store_side(tmp_path: Path) -> None:
    root = _plant(tmp_path, {"pkg/engine.py": "from .mid import x\n", "pkg/mid.py": "x = 1\n"})
    [problem] = _check(root)
    assert problem.startswith("pkg/engine.py:1: pkg.engine imports pkg.mid: engine modules")


def test_a_cycle_through_a_function_import_is_found(tmp_path: Path) -> None:
    root = _plant(
        tmp_path,
        {
            "pkg/mid.py": "import pkg.low\n",
            "pkg/low.py": "def f():\n    import pkg.mid\n",
        },
    )
    problems = _check(root)
    assert "import cycle: pkg.low (line 2) -> pkg.mid (line 1) -> pkg.low" in problems


def test_type_checking_imports_and_unlisted_modules(tmp_path: Path) -> None:
    root = _plant(
        tmp_path,
        {
            "pkg/low.py": "import typing\nif typing.TYPE_CHECKING:\n    import pkg.high\n",
            "pkg/high.py": "import pkg.low\n",
            "pkg/stray.py": "",
        },
    )
    assert _check(root) == [
        "pkg/stray.py: module pkg.stray is in no layer of .ci/layers.py: add it"
    ]
