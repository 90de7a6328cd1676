"""No import cycle among weightinit's modules, function-local imports included.

The graph is read from the source with ``ast`` (nothing is imported): an edge A -> B for every
``import weightinit.B`` / ``from weightinit.B import x`` anywhere in A, at the top or inside a
function; ``from weightinit.pkg import mod`` is an edge to the submodule. Importing a submodule
also runs its parent packages' ``__init__``, which is not counted (every module would otherwise
reach ``weightinit/__init__``). Imports under ``if TYPE_CHECKING:`` count too.

Import strings count as imports: a string constant that names a weightinit module, alone
(``importlib.import_module("weightinit.generator.model")``, a lazy-export table) or as
``"module:attr"`` (the command line's command table), is an edge to that module.

Two levels are checked: modules, and packages (every subpackage, ``weightinit.generator``
say, as one node beside the top-level modules), so that no import runs back up the floors even
through another module of a package. The registry's table of built-in plugins
(``weightinit.plugins.BUILTIN_PLUGINS``) is plugin discovery, what an entry point is for any other
package: it counts among modules (a plugin must not import back up to the registry) but not
among packages, where ``weightinit.concepts`` holds both a plugin (``builtin``) and the catalog
that collects what the plugins register.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "weightinit"
#: A string that names a weightinit module, with an attribute after a colon or not.
IMPORT_STRING = re.compile(r"(weightinit(?:\.\w+)+)(?::[\w.]+)?")
#: ``(module, assigned name)`` of the tables whose strings are plugin discovery (module docstring).
PLUGIN_TABLES = {("weightinit.plugins", "BUILTIN_PLUGINS")}


def _module_names() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


@cache
def _graph() -> tuple[dict[str, frozenset[str]], frozenset[tuple[str, str]]]:
    graph, discovery = _read_graph()
    return {name: frozenset(targets) for name, targets in graph.items()}, frozenset(discovery)


def import_graph() -> dict[str, set[str]]:
    """``{module: {weightinit modules it imports anywhere}}``, parsed once per session."""
    return {name: set(targets) for name, targets in _graph()[0].items()}


def discovery_edges() -> set[tuple[str, str]]:
    """The edges ``(registry, plugin module)`` that only a plugin table makes."""
    return set(_graph()[1])


def _plugin_table_strings(name: str, tree: ast.AST) -> set[int]:
    """``id`` of the string nodes inside the plugin tables of module ``name``."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and (name, t.id) in PLUGIN_TABLES for t in targets) and node.value:
                out |= {id(n) for n in ast.walk(node.value) if isinstance(n, ast.Constant)}
    return out


def _read_graph() -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    modules = _module_names()
    graph, discovery = {}, set()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets, plugin_strings = set(), _plugin_table_strings(name, tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found = IMPORT_STRING.fullmatch(node.value)
                if found and found.group(1) in modules:
                    targets.add(found.group(1))
                    if id(node) in plugin_strings:
                        discovery.add((name, found.group(1)))
            elif isinstance(node, ast.Import):
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
    return graph, discovery


def package_of(module: str) -> str:
    """The node a module is at the package level: its subpackage of ``weightinit``, or itself."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else module


def package_graph(graph: dict[str, set[str]], skip: set[tuple[str, str]] = frozenset()) -> dict[str, set[str]]:
    """``graph`` with every subpackage collapsed to one node (edges inside a package dropped, and
    the edges in ``skip``)."""
    out: dict[str, set[str]] = {}
    for a, targets in graph.items():
        node = out.setdefault(package_of(a), set())
        node.update(package_of(b) for b in targets if package_of(b) != package_of(a) and (a, b) not in skip)
    return out


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


def test_the_graph_sees_import_strings_and_packages():
    graph = import_graph()
    assert "weightinit.generator.model" in graph["weightinit.generator"]  # importlib.import_module(_EXPORTS[name])
    assert "weightinit.cli.generate" in graph["weightinit.cli.app"]  # ("sample", "weightinit.cli.generate:sample")
    assert ("weightinit.plugins", "weightinit.concepts.builtin") in discovery_edges()
    assert "weightinit.fingerprint" not in graph  # a metadata key, not a module
    packages = package_graph(
        {"weightinit.a.x": {"weightinit.b"}, "weightinit.b": {"weightinit.a.y"}, "weightinit.a.y": set()}
    )
    assert cycles(packages) == [["weightinit.a", "weightinit.b"]]


def test_no_import_cycle_among_weightinit_modules():
    graph = import_graph()
    found = cycles(graph)
    edges = [f"{a} -> {b}" for c in found for a in c for b in sorted(graph[a]) if b in c]
    assert not found, f"import cycles: {found}; their edges: {edges}"


def test_no_import_loop_among_weightinit_packages():
    """Nothing runs back up the floors through another module of a package either (the loop
    generator -> zoo -> pairs -> generator went through ``pairs`` importing ``generator.text``)."""
    graph = import_graph()
    packages = package_graph(graph, skip=discovery_edges())
    found = cycles(packages)
    edges = [
        f"{a} -> {b}"
        for c in found
        for a in sorted(graph)
        for b in sorted(graph[a])
        if package_of(a) in c and package_of(b) in c and package_of(a) != package_of(b)
    ]
    assert not found, f"package import loops: {found}; their module edges: {edges}"


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
