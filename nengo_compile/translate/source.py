"""Finding a function's syntax tree from its code object.

We parse the whole file the function was defined in (so lambdas in the middle
of a call, continuation lines and indented methods all parse) and pick the
``lambda`` or ``def`` node that compiled into the function's code object:
same first line, same name and arguments, and, on Python 3.11+, the node whose
source span holds every instruction of the code object.
"""

from __future__ import annotations

import ast
import linecache
import types
from functools import lru_cache
from pathlib import Path

from .expr import Untranslatable


@lru_cache(maxsize=64)
def _parse(filename: str, text: str) -> ast.Module:
    return ast.parse(text, filename=filename)


def module_tree(filename: str):
    lines = linecache.getlines(filename)
    if not lines:
        raise Untranslatable("a function whose source is not available")
    try:
        return _parse(filename, "".join(lines))
    except SyntaxError as exc:
        raise Untranslatable("a function whose source file does not parse") from exc


def _span_holds(node, positions) -> bool:
    start = (node.lineno, node.col_offset)
    end = (node.end_lineno, node.end_col_offset)
    return all(
        start <= (line, col) and (end_line, end_col) <= end
        for line, end_line, col, end_col in positions
    )


def _positions(code) -> list:
    if not hasattr(code, "co_positions"):  # Python < 3.11
        return []
    return [p for p in code.co_positions() if None not in p]


def _arg_names(node) -> tuple:
    a = node.args
    return tuple(p.arg for p in a.posonlyargs + a.args + a.kwonlyargs)


def find_node(fn: types.FunctionType):
    """The ``ast.Lambda`` or ``ast.FunctionDef`` of ``fn``, and its file name."""
    code = fn.__code__
    filename = code.co_filename
    tree = module_tree(filename)
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    is_lambda = code.co_name == "<lambda>"
    candidates = []
    for node in ast.walk(tree):
        if is_lambda and isinstance(node, ast.Lambda):
            if node.lineno == code.co_firstlineno and _arg_names(node) == names:
                candidates.append(node)
        elif not is_lambda and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if node.name == code.co_name and first == code.co_firstlineno:
                candidates.append(node)
    if isinstance(next(iter(candidates), None), ast.AsyncFunctionDef):
        raise Untranslatable("an async function")
    if len(candidates) > 1:
        positions = _positions(code)
        if positions:
            holding = [n for n in candidates if _span_holds(n, positions)]
            candidates = sorted(
                holding, key=lambda n: (n.end_lineno - n.lineno, n.end_col_offset - n.col_offset)
            )[:1]
    if len(candidates) != 1:
        what = "several lambdas on one line" if candidates else "a function whose source changed"
        raise Untranslatable(what)
    return candidates[0], filename


def function_of(fn, self_obj=None):
    """A `convert.Function` for a Python function (``self_obj`` for methods)."""
    from .convert import Function

    if not isinstance(fn, types.FunctionType):
        raise Untranslatable(f"a call to the {type(fn).__name__} {fn!r}")
    node, filename = find_node(fn)
    return Function(node, fn, filename, self_obj=self_obj, has_self=self_obj is not None)


def location(filename: str, line: int | None) -> str:
    """``file.py:line``: the file name without its folder (output is reproducible)."""
    name = Path(filename).name
    return f"{name}:{line}" if line else name


def source_line(filename: str, node) -> str:
    """The first line of a function's source, for a comment in the generated code."""
    if isinstance(node, ast.Lambda):
        text = "".join(linecache.getlines(filename))
        segment = ast.get_source_segment(text, node)
        if segment:
            return " ".join(segment.split())
    line = linecache.getline(filename, node.lineno)
    return " ".join(line.split())
