"""The package's import graph, function-level imports included, read from the source (AST)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {
    "closeprob.pipeline": "pipeline",
    "closeprob.features": "features",
    "closeprob.models": "models",
}


def module_files() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    files = {}
    for package, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join((package, *parts))] = path
    return files


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package modules `path` imports anywhere in its body (`from a.b import c` counts as
    a.b.c when that is a module, else a.b)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
                break
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    modules = set(files)
    return {name: imported_modules(path, modules) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None (iterative DFS)."""
    state: dict[str, int] = {}
    for root in sorted(graph):
        if state.get(root):
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return None


def test_the_package_has_no_import_cycle_counting_function_level_imports() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    nested = tmp_path / "m.py"
    nested.write_text("def f():\n    from closeprob.pipeline.cli import main\n")
    assert imported_modules(nested, {"closeprob.pipeline.cli"}) == {"closeprob.pipeline.cli"}


@pytest.mark.parametrize("job", ["train", "predict", "evaluate", "backtest", "check", "promote"])
def test_the_library_never_imports_a_job(job: str) -> None:
    importers = sorted(
        name
        for name, imports in import_graph().items()
        if f"closeprob.pipeline.jobs.{job}" in imports
        and not name.startswith(("closeprob.pipeline.jobs", "closeprob.pipeline.cli"))
    )
    assert importers == []


def test_every_pipeline_module_has_a_place_in_the_layers_contract() -> None:
    """A new module must be put in a layer (pyproject.toml), or the contract checks nothing of
    it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    layers = next(
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    )
    placed = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    tops = {
        ".".join(name.split(".")[:3])
        for name in module_files()
        if name.startswith("closeprob.pipeline.")
    }
    unplaced = sorted(tops - placed - {"closeprob.pipeline.__main__"})
    assert unplaced == []
