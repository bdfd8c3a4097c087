"""The layers of nbsweep, and the check that keeps them (``make lint`` runs this file).

A module imports its own layer and the layers below it, never one above, and no two modules
import each other, however far round. Every ``import`` and ``from ... import`` counts, those
inside functions included: a lazy import is still a dependency, and still a cycle when the
module it reaches imports back. Imports under ``if TYPE_CHECKING:`` are left out of both
checks: they never run, and an annotation may name a type of any layer. ``nbsweep``'s own
``_LAZY`` table (the public names it loads on first use) counts as imports of the package.
docs/architecture.md explains the table.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

Layers = Sequence[tuple[str, Sequence[str]]]

# Lowest first. A module belongs to the layer of the longest entry that names it: a package
# covers its modules, except the top package, which names only its ``__init__``.
LAYERS: Layers = (
    (
        "states and errors",
        ("nbsweep._errors", "nbsweep._states", "nbsweep._runs", "nbsweep._timing"),
    ),
    ("space", ("nbsweep.space",)),
    ("config", ("nbsweep.config",)),
    ("search and stopping", ("nbsweep.search", "nbsweep.stopping")),
    ("store", ("nbsweep.store",)),
    ("schedulers", ("nbsweep.schedulers",)),
    (
        "runs",
        (
            "nbsweep._train",
            "nbsweep._command",
            "nbsweep._cost",
            "nbsweep._frames",
            "nbsweep.wandb._sdk",
        ),
    ),
    ("warm start", ("nbsweep._warm_start",)),
    (
        "agents",
        tuple(
            f"nbsweep.agents.{m}"
            for m in (
                "_executor",
                "_gpus",
                "_local",
                "_loop",
                "_pool",
                "_procs",
                "_shipping",
                "__main__",
            )
        ),
    ),
    ("launch planning", ("nbsweep.schedulers._launch",)),
    ("controller", ("nbsweep.controller",)),
    # ``nbsweep.agent`` runs a controller when none runs, also as a task on Dask workers.
    ("agent entry points", ("nbsweep.agents",)),
    ("start", ("nbsweep._start",)),
    ("analysis", ("nbsweep.analysis", "nbsweep._confirm")),
    ("views", ("nbsweep.views", "nbsweep.plot", "nbsweep._plotly")),
    ("widgets", ("nbsweep.widgets", "nbsweep.report")),
    ("sweep handle", ("nbsweep._sweep",)),
    (
        "public API",
        ("nbsweep", "nbsweep.magic", "nbsweep.cli", "nbsweep.integrations", "nbsweep.wandb"),
    ),
)

# The engine works on lists of runs and knows nothing of where they are kept or run.
ENGINE = ("nbsweep.config", "nbsweep.space", "nbsweep.search", "nbsweep.stopping")
NOT_FOR_ENGINE = ("nbsweep.store", "nbsweep.agents", "nbsweep.controller", "nbsweep.widgets")


@dataclass(frozen=True)
class Import:
    importer: str
    path: Path
    line: int
    imported: str


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` (a folder under ``root``) by dotted name."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[Import]:
    """The modules of ``known`` that module ``name`` imports at run time, with their line."""

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in _runtime_nodes(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from p import m`` imports module ``p.m`` when there is one, else names of ``p``.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        elif (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            targets = [v.value for v in node.value.values if isinstance(v, ast.Constant)]
        for target in targets:
            found = resolve(target)
            if found is not None and found != name:
                yield Import(name, path, node.lineno, found)


def layer_of(name: str, layers: Layers) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for index, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            covers = name == prefix or ("." in prefix and _under(name, prefix))
            if covers and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def cycles(edges: dict[str, dict[str, Import]]) -> list[list[Import]]:
    """One cycle of imports through each group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, {})):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    found = []
    for group in groups:
        start, members = group[0], set(group)
        paths: dict[str, list[Import]] = {start: []}
        queue = [start]
        while queue:  # breadth first, the shortest way back to ``start``
            node = queue.pop(0)
            step = [e for n, e in sorted(edges[node].items()) if n in members]
            back = next((e for e in step if e.imported == start), None)
            if back is not None:
                found.append([*paths[node], back])
                break
            for edge in step:
                if edge.imported not in paths:
                    paths[edge.imported] = [*paths[node], edge]
                    queue.append(edge.imported)
    return found


def check(
    root: Path,
    package: str = "nbsweep",
    layers: Layers = LAYERS,
    engine: Sequence[str] = ENGINE,
    not_for_engine: Sequence[str] = NOT_FOR_ENGINE,
) -> list[str]:
    """Every layer violation and import cycle of ``package``, one message each."""
    known = modules(root, package)
    problems = []
    edges: dict[str, dict[str, Import]] = {}
    for name, path in known.items():
        where = path.relative_to(root)
        mine = layer_of(name, layers)
        if mine is None:
            problems.append(f"{where}: module {name} is in no layer of .ci/layers.py: add it")
            continue
        for edge in imports(name, path, known):
            edges.setdefault(name, {}).setdefault(edge.imported, edge)
            theirs = layer_of(edge.imported, layers)
            at = f"{where}:{edge.line}: {name} imports {edge.imported}"
            if any(_under(name, e) for e in engine) and any(
                _under(edge.imported, f) for f in not_for_engine
            ):
                problems.append(
                    f"{at}: engine modules ({', '.join(engine)}) import nothing from"
                    f" {', '.join(not_for_engine)}"
                )
            elif theirs is not None and theirs > mine:
                problems.append(
                    f"{at}: layer {layers[mine][0]!r} imports layer {layers[theirs][0]!r}"
                    " above it; modules read down the layer table, never up"
                )
    for cycle in cycles(edges):
        chain = " -> ".join(f"{e.importer} (line {e.line})" for e in cycle)
        problems.append(f"import cycle: {chain} -> {cycle[0].importer}")
    return problems


def main() -> int:
    problems = check(Path(__file__).resolve().parent.parent)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} layer problems (the table: .ci/layers.py, docs/architecture.md)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
