"""The package's shape, without TensorFlow: the import graph of
`nengo_compile` (every import, at module level or inside a function) has no
cycle, the stages before lowering do not depend on it, and no file is long."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nengo_compile"
MAX_LINES = 500


def _modules() -> dict:
    """Module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def import_graph() -> nx.DiGraph:
    """Edges from each module to the package modules it imports."""
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        package = name if _is_package(path) else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    targets.append(submodule if submodule in modules else source)
            for target in targets:
                # the nearest module of the package that the import names
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # a module's own packages are imported before it anyway
                if target and not name.startswith(f"{target}.") and target != name:
                    graph.add_edge(name, target)
    return graph


def test_graph_sees_the_stages():
    graph = import_graph()
    assert graph.has_edge("nengo_compile.pipeline", "nengo_compile.analyse")
    assert graph.has_edge("nengo_compile.analyse", "nengo_compile.kinds")
    assert graph.has_edge("nengo_compile.kinds.matmul", "nengo_compile.ir")
    # a function-level import counts
    assert graph.has_edge("nengo_compile.translate.source", "nengo_compile.translate.convert")


def test_no_import_cycle():
    graph = import_graph()
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, cycles


@pytest.mark.parametrize("stage", ["nengo_compile.analyse", "nengo_compile.plan"])
def test_early_stages_do_not_import_lowering(stage):
    """Analysis and planning ask the op kinds, never the lowering stage."""
    reached = nx.descendants(import_graph(), stage)
    lowering = sorted(m for m in reached if m.split(".")[:2] == ["nengo_compile", "lower"])
    assert not lowering, lowering


def test_kinds_and_ir_do_not_import_stages():
    """The op kinds and the IR are stage-neutral: any stage may import them."""
    graph = import_graph()
    stages = {
        f"nengo_compile.{s}"
        for s in ("pipeline", "analyse", "plan", "lower", "render", "rewrite", "build")
    }
    for module in graph:
        if module == "nengo_compile.ir" or module.startswith("nengo_compile.kinds"):
            assert not set(graph.successors(module)) & stages, module
    assert not set(graph.successors("nengo_compile.ir"))


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_file_is_long(name):
    path = _modules()[name]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)}: {lines} lines"
