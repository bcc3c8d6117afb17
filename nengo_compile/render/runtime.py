"""The runtime's source, as the generated module holds it.

With ``runtime="paste"`` (the default) the files of `nengo_compile.runtime` are
copied into the module verbatim, under a banner, so that it runs with
TensorFlow and NumPy alone; only their imports move: every file's imports are
merged into the module's one import block, and imports of each other are
dropped (the files share the module's namespace). With ``runtime="import"``
the module imports the runtime from an installed nengo-compile instead.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..options import RUNTIMES
from ..runtime import FILES

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
#: imports that every module needs, whatever the runtime's placement
MODULE_IMPORTS = ("import numpy as np", "import tensorflow as tf")
#: top-level packages that are not Python's own (imported after those)
THIRD_PARTY = ("numpy", "tensorflow", "nengo_compile")


@dataclass(frozen=True)
class RuntimeSource:
    """What the module template places: its imports, and the runtime's text."""

    imports: tuple  # lines: Python's own modules first, then the others
    files: tuple  # of (file name, source without its docstring and imports)


def runtime_source(mode: str) -> RuntimeSource:
    if mode not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)} (got {mode!r})")
    if mode == "import":
        imports = (
            *MODULE_IMPORTS,
            "from nengo_compile.runtime.model import CompiledModel",
            "from nengo_compile.runtime.ops import *  # noqa: F403",
        )
        return RuntimeSource(_sorted(imports), ())
    pasted = {name: _pasted(name) for name in FILES}
    lines = {line for imports, _ in pasted.values() for line in imports}
    return RuntimeSource(
        _sorted({*lines, *MODULE_IMPORTS}),
        tuple((name, body) for name, (_, body) in pasted.items()),
    )


def _sorted(imports) -> tuple:
    """Import lines as ruff's isort orders them: Python's own, then the rest;
    ``import x`` before ``from x import y`` in each."""

    def key(line):
        module = line.split()[1]
        return (module.split(".")[0] in THIRD_PARTY, line.startswith("from "), module, line)

    ordered = sorted(set(imports), key=key)
    split = [i for i, line in enumerate(ordered) if key(line)[0]]
    if split and split[0] > 0:  # a blank line between the two sections
        ordered.insert(split[0], "")
    return tuple(ordered)


@cache
def _pasted(name: str) -> tuple:
    """(the file's imports, its text without docstring, imports and ``__all__``)."""
    text = (RUNTIME_DIR / name).read_text()
    tree = ast.parse(text)
    lines = text.splitlines()
    drop, imports = set(), []
    for i, node in enumerate(tree.body):
        docstring = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        is_all = isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        )
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            own = isinstance(node, ast.ImportFrom) and (node.level or node.module == "__future__")
            if not own:
                imports.append(ast.get_source_segment(text, node))
        elif not (docstring or is_all):
            continue
        drop.update(range(node.lineno - 1, node.end_lineno or node.lineno))
    kept = [line for i, line in enumerate(lines) if i not in drop]
    body = "\n".join(kept).strip("\n")
    return tuple(imports), body
