"""The project's layers, read from its source with ``ast``: no import cycle, and each layer imports only what it may.

Every import counts, also one inside a function (a cycle hidden that way still ties two modules
together); only an ``if TYPE_CHECKING:`` block is skipped, since it never runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "settings", "demos", "models", "shapesworld", "hosting", "bench")  # modules and packages at the top


def parse(path: Path) -> ast.Module:
    """``path``'s syntax tree, parsed again once if CPython 3.11's AST converter trips on its shared recursion counter.

    That counter is not per thread in 3.11 (CPython gh-106905): while another thread of the test
    process builds a syntax tree, ``ast.parse`` can raise "AST constructor recursion depth mismatch".
    """
    try:
        return ast.parse(path.read_text(), str(path))
    except SystemError:
        return ast.parse(path.read_text(), str(path))


def module_files() -> dict[str, Path]:
    """Every project module by dotted name (a package by its own name, for its ``__init__.py``)."""
    files = {}
    for package in PACKAGES:
        single = ROOT / f"{package}.py"
        if single.exists():
            files[package] = single
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else ():
            parts = path.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import and ImportFrom, at any depth, outside ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imported_names(module: str, path: Path, known: set[str]) -> set[str]:
    """The dotted names ``module`` imports, relative imports resolved.

    ``from a import b`` names the module ``a.b`` where there is one in ``known``, else ``a`` (where ``b`` is defined).
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in _import_nodes(parse(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            base = ".".join([*parts[: len(parts) - node.level + 1], *([node.module] if node.module else [])])
        names.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports."""
    files = module_files()
    known = set(files)
    return {module: (imported_names(module, path, known) & known) - {module} for module, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Each strongly connected group of modules (Tarjan): one cycle through it, written as a path back to its start, and its members."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [" -> ".join(_path_through(group, graph)) + f"  (all of: {', '.join(sorted(group))})" for group in groups]


def _path_through(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle from the group's first module back to itself, within the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    return sorted(group)


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "models.registry" in graph["models"]  # from .registry import ... in a package's __init__
    assert "models.registry" in graph["models.__main__"]  # from . import registry
    assert "models.serving" in graph["models.__main__"]  # the same, inside a function
    assert "demos.files" in graph["demos.scenes"]
    assert "demos.scenes" in graph["demos.wiring"]  # from . import scenes
    assert graph["app"] >= {"demos"}


def test_no_import_cycle_among_the_project_modules():
    found = cycles(import_graph())
    assert not found, "import cycles (function-level imports count):\n" + "\n".join(found)


def _breaches(source: str, forbidden: tuple[str, ...], modules: dict[str, Path]) -> list[str]:
    """Each import by a module of ``source`` (a package) of a module under one of ``forbidden``."""
    found = []
    for module, path in modules.items():
        if module != source and not module.startswith(source + "."):
            continue
        for name in sorted(imported_names(module, path, set(modules))):
            target = next((f for f in forbidden if name == f or name.startswith(f + ".")), None)
            if target:
                found.append(f"{module} imports {name}")
    return found


def test_tabs_ask_inference_modules_never_training_code_or_networks():
    found = _breaches("demos", ("models.training", "models.nets"), module_files())
    assert not found, "\n".join(found)


def test_models_never_import_gradio():
    found = _breaches("models", ("gradio",), module_files())
    assert not found, "\n".join(found)


def test_inference_never_imports_a_trainer():
    """``models/*.py`` serve the app; only the command line (``__main__``), the weight planting for tests and the Train tab's runner may train."""
    modules = module_files()
    trains = ("models.__main__", "models.planting", "models.train_yourself")  # the last starts the Train tab's runs
    inference = [m for m in modules if m.startswith("models.") and m.count(".") == 1 and m not in trains]
    found = [
        f"{module} imports {name}"
        for module in inference
        for name in sorted(imported_names(module, modules[module], set(modules)))
        if name.startswith("models.training")
    ]
    assert not found, "\n".join(found)
