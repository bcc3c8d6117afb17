"""Node functions become TensorFlow: translation of Python callables.

A Node's output function (or a connection function on a Node or a Direct
ensemble) is translated from its source: we find its ``lambda`` or ``def`` in
its file (`source`), check and execute it symbolically over an expression IR
(`convert`, with the allow-list in `library` and numpy's semantics in `expr`),
and write TensorFlow statements from the IR (`emit`). The user's code never
runs, and their source never reaches the generated module except as a comment.

Class-based callables (a bound method, or an object with ``__call__``) are
translated too; attributes that the method assigns (``self.buf = ...``,
``self.buf[i] = ...``) become state of the compiled model, starting from their
values at compile time; other attributes are constants.

What cannot be translated raises `Untranslatable`, naming the construct and
its ``file:line``; the function then stays a Python hook.
"""

from __future__ import annotations

import ast
import functools
import inspect
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from nengo.builder.operator import SimPyFunc
from nengo.builder.signal import Signal

from . import emit, library, source, spa
from . import expr as E
from .convert import Converter, Function, Result
from .expr import Untranslatable

__all__ = [
    "NotTranslated",
    "Translated",
    "Translation",
    "Translator",
    "Untranslatable",
    "translate",
    "translate_functions",
]


@dataclass(frozen=True)
class StateVar:
    """An attribute of the node's object that the function updates."""

    attr: str
    leaf: E.Leaf
    initial: np.ndarray  # its value at compile time (float64, flat)
    new: E.Value  # its value after one call


@dataclass(frozen=True)
class Translated:
    output: E.Value  # shape (size_out,)
    state: tuple  # of StateVar
    uses_x: bool
    source: str  # "file.py:line: first line of the source", for a comment


@dataclass(frozen=True)
class NotTranslated:
    reason: str  # "calls print (model.py:12)"


@dataclass(frozen=True)
class Emitted:
    """The statements of a translated function, ready for the template."""

    lines: tuple
    state: tuple  # per state variable: (name, read role, write role, shape code, tf dtype)


@dataclass(frozen=True)
class Translation:
    """The translate stage's result: every ``SimPyFunc`` operator's function
    translated, or why not; and the state of the translated functions (an
    attribute the function assigns), as signals of their own that the planner
    lays out like any other."""

    enabled: bool  # False with --no-translate: every function stays a hook
    results: Mapping  # SimPyFunc op -> Translated | NotTranslated
    signals: Mapping  # (op, attribute) -> nengo Signal, its state

    def of(self, op) -> tuple:
        """``(Translated, "")``, or ``(None, reason)`` for a function that stays a hook."""
        result = self.results[op]
        if isinstance(result, NotTranslated):
            return None, result.reason
        return result, ""


def translate_functions(operators, is_const: Callable, *, enabled: bool = True) -> Translation:
    """Stage: translate the function of every ``SimPyFunc`` operator (a Node
    or connection function). ``is_const(signal)`` says whether an input never
    changes (its value is then part of the translation)."""
    operators = list(operators)
    functions = [getattr(op, "fn", None) for op in operators]
    translator = Translator(enabled, [fn for fn in functions if fn is not None])
    results, signals = {}, {}
    for op in operators:
        if not isinstance(op, SimPyFunc):
            continue
        x_value = None
        if op.x is not None and is_const(op.x):
            x_value = np.asarray(op.x.initial_value, dtype=np.float64)
        result = results[op] = translator.get(
            op,
            op.fn,
            takes_t=op.t is not None,
            x_shape=None if op.x is None else op.x.shape,
            x_value=x_value,
            size_out=0 if op.output is None else op.output.size,
        )
        for var in getattr(result, "state", ()):
            signals[op, var.attr] = Signal(var.initial, name=f"node state self.{var.attr}")
    return Translation(enabled, results, signals)


def translate(fn, *, takes_t: bool, x_shape=None, x_value=None, size_out: int) -> Translated:
    """Translate ``fn`` called as Nengo calls it: ``fn(t)``, ``fn(t, x)`` or ``fn(x)``.

    ``x_shape`` is the input's shape (None: no input); ``x_value`` its value
    if it is constant. Raises `Untranslatable`.
    """
    if size_out == 0:
        raise Untranslatable("a function without output (kept for its effects)")
    args = []
    if takes_t:
        args.append(E.Leaf((), "f", False, "t64"))
    if x_shape is not None:
        if x_value is not None:
            args.append(E.const(np.asarray(x_value, dtype=np.float64).reshape(x_shape)))
        else:
            args.append(E.Leaf(tuple(x_shape), "f", True, "x"))

    def finish(v):
        """What Nengo stores: ``output[...] = v``; we keep ``v`` flat (one
        element or ``size_out``) and broadcast it when writing."""
        v = E.cast(conv.value(v), "f")
        E.assignable(v, (size_out,))  # numpy's check
        return v if v.shape == () else E.reshape(v, (int(np.prod(v.shape)),))

    make_converter = Converter
    transcoded = spa.unwrap(fn)  # a nengo-spa Transcode: the user's function inside
    if transcoded is not None:
        fn, make_converter = transcoded.fn, transcoded.converter
        args = transcoded.arguments(args)

    handler = library.lookup(fn)
    if handler is not None:  # np.sin, passed directly
        conv = make_converter(library)
        conv.output_size = size_out
        conv.calling, conv.calling_fn = library.function_name(fn), fn
        output = finish(handler(conv, *args))
        where = f"{library.describe(fn)}"
        return Translated(output, (), _uses(output, "x"), where)

    func, self_obj = _function(fn)
    state_attrs, initial = {}, {}
    if self_obj is not None:
        for k, attr in enumerate(_assigned_attrs(func, type(self_obj))):
            value = getattr(self_obj, attr, None)
            kind = _state_kind(value, attr)
            array = np.asarray(value, dtype=np.float64)
            state_attrs[attr] = E.Leaf(array.shape, kind, True, f"state{k}")
            initial[attr] = array.reshape(-1).copy()
    conv = make_converter(library, state_attrs, self_obj)
    conv.output_size = size_out
    state = {("self", attr): leaf for attr, leaf in state_attrs.items()}
    try:
        result: Result = conv.call_function(func, args, {}, state, finish=finish)
    except Untranslatable as exc:
        exc.filename = exc.filename or func.filename
        raise
    where = source.location(func.filename, func.node.lineno)
    text = f"{where}: {source.source_line(func.filename, func.node)}"
    states = tuple(
        StateVar(attr, leaf, initial[attr], result.state.get(("self", attr), leaf))
        for attr, leaf in state_attrs.items()
    )
    output = result.value
    if output.shape != (size_out,):
        output = E.broadcast_to(output, (size_out,)) if E.is_const(output) else output
    uses_x = _uses(result.value, "x") or any(_uses(s.new, "x") for s in states)
    return Translated(output, states, uses_x, text)


def _function(fn):
    """The Python function to translate and the object it is bound to."""
    if isinstance(fn, functools.partial):
        raise Untranslatable("a functools.partial object")
    if isinstance(fn, types.FunctionType):
        return source.function_of(fn), None
    if isinstance(fn, types.MethodType):
        if isinstance(fn.__self__, type):
            raise Untranslatable("a classmethod")
        return source.function_of(fn.__func__, self_obj=fn.__self__), fn.__self__
    call = inspect.getattr_static(type(fn), "__call__", None)
    if isinstance(call, types.FunctionType):
        return source.function_of(call, self_obj=fn), fn
    raise Untranslatable(f"a call to {library.describe(fn)}")


def _state_kind(value, attr) -> str:
    if isinstance(value, bool | np.bool_):
        raise Untranslatable(f"the state self.{attr} of type bool")
    if isinstance(value, int | np.integer):
        return "i"
    if isinstance(value, float | np.floating):
        return "f"
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return "f" if value.dtype.kind == "f" else "i"
    raise Untranslatable(
        f"the state self.{attr}, a {type(value).__name__} (only numbers and numeric "
        "numpy arrays can be state)"
    )


def _assigned_attrs(func: Function, cls, seen=None) -> list:
    """Attributes of ``self`` that the method (or the methods it calls) assigns."""
    seen = set() if seen is None else seen
    if func.fn in seen:
        return []
    seen.add(func.fn)
    params = func.node.args.posonlyargs + func.node.args.args
    if not params:
        return []
    me = params[0].arg
    attrs = []

    def self_attr(node):
        while isinstance(node, ast.Subscript):
            node = node.value
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == me
        ):
            return node.attr
        return None

    for node in ast.walk(func.node):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for t in ast.walk(target) if isinstance(target, ast.Tuple | ast.List) else [target]:
                attr = self_attr(t)
                if attr is not None and attr not in attrs:
                    attrs.append(attr)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == me
        ):
            method = inspect.getattr_static(cls, node.func.attr, None)
            if isinstance(method, types.FunctionType):
                try:
                    inner = source.function_of(method, self_obj=True)
                except Untranslatable:
                    continue  # reported when the call is translated
                attrs += [a for a in _assigned_attrs(inner, cls, seen) if a not in attrs]
    return attrs


def _uses(value, name) -> bool:
    stack, seen = [value], set()
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, E.Leaf) and v.name == name:
            return True
        if isinstance(v, E.Op):
            stack.extend(v.args)
    return False


def emit_translation(tr: Translated, params, prefix: str, size_out: int) -> Emitted:
    """The TF statements computing ``output`` and the new state."""
    em = emit.Emitter(params, prefix)
    em.rows("output", tr.output, size_out)
    state = []
    for k, s in enumerate(tr.state):
        size = s.initial.size
        new = f"state{k}_new"
        em.rows(new, s.new, size)
        shape = None if s.leaf.shape == (size,) else em.batch_shape(s.leaf)
        state.append((s.leaf.name, f"state{k}", new, shape, emit.TF_DTYPES[s.leaf.dtype]))
    return Emitted(tuple(em.lines), tuple(state))


class Translator:
    """Translates the model's Python functions once each, or records why not.

    ``enabled=False`` (``--no-translate``) keeps every function a hook.
    """

    def __init__(self, enabled: bool = True, functions=()):
        self.enabled = enabled
        self.results = {}
        owners = {}
        for fn in functions:  # objects whose state several nodes may share
            obj = _owner(fn)
            if obj is not None:
                owners[id(obj)] = owners.get(id(obj), 0) + 1
        self.shared = {key for key, n in owners.items() if n > 1}

    def get(self, key, fn, **call):
        """A `Translated` or a `NotTranslated` for ``fn`` (cached under ``key``)."""
        if key not in self.results:
            self.results[key] = self._translate(fn, call)
        return self.results[key]

    def _translate(self, fn, call):
        if not self.enabled:
            return NotTranslated("translation is off (--no-translate)")
        try:
            tr = translate(fn, **call)
            if tr.state and id(_owner(fn)) in self.shared:
                raise Untranslatable("an object whose state several nodes share")
            return tr
        except Untranslatable as exc:
            where = f" ({source.location(exc.filename, exc.line)})" if exc.filename else ""
            return NotTranslated(f"{exc.construct}{where}")
        except RecursionError:
            return NotTranslated("a function too deeply nested to translate")


def _owner(fn):
    """The object whose attributes a callable may keep state in, if any."""
    if isinstance(fn, types.MethodType):
        return None if isinstance(fn.__self__, type) else fn.__self__
    if isinstance(fn, types.FunctionType):
        return None
    if isinstance(inspect.getattr_static(type(fn), "__call__", None), types.FunctionType):
        return fn
    return None
