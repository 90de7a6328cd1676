"""No import cycle among weightinit's modules, function-local imports included.

The graph is read from the source with ``ast`` (nothing is imported): an edge A -> B for every
``import weightinit.B`` / ``from weightinit.B import x`` anywhere in A, at the top or inside a
function; ``from weightinit.pkg import mod`` is an edge to the submodule. Importing a submodule
also runs its parent packages' ``__init__``, which is not counted (every module would otherwise
reach ``weightinit/__init__``). Imports under ``if TYPE_CHECKING:`` count too.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "weightinit"


def _module_names() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


@cache
def _graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(targets) for name, targets in _read_graph().items()}


def import_graph() -> dict[str, set[str]]:
    """``{module: {weightinit modules it imports anywhere}}``, parsed once per session."""
    return {name: set(targets) for name, targets in _graph().items()}


def _read_graph() -> dict[str, set[str]]:
    modules = _module_names()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from its package, up level - 1
                    base = package[: len(package) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.add(sub if sub in modules else source)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:  # the graph is a few hundred modules deep at most
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_function_local_and_package_imports():
    graph = import_graph()
    assert "weightinit.plugins" in graph["weightinit.initialization"]  # `from weightinit import plugins`
    assert "weightinit.generator.model" in graph["weightinit.initialization"]  # imported inside load_generator
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_weightinit_modules():
    graph = import_graph()
    found = cycles(graph)
    edges = [f"{a} -> {b}" for c in found for a in c for b in sorted(graph[a]) if b in c]
    assert not found, f"import cycles: {found}; their edges: {edges}"


def test_the_library_never_imports_the_experiments():
    """``experiments/`` is not installed: a ``weightinit`` module that imported it would break outside a clone."""
    found = []
    for name, path in _module_names().items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            sources = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            found += [f"{name} imports {s}" for s in sources if s == "experiments" or s.startswith("experiments.")]
    assert not found, found
