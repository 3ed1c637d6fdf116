"""The package's import graph has no cycle (DESIGN.md: dependencies flow one way).

Imports inside functions count -- a lazy import is still a dependency, and a
cycle hidden in a function is a seam in the wrong place -- and only imports
under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import lazybridge

PACKAGE = Path(lazybridge.__file__).parent

#: The lazy imports that are allowed, and why.  Each (importer, imported) pair here
#: must be a function-level import; a cycle through one of them is still a cycle.
ALLOWED_LAZY: set[tuple[str, str]] = set()


def _modules() -> dict[str, tuple[Path, bool]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING"


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (at any depth, TYPE_CHECKING blocks excepted)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        package = name.split(".") if is_package else name.split(".")[:-1]

        def walk(node: ast.AST, name: str = name, package: list[str] = package) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child.test):
                    walk_orelse(child, name, package)
                    continue
                targets: list[str] = []
                if isinstance(child, ast.ImportFrom):
                    if child.level:
                        base = package[: len(package) - (child.level - 1)]
                        module = ".".join(base + ([child.module] if child.module else []))
                    else:
                        module = child.module or ""
                    targets = [f"{module}.{alias.name}" for alias in child.names] + [module]
                elif isinstance(child, ast.Import):
                    targets = [alias.name for alias in child.names]
                for target in targets:
                    if target in modules and target != name:
                        graph[name].add(target)
                        # Importing a.b.c runs a.b's __init__ first (the root package's
                        # excepted: it is the public surface, importing everything).
                        parent = target.rsplit(".", 1)[0]
                        while parent.count(".") >= 1:
                            if parent != name and not name.startswith(f"{parent}."):
                                graph[name].add(parent)
                            parent = parent.rsplit(".", 1)[0]
                        break
                walk(child, name, package)

        def walk_orelse(node: ast.If, name: str, package: list[str]) -> None:
            for child in node.orelse:
                walk(ast.Module(body=[child], type_ignores=[]), name, package)

        walk(ast.parse(path.read_text(encoding="utf-8")))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_graph_sees_imports_inside_functions_and_skips_type_checking_blocks() -> None:
    graph = import_graph()
    assert "lazybridge.engines.llm" in graph["lazybridge.agent"]  # the model-string shorthand, lazily
    assert "lazybridge.session" not in graph["lazybridge.events"]


#: The modules that may import an event-loop library by name (DESIGN.md, concurrency
#: rule 2): everything else goes through anyio, so it runs unchanged on both backends.
BACKEND_MODULES = {"lazybridge._sync"}


def test_only_the_sync_module_imports_asyncio_or_trio() -> None:
    offenders = []
    for name, (path, _) in _modules().items():
        if name in BACKEND_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            offenders += [f"{name}: {root}" for root in roots if root in ("asyncio", "trio")]
    assert offenders == []
