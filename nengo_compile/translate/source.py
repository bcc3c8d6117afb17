"""Finding a function's syntax tree from its code object.

We parse the whole file the function was defined in (so lambdas in the middle
of a call, continuation lines and indented methods all parse) and pick the
``lambda`` or ``def`` node that compiled into the function's code object:
same first line, same name and arguments. Where several lambdas on that line
qualify (``a = Node(lambda t: 1.0); b = Node(lambda t: 2.0)``), each is
compiled again, from its own syntax tree with its original positions, in the
context it was defined in (the function's free variables as closure cells, the
module's imports, which change the bytecode of ``np.sin(t)`` on 3.11+), and the
one whose code equals
the function's code is taken: same bytecode, constants, names and, on Python
3.11+, the column of every instruction. This holds on every Python we support
(3.10 to 3.13), whatever each version puts in ``co_positions`` (on 3.11 a
lambda's first instruction sits at column 0, outside its own span). Lambdas
that compile to equal code are the same function (3.10 records no columns, so
``lambda t: 1.0; lambda t: 1.0`` there are two equal candidates): either is
taken. Only where recompiling fails or matches none do instruction columns decide
(3.11+; compiler-made instructions of zero width left out), and
where they cannot the reason names the line's lambdas as indistinguishable.
"""

from __future__ import annotations

import ast
import copy
import inspect
import linecache
import symtable
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
    """Instruction positions that span source text (Python 3.11+; none before).

    Instructions the compiler adds carry no span of their own: on 3.11 a
    lambda's ``RESUME`` sits at column 0 of its first line, whatever the
    lambda's column, with zero width. Those are left out.
    """
    if not hasattr(code, "co_positions"):  # Python < 3.11
        return []
    return [
        (line, end_line, col, end_col)
        for line, end_line, col, end_col in code.co_positions()
        if None not in (line, end_line, col, end_col) and (line, col) != (end_line, end_col)
    ]


def _arg_names(node) -> tuple:
    a = node.args
    return tuple(p.arg for p in a.posonlyargs + a.args + a.kwonlyargs)


#: flags a function's context sets (nested in a function or not), not its source
_CONTEXT_FLAGS = inspect.CO_NESTED


def _same_code(a: types.CodeType, b: types.CodeType) -> bool:
    """Whether two code objects compiled from the same source text and place.

    Code objects compare by value (bytecode, constants, names, argument
    counts, first line, and the position table: instruction columns on
    3.11+); ``co_flags`` may differ by where the function was nested.
    """
    if (a.co_flags ^ b.co_flags) & ~_CONTEXT_FLAGS:
        return False
    return a.replace(co_flags=b.co_flags) == b


@lru_cache(maxsize=64)
def _imported(filename: str, text: str) -> tuple:
    """The module's global names bound by ``import`` (anywhere at module level).

    Python 3.11+ compiles ``np.sin(t)`` differently where ``np`` is a
    module-level import (no method call), so a lambda recompiled on its own
    needs the same imports to compile to the same code.
    """
    table = symtable.symtable(text, filename, "exec")
    return tuple(sorted(s.get_name() for s in table.get_symbols() if s.is_imported()))


def _recompiled(node: ast.Lambda, code: types.CodeType, filename: str):
    """The code object ``node`` compiles to in the context it was defined in:
    the module's imports, and ``code``'s free variables as closure cells.
    None if it does not compile."""
    text = "".join(linecache.getlines(filename))
    imports = "".join(f"import {name}\n" for name in _imported(filename, text))
    free = code.co_freevars
    cells = f"    {', '.join(free)} = {', '.join(['None'] * len(free))}\n" if free else ""
    wrapper = ast.parse(f"{imports}def _nengo_compile_outer():\n{cells}    return None\n")
    wrapper.body[-1].body[-1].value = copy.deepcopy(node)
    try:
        module = compile(wrapper, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, TypeError):
        return None
    outer = [c for c in module.co_consts if isinstance(c, types.CodeType)]
    inner = [c for c in outer[-1].co_consts if isinstance(c, types.CodeType)] if outer else []
    return inner[-1] if inner else None


def _pick_lambda(candidates: list, code: types.CodeType, filename: str) -> list:
    """The candidates that compiled into ``code``: one, or several equal ones."""
    compiled = [_recompiled(node, code, filename) for node in candidates]
    if all(c is not None for c in compiled):
        matching = [n for n, c in zip(candidates, compiled) if _same_code(c, code)]
        if matching:
            return matching[:1]  # equal code: the same function, either will do
    # Recompiling failed or matched none (a context not reproduced): columns decide (3.11+)
    spans = [p for p in _positions(code) if any(_span_holds(n, [p]) for n in candidates)]
    if not spans:
        return candidates
    holding = [n for n in candidates if _span_holds(n, spans)]
    return sorted(
        holding, key=lambda n: (n.end_lineno - n.lineno, n.end_col_offset - n.col_offset)
    )[:1]


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
    if len(candidates) > 1 and is_lambda:
        candidates = _pick_lambda(candidates, code, filename)
    if not candidates:
        raise Untranslatable("a function whose source changed")
    if len(candidates) > 1:
        raise Untranslatable(
            f"one of {len(candidates)} lambdas on line {code.co_firstlineno} with the same "
            "arguments that cannot be told apart"
        )
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
