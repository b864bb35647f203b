"""The package's imports run one way: no cycle, function-local imports included.

Every module of ``zslkit/`` (whatever is there when the test runs) is parsed with
:mod:`ast`; every ``import`` and ``from ... import`` anywhere in it counts -- at
module level, inside functions, methods and ``try`` blocks -- except those under
an ``if TYPE_CHECKING:`` (or ``if typing.TYPE_CHECKING:``) block, which never run.

How an import becomes an edge of the module graph:

* ``import zslkit.a.b`` depends on ``zslkit.a.b`` only. Python also runs the
  packages above it (``zslkit/__init__``, ``zslkit/a/__init__``), but counting
  those would make every re-exporting package ``__init__`` a cycle with its own
  submodules (``zslkit/a/__init__`` imports ``zslkit.a.b``, which imports
  ``zslkit.a.c`` ...); a package's ``__init__`` is a module like any other and
  is reached only when something names it.
* ``from zslkit.a import b`` depends on ``zslkit.a.b`` when ``b`` is a submodule,
  else on ``zslkit.a`` (the package's ``__init__``: the name comes from there).
  A module that writes ``from zslkit import register`` really does depend on
  ``zslkit/__init__``; one that writes ``from zslkit import registry`` does not.
* Relative imports are resolved against the importing module's package.
* Only modules inside ``zslkit`` are nodes; other imports are ignored, and so are
  imports by string (``importlib.import_module(name)``: the registry imports the
  built-in component modules that way, by name, on the first lookup -- they import
  the registry, never the reverse).

A cycle is reported by naming its modules in order, ``a -> b -> a``.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "zslkit"


def module_names(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """``{"zslkit.a.b": path}`` for every ``.py`` file under the package."""
    names = {}
    root = package_dir.parent
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node, skipping the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(node: ast.ImportFrom, module: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(module, path).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def dependencies(module: str, path: Path, known: set[str]) -> set[str]:
    """The zslkit modules ``module`` imports, by the rule in this file's docstring."""
    found = set()
    for node in _imports(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        target = _resolve(node, module, path)
        for alias in node.names:
            submodule = f"{target}.{alias.name}"
            found.add(submodule if submodule in known else target)
    return {name for name in found if name in known and name != module}


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    modules = module_names(package_dir)
    known = set(modules)
    return {name: dependencies(name, path, known) for name, path in modules.items()}


@functools.cache
def package_graph() -> dict[str, frozenset[str]]:
    """The import graph of this checkout's ``zslkit/``, read once per test session."""
    return {name: frozenset(deps) for name, deps in import_graph().items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one node (Tarjan), as ``[a, b, ..., a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(sorted(c)[0], set(c), graph) for c in components]


def _path(previous: dict[str, str | None], node: str) -> list[str]:
    chain = [node]
    while previous[chain[-1]] is not None:
        chain.append(previous[chain[-1]])
    return chain[::-1]


def _cycle_through(start: str, members: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path ``start -> ... -> start`` inside one strongly connected component (BFS)."""
    previous: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ()) & members):
                if nxt == start:
                    return _path(previous, node) + [start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{start} is in no cycle")  # pragma: no cover - Tarjan guarantees one


def reaches(graph: dict[str, set[str]], source: str, target_prefix: str) -> list[str] | None:
    """An import chain from ``source`` to any module under ``target_prefix``, or None."""
    previous: dict[str, str | None] = {source: None}
    frontier = [source]
    while frontier:
        following = []
        for node in frontier:
            if node == target_prefix or node.startswith(target_prefix + "."):
                return _path(previous, node)
            for nxt in sorted(graph.get(node, ())):
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return None


# --- the finder itself can fail -------------------------------------------------------------------


def test_cycle_finder_names_a_cycle_in_a_tiny_graph():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert sorted(find_cycles(graph)) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_dependencies_follow_the_rule(tmp_path):
    pkg = tmp_path / "zslkit"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from zslkit.sub import mod\n")
    (pkg / "sub" / "__init__.py").write_text("from .mod import thing\n")
    (pkg / "sub" / "mod.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import zslkit.other\n"
        "from zslkit import helper_name\n"
        "if TYPE_CHECKING:\n"
        "    from zslkit.late import Late\n"
        "def f():\n"
        "    from . import sibling\n"
        "    from .. import other\n"
    )
    for name in ("other", "late"):
        (pkg / f"{name}.py").write_text("")
    (pkg / "sub" / "sibling.py").write_text("")
    graph = import_graph(pkg)
    assert graph["zslkit"] == {"zslkit.sub.mod"}
    assert graph["zslkit.sub"] == {"zslkit.sub.mod"}
    # function-local imports count; TYPE_CHECKING ones do not; `from zslkit import name` is the package.
    assert graph["zslkit.sub.mod"] == {"zslkit.other", "zslkit", "zslkit.sub.sibling"}
    assert find_cycles(graph) == [["zslkit", "zslkit.sub.mod", "zslkit"]]


# --- the package ------------------------------------------------------------------------------------


def test_the_graph_covers_every_module():
    graph = package_graph()
    assert set(graph) == set(module_names())
    assert {"zslkit", "zslkit.registry", "zslkit.plugins", "zslkit.training.trainer"} <= set(graph)
    assert "zslkit.registry" in graph["zslkit.plugins"], "the parser must see plugins' imports"


def test_zslkit_has_no_import_cycle():
    cycles = find_cycles(package_graph())
    assert not cycles, "import cycles in zslkit:\n" + "\n".join(" -> ".join(c) for c in cycles)


#: The bottom layer: components and metrics. None of them reaches the orchestration on top.
COMPONENTS = (
    "zslkit.attention", "zslkit.backbones", "zslkit.datasets", "zslkit.encoders", "zslkit.losses",
    "zslkit.methods", "zslkit.metrics", "zslkit.models", "zslkit.ops",
)
ORCHESTRATION = ("zslkit.training", "zslkit.bench", "zslkit.cli")

LAYER_RULES = [
    ("zslkit.training", "zslkit.bench"),
    ("zslkit.training", "zslkit.cli"),
    ("zslkit.bench", "zslkit.cli"),
    ("zslkit.registry", "zslkit.plugins"),
    ("zslkit.registry", "zslkit.manifest"),
    *[(low, high) for low in COMPONENTS for high in ORCHESTRATION],
    # dataset file readers sit below the loaders
    *[
        (f"zslkit.datasets.{reader}", "zslkit.datasets.xlsa17")
        for reader in ("matfile", "word_vectors", "feature_h5", "store", "region_features", "checks")
    ],
]


@pytest.mark.parametrize(("source", "forbidden"), LAYER_RULES)
def test_lower_layer_never_imports_an_upper_one(source, forbidden):
    graph = package_graph()
    starts = [m for m in graph if m == source or m.startswith(source + ".")]
    for start in starts:
        chain = reaches(graph, start, forbidden)
        assert chain is None, f"{source} must not import {forbidden}: " + " -> ".join(chain)


def test_the_layer_check_finds_an_indirect_import():
    graph = {"zslkit.training.a": {"zslkit.training.b"}, "zslkit.training.b": {"zslkit.bench.x"}, "zslkit.bench.x": set()}
    assert reaches(graph, "zslkit.training.a", "zslkit.bench") == ["zslkit.training.a", "zslkit.training.b", "zslkit.bench.x"]
    assert reaches(graph, "zslkit.bench.x", "zslkit.training") is None


def private_registry_uses(path: Path) -> list[str]:
    """Private names of :mod:`zslkit.registry` that the module at ``path`` imports or reads."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "zslkit.registry":
            found += [alias.name for alias in node.names if alias.name.startswith("_")]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in {"registry", "_registry"}:
            if node.attr.startswith("_"):
                found.append(f"registry.{node.attr}")
    return found


@pytest.mark.parametrize("module", ["zslkit", "zslkit.plugins", "zslkit.manifest"])
def test_the_package_and_the_plugin_loader_use_only_the_public_registry_api(module):
    uses = private_registry_uses(module_names()[module])
    assert not uses, f"{module} must use the public registry API instead of {uses}"


def test_the_private_use_check_can_fail(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from zslkit.registry import _REGISTRY, create\nfrom zslkit import registry\nregistry._check_kind('x')\n")
    assert private_registry_uses(module) == ["_REGISTRY", "registry._check_kind"]
