"""From a function's checked AST to expression IR, by symbolic execution.

The body runs statement by statement over an environment of IR values (and
static Python objects: modules, functions, constants). Nothing of the user's
runs: names are looked up in the function's closure and globals, and only
constants (numbers, numeric arrays, lists of them) and functions from the
allow-list in `library` are taken from there. Loops over static ranges are
unrolled; ``if`` on a value computes both branches and selects with
``tf.where`` (a ``return`` inside a branch continues with the rest of the body
on each side, then selects).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import expr as E
from .expr import Untranslatable, Value

#: at most this many statements are executed per function (unrolled loops, branches)
MAX_STATEMENTS = 5000
MAX_DEPTH = 8


@dataclass
class Function:
    """A Python function to translate: its AST and where its names come from."""

    node: ast.AST  # ast.Lambda or ast.FunctionDef
    fn: object  # the function object (for its globals, closure and defaults)
    filename: str
    self_obj: object = None
    has_self: bool = False

    def lookup(self, name):
        code = self.fn.__code__
        if name in code.co_freevars and self.fn.__closure__ is not None:
            cell = self.fn.__closure__[code.co_freevars.index(name)]
            try:
                return cell.cell_contents
            except ValueError as exc:
                raise Untranslatable(f"the name {name!r} (not yet bound)") from exc
        if name in self.fn.__globals__:
            return self.fn.__globals__[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise Untranslatable(f"the undefined name {name!r}")


@dataclass(frozen=True)
class Bind:
    """A loop variable binding inside an unrolled loop."""

    target: ast.AST
    value: object


@dataclass(frozen=True)
class Result:
    value: object
    state: dict


class SelfRef:
    """``self`` inside a method of a stateful callable object."""

    def __init__(self, obj):
        self.obj = obj


@dataclass(frozen=True)
class Method:
    """A method of an IR value (``x.sum``) or of ``self``."""

    owner: object
    name: str


class Unbound:
    """A name bound on one side of a branch only."""


UNBOUND = Unbound()


class Converter:
    """Translates one top-level function (and everything it inlines)."""

    def __init__(self, library, state_attrs=None, self_obj=None):
        self.library = library
        self.state_attrs = state_attrs or {}  # attr -> Leaf
        self.self_obj = self_obj
        self.statements = 0
        self.depth = 0
        self.views = set()  # ids of values that are views of other arrays
        self.calling = self.calling_method = ""  # the library function being called
        self.calling_fn = None
        self.output_size = None

    # ---- functions -------------------------------------------------------
    def call_function(self, func: Function, args, kwargs, state, finish=None):
        """Run ``func`` on IR arguments; returns a `Result`."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Untranslatable("functions nested too deeply")
        try:
            env = dict(state)
            env.update(self._bind(func, args, kwargs))
            env["__func__"] = func
            node = func.node
            if isinstance(node, ast.Lambda):
                items = [ast.Return(value=node.body, lineno=node.lineno)]
            else:
                items = list(node.body)
            return self.block(items, env, finish or (lambda v: self.value(v)))
        finally:
            self.depth -= 1

    def _bind(self, func, args, kwargs):
        a = func.node.args
        if a.vararg or a.kwarg:
            raise Untranslatable("a function with *args or **kwargs")
        params = [p.arg for p in a.posonlyargs + a.args]
        if func.has_self:
            args = [SelfRef(func.self_obj), *args]
        defaults = list(func.fn.__defaults__ or ())
        bound = {}
        for i, name in enumerate(params):
            if i < len(args):
                bound[name] = args[i]
            elif name in kwargs:
                bound[name] = kwargs.pop(name)
            elif i >= len(params) - len(defaults):
                bound[name] = _wrap(defaults[i - (len(params) - len(defaults))])
            else:
                raise Untranslatable(f"a call without argument {name!r}")
        if len(args) > len(params):
            raise Untranslatable("a call with too many arguments")
        kwdefaults = func.fn.__kwdefaults__ or {}
        for p in a.kwonlyargs:
            if p.arg in kwargs:
                bound[p.arg] = kwargs.pop(p.arg)
            elif p.arg in kwdefaults:
                bound[p.arg] = _wrap(kwdefaults[p.arg])
            else:
                raise Untranslatable(f"a call without argument {p.arg!r}")
        if kwargs:
            raise Untranslatable(f"a call with unexpected arguments {sorted(kwargs)}")
        return bound

    # ---- statements ------------------------------------------------------
    def block(self, items, env, finish) -> Result:
        for i, item in enumerate(items):
            self.statements += 1
            if self.statements > MAX_STATEMENTS:
                raise Untranslatable("too many statements after unrolling loops and branches")
            if isinstance(item, Bind):
                self.assign(item.target, item.value, env)
                continue
            try:
                done = self.statement(item, items[i + 1 :], env, finish)
            except Untranslatable as exc:
                if exc.line is None:
                    exc.line = getattr(item, "lineno", None)
                    exc.filename = env["__func__"].filename
                raise
            if done is not None:
                return done
        if self.depth > 1:  # an inlined function that returns None
            return Result(None, self._state(env))
        raise Untranslatable("a path through the function that returns nothing")

    def statement(self, s, rest, env, finish):
        if isinstance(s, ast.Return):
            if s.value is None:
                raise Untranslatable("a return without a value")
            if isinstance(s.value, ast.IfExp):  # return a if c else b: per-branch shapes
                cond = self.eval(s.value.test, env)
                c = E.truth(self.value(cond))
                branches = [ast.Return(value=s.value.body), ast.Return(value=s.value.orelse)]
                for b in branches:
                    ast.copy_location(b, s)
                if E.is_const(c):
                    return self.block([branches[0 if c.array else 1]], env, finish)
                r1 = self.block([branches[0]], dict(env), finish)
                r2 = self.block([branches[1]], dict(env), finish)
                return self.merge(c, r1, r2)
            value = finish(self.eval(s.value, env))
            return Result(value, self._state(env))
        if isinstance(s, ast.Assign):
            value = self.eval(s.value, env)
            for target in s.targets:
                self.assign(target, value, env)
            return None
        if isinstance(s, ast.AnnAssign):
            if s.value is not None:
                self.assign(s.target, self.eval(s.value, env), env)
            return None
        if isinstance(s, ast.AugAssign):
            old = self.eval(_load(s.target), env)
            new = self.binop(s.op, old, self.eval(s.value, env))
            if isinstance(old, Value) and old.shape != ():  # in place: keeps shape and type
                new = E.cast(E.assignable(self.value(new), old.shape), old.dtype)
            self.assign(s.target, new, env, augmented=True)
            return None
        if isinstance(s, ast.If):
            c = E.truth(self.value(self.eval(s.test, env)))
            if E.is_const(c):
                return self.block(list(s.body if c.array else s.orelse) + list(rest), env, finish)
            if _returns(s.body) or _returns(s.orelse):
                r1 = self.block(list(s.body) + list(rest), dict(env), finish)
                r2 = self.block(list(s.orelse) + list(rest), dict(env), finish)
                return self.merge(c, r1, r2)
            env1, env2 = dict(env), dict(env)
            self.block(list(s.body) + [_END], env1, finish)
            self.block(list(s.orelse) + [_END], env2, finish)
            env.clear()
            env.update(self.merge_env(c, env1, env2))
            return None
        if isinstance(s, ast.For):
            if s.orelse or _breaks(s.body):
                raise Untranslatable("a for loop with break, continue or else")
            unrolled = []
            for item in self.iterate(self.eval(s.iter, env)):
                unrolled.append(Bind(s.target, item))
                unrolled.extend(s.body)
            return self.block(unrolled + list(rest), env, finish) if unrolled else None
        if isinstance(s, ast.Expr):
            if isinstance(s.value, ast.Constant):  # a docstring
                return None
            self.eval(s.value, env)  # raises for anything with an effect
            return None
        if s is _END:
            return Result(None, {})
        if isinstance(s, ast.Pass | ast.Assert):
            return None
        raise Untranslatable(f"a {_statement_name(s)} statement")

    def _state(self, env):
        return {k: v for k, v in env.items() if isinstance(k, tuple)}

    def merge(self, c, r1: Result, r2: Result) -> Result:
        state = dict(r1.state)
        for key, v2 in r2.state.items():
            if state.get(key) is not v2:
                state[key] = E.apply("where", c, state[key], v2)
        if r1.value is None and r2.value is None:
            return Result(None, state)
        r1 = Result(self.value(r1.value), r1.state)
        r2 = Result(self.value(r2.value), r2.state)
        outputs = {(), (1,), (self.output_size,)}
        if r1.value.shape in outputs and r2.value.shape in outputs and self.depth == 1:
            pass  # returned from the node function: both are broadcast into its output
        elif r1.value.shape != r2.value.shape:
            raise Untranslatable(
                f"branches that return arrays of different shapes {r1.value.shape} "
                f"and {r2.value.shape}"
            )
        return Result(E.apply("where", c, r1.value, r2.value), state)

    def merge_env(self, c, env1, env2):
        merged = {}
        for key in set(env1) | set(env2):
            a, b = env1.get(key, UNBOUND), env2.get(key, UNBOUND)
            if a is b:
                merged[key] = a
            elif isinstance(a, Value) and isinstance(b, Value) and a.shape == b.shape:
                merged[key] = E.apply("where", c, a, b)
                if isinstance(key, tuple):
                    merged[key] = E.cast(merged[key], "f")
            else:
                merged[key] = UNBOUND
        return merged

    def assign(self, target, value, env, augmented=False):
        if isinstance(target, ast.Name):
            env[target.id] = value
            return
        if isinstance(target, ast.Tuple | ast.List):
            items = list(self.iterate(value))
            if len(items) != len(target.elts):
                raise Untranslatable(f"unpacking {len(items)} values into {len(target.elts)}")
            for t, v in zip(target.elts, items):
                self.assign(t, v, env)
            return
        if isinstance(target, ast.Attribute):
            owner = self.eval(target.value, env)
            if not isinstance(owner, SelfRef) or target.attr not in self.state_attrs:
                raise Untranslatable(f"an assignment to the attribute {target.attr!r}")
            leaf = self.state_attrs[target.attr]
            value = self.value(value)
            if value.shape != leaf.shape:
                raise Untranslatable(
                    f"self.{target.attr} changing shape from {leaf.shape} to {value.shape}"
                )
            env[("self", target.attr)] = E.cast(value, "f")
            return
        if isinstance(target, ast.Subscript):
            base_node = target.value
            if isinstance(base_node, ast.Name):
                if base_node.id not in env:
                    raise Untranslatable(
                        f"an assignment into {base_node.id!r}, which is not local "
                        "(state outside the node's object)"
                    )
                base = env[base_node.id]
                if isinstance(base, Value) and id(base) in self.views:
                    raise Untranslatable(f"an assignment into {base_node.id!r}, a view of an array")
            elif isinstance(base_node, ast.Attribute) and isinstance(
                self.eval(base_node.value, env), SelfRef
            ):
                base = self.eval(base_node, env)
            else:
                raise Untranslatable("an assignment into a part of an expression")
            if not isinstance(base, Value):
                raise Untranslatable(f"an assignment into a {type(base).__name__}")
            key = self.static_key(self.eval(target.slice, env))
            self.assign(base_node, E.setitem(base, key, self.value(value)), env)
            return
        raise Untranslatable(f"an assignment to a {type(target).__name__}")

    def iterate(self, obj):
        if isinstance(obj, range):
            if len(obj) > 1000:
                raise Untranslatable("a loop of more than 1000 iterations")
            return [E.const(i) for i in obj]
        if isinstance(obj, list | tuple):
            return list(obj)
        if isinstance(obj, Value):
            if not obj.shape:
                raise Untranslatable("iterating over a scalar")
            return [E.index(obj, (i,)) for i in range(obj.shape[0])]
        raise Untranslatable(f"iterating over a {type(obj).__name__}")

    # ---- expressions -----------------------------------------------------
    def value(self, obj) -> Value:
        """An IR value from a value or a static object (number, list, array)."""
        if isinstance(obj, Value):
            return obj
        if isinstance(obj, list | tuple):
            return E.stack([self.value(v) for v in obj])
        if isinstance(obj, bool | int | float | np.number | np.bool_ | np.ndarray):
            return E.const(obj)
        raise Untranslatable(f"a {_type_name(obj)} where a number or array is needed")

    def eval(self, node, env):
        try:
            return self._eval(node, env)
        except Untranslatable as exc:
            if exc.line is None:
                exc.line = getattr(node, "lineno", None)
                exc.filename = env["__func__"].filename
            raise

    def _eval(self, node, env):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool | int | float):
                return E.const(node.value)
            if node.value is None or node.value is Ellipsis or isinstance(node.value, str):
                return node.value
            raise Untranslatable(f"the constant {type(node.value).__name__}")
        if isinstance(node, ast.Name):
            if node.id in env:
                value = env[node.id]
                if value is UNBOUND:
                    raise Untranslatable(f"{node.id!r}, bound on one branch only")
                return value
            return _wrap(env["__func__"].lookup(node.id), node.id)
        if isinstance(node, ast.Attribute):
            return self.attribute(self.eval(node.value, env), node.attr, env)
        if isinstance(node, ast.Subscript):
            return self.subscript(self.eval(node.value, env), self.eval(node.slice, env))
        if isinstance(node, ast.Slice):
            parts = [
                None if p is None else self.eval(p, env)
                for p in (node.lower, node.upper, node.step)
            ]
            return slice(*(self.static_int(p) for p in parts))
        if isinstance(node, ast.Tuple | ast.List):
            if any(isinstance(e, ast.Starred) for e in node.elts):
                raise Untranslatable("starred expressions")
            items = [self.eval(e, env) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else list(items)
        if isinstance(node, ast.BinOp):
            return self.binop(node.op, self.eval(node.left, env), self.eval(node.right, env))
        if isinstance(node, ast.UnaryOp):
            operand = self.eval(node.operand, env)
            if isinstance(node.op, ast.Not):
                return E.apply("not", E.truth(self.value(operand)))
            v = self.value(operand)
            if isinstance(node.op, ast.USub):
                return E.apply("neg", v)
            if isinstance(node.op, ast.UAdd):
                return v
            if v.dtype == "b":
                return E.apply("not", v)
            raise Untranslatable("bitwise inversion of numbers")
        if isinstance(node, ast.Compare):
            left = self.eval(node.left, env)
            result = None
            for op, right_node in zip(node.ops, node.comparators):
                right = self.eval(right_node, env)
                c = self.compare(op, left, right)
                result = c if result is None else E.apply("and", E.truth(result), E.truth(c))
                left = right
            return result
        if isinstance(node, ast.BoolOp):
            result = self.eval(node.values[0], env)
            for other in node.values[1:]:
                result = self.boolop(node.op, result, other, env)
            return result
        if isinstance(node, ast.IfExp):
            c = E.truth(self.value(self.eval(node.test, env)))
            if E.is_const(c):
                return self.eval(node.body if c.array else node.orelse, env)
            a, b = self.value(self.eval(node.body, env)), self.value(self.eval(node.orelse, env))
            if a.shape != b.shape:
                raise Untranslatable(
                    f"a conditional expression with branches of shapes {a.shape} and {b.shape}"
                )
            return E.apply("where", c, a, b)
        if isinstance(node, ast.Call):
            return self.call(node, env)
        if isinstance(node, ast.ListComp | ast.GeneratorExp):
            return self.comprehension(node, env)
        raise Untranslatable(f"{_expression_name(node)}")

    def static_int(self, v):
        if v is None:
            return None
        if isinstance(v, Value) and E.is_const(v) and v.shape == () and v.dtype in "bi":
            return int(v.array)
        raise Untranslatable("a slice bound computed from values")

    def static_key(self, key) -> tuple:
        key = key if isinstance(key, tuple) else (key,)
        out = []
        for k in key:
            if k is None or k is Ellipsis or isinstance(k, slice):
                out.append(k)
            elif isinstance(k, Value) and E.is_const(k):
                out.append(int(k.array) if k.shape == () and k.dtype in "bi" else k.array)
                if k.shape == () and k.dtype not in "bi":
                    raise Untranslatable("an index that is not an integer")
            elif isinstance(k, list | tuple):
                out.append(self.value(k).array if E.is_const(self.value(k)) else None)
                if out[-1] is None:
                    raise Untranslatable("an index list computed from values")
            else:
                raise Untranslatable("an index computed from values")
        return tuple(out)

    def subscript(self, obj, key):
        if isinstance(obj, dict):
            if isinstance(key, Value) and E.is_const(key) and key.shape == ():
                key = key.array.item()
            try:
                return _wrap(obj[key])
            except (KeyError, TypeError) as exc:
                raise Untranslatable(f"a dict lookup of {key!r}") from exc
        if isinstance(obj, list | tuple) and not isinstance(key, tuple):
            if isinstance(key, slice):
                return obj[key]
            if isinstance(key, Value) and E.is_const(key) and key.shape == () and key.dtype in "bi":
                try:
                    return obj[int(key.array)]
                except IndexError as exc:
                    raise Untranslatable("an index out of range") from exc
        value = self.value(obj)
        if isinstance(key, Value) and not E.is_const(key):
            return E.gather(value, key)
        result = E.index(value, self.static_key(key))
        if not E.is_const(result):
            self.views.add(id(result))
        return result

    BINOPS = {
        ast.Add: "add",
        ast.Sub: "sub",
        ast.Mult: "mul",
        ast.Div: "truediv",
        ast.Mod: "mod",
        ast.Pow: "pow",
    }

    def binop(self, op, a, b):
        if isinstance(a, list | tuple) and isinstance(b, list | tuple) and isinstance(op, ast.Add):
            if type(a) is type(b):
                return a + b  # list concatenation
        if isinstance(a, list | tuple) and isinstance(op, ast.Mult) and _is_static_int(b):
            return a * int(b.array)  # list repetition
        a, b = self.value(a), self.value(b)
        if type(op) in self.BINOPS:
            return E.apply(self.BINOPS[type(op)], a, b)
        if isinstance(op, ast.FloorDiv):
            return E.floordiv(a, b)
        if isinstance(op, ast.MatMult):
            return E.dot(a, b)
        if isinstance(op, ast.BitAnd | ast.BitOr | ast.BitXor) and a.dtype == b.dtype == "b":
            name = {ast.BitAnd: "and", ast.BitOr: "or", ast.BitXor: "xor"}[type(op)]
            return E.apply(name, a, b)
        raise Untranslatable(f"the operator {type(op).__name__}")

    COMPARE = {
        ast.Lt: "lt",
        ast.LtE: "le",
        ast.Gt: "gt",
        ast.GtE: "ge",
        ast.Eq: "eq",
        ast.NotEq: "ne",
    }

    def compare(self, op, a, b):
        if isinstance(op, ast.Is | ast.IsNot):
            if a is None or b is None:
                same = (a is None) and (b is None)
                return E.const(same if isinstance(op, ast.Is) else not same)
            raise Untranslatable("'is' comparisons")
        if type(op) not in self.COMPARE:
            raise Untranslatable(f"the comparison {type(op).__name__}")
        return E.apply(self.COMPARE[type(op)], self.value(a), self.value(b))

    def boolop(self, op, a, other_node, env):
        a_value = self.value(a)
        c = E.truth(a_value)
        if E.is_const(c):  # short-circuit, as Python does
            take_a = bool(c.array) != isinstance(op, ast.And)
            return a if take_a else self.eval(other_node, env)
        b = self.value(self.eval(other_node, env))
        if a_value.dtype == "b" and b.dtype == "b" and b.shape == ():
            return E.apply("and" if isinstance(op, ast.And) else "or", c, b)
        if a_value.shape != b.shape:
            raise Untranslatable("'and'/'or' on values of different shapes")
        if isinstance(op, ast.And):
            return E.apply("where", c, b, a_value)
        return E.apply("where", c, a_value, b)

    def comprehension(self, node, env):
        if len(node.generators) != 1 or node.generators[0].is_async:
            raise Untranslatable("a comprehension with several 'for' clauses")
        gen = node.generators[0]
        items = []
        for item in self.iterate(self.eval(gen.iter, env)):
            local = dict(env)
            self.assign(gen.target, item, local)
            keep = True
            for cond in gen.ifs:
                c = E.truth(self.value(self.eval(cond, local)))
                if not E.is_const(c):
                    raise Untranslatable("a comprehension filtered by values")
                keep = keep and bool(c.array)
            if keep:
                items.append(self.eval(node.elt, local))
        return items

    def attribute(self, obj, attr, env):
        if isinstance(obj, SelfRef):
            if attr in self.state_attrs:
                value = env.get(("self", attr), self.state_attrs[attr])
                self.views.add(id(value))
                return value
            try:
                value = inspect.getattr_static(obj.obj, attr)
            except AttributeError as exc:
                raise Untranslatable(f"the missing attribute self.{attr}") from exc
            if isinstance(value, types.FunctionType):
                return Method(obj, attr)
            if isinstance(value, property | staticmethod | classmethod):
                raise Untranslatable(f"the {type(value).__name__} self.{attr}")
            return _wrap(value, f"self.{attr}")
        if isinstance(obj, Value):
            if attr == "T":
                return E.transpose(obj)
            if attr == "shape":
                return tuple(E.const(d) for d in obj.shape)
            if attr == "size":
                return E.const(int(np.prod(obj.shape)))
            if attr == "ndim":
                return E.const(len(obj.shape))
            if attr in self.library.METHODS:
                return Method(obj, attr)
            raise Untranslatable(f"the array attribute .{attr}")
        if isinstance(obj, types.ModuleType):
            try:
                value = getattr(obj, attr)
            except AttributeError as exc:
                raise Untranslatable(f"{obj.__name__}.{attr}") from exc
            return _wrap(value, f"{obj.__name__}.{attr}")
        raise Untranslatable(f"the attribute .{attr} of a {_type_name(obj)}")

    def call(self, node, env):
        fn = self.eval(node.func, env)
        args = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise Untranslatable("a call with *args")
            args.append(self.eval(a, env))
        kwargs = {}
        for k in node.keywords:
            if k.arg is None:
                raise Untranslatable("a call with **kwargs")
            kwargs[k.arg] = self.eval(k.value, env)
        if isinstance(fn, Method) and isinstance(fn.owner, SelfRef):
            func = getattr(fn.owner.obj, fn.name)
            target = self.library.source.function_of(func.__func__, self_obj=fn.owner.obj)
            return self._inline(target, args, kwargs, env)
        if isinstance(fn, Method):
            self.calling_method = fn.name
            return self._checked(
                self.library.method, f".{fn.name}()", fn.owner, fn.name, args, kwargs
            )
        handler = self.library.lookup(fn)
        if handler is not None:
            self.calling, self.calling_fn = self.library.function_name(fn), fn
            return self._checked(handler, self.library.describe(fn), *args, **kwargs)
        if isinstance(fn, types.FunctionType) and not _is_library(fn):
            target = self.library.source.function_of(fn)
            return self._inline(target, args, kwargs, env)
        raise Untranslatable(f"a call to {self.library.describe(fn)}")

    def _checked(self, handler, name, *args, **kwargs):
        try:
            return handler(self, *args, **kwargs)
        except TypeError as exc:  # the call's arguments do not fit the handler
            raise Untranslatable(f"{name} with these arguments") from exc

    def _inline(self, target, args, kwargs, env):
        state = self._state(env)
        result = self.call_function(target, args, dict(kwargs), state, finish=lambda v: v)
        env.update(result.state)
        return result.value


_END = ast.Pass()  # marks the end of a branch that falls through


def _load(target):
    """The expression that reads an assignment target."""
    node = ast.fix_missing_locations(ast.copy_location(_as_load(target), target))
    return node


def _as_load(node):
    if isinstance(node, ast.Name):
        return ast.Name(id=node.id, ctx=ast.Load())
    if isinstance(node, ast.Attribute):
        return ast.Attribute(value=_as_load(node.value), attr=node.attr, ctx=ast.Load())
    if isinstance(node, ast.Subscript):
        return ast.Subscript(value=_as_load(node.value), slice=node.slice, ctx=ast.Load())
    raise Untranslatable(f"an augmented assignment to a {type(node).__name__}")


def _returns(stmts) -> bool:
    return any(isinstance(n, ast.Return) for s in stmts for n in ast.walk(s))


def _breaks(stmts) -> bool:
    return any(
        isinstance(n, ast.Break | ast.Continue | ast.Return) for s in stmts for n in ast.walk(s)
    )


def _is_library(fn) -> bool:
    """A function from the standard library or an installed package: never inlined
    (only the model's own functions are)."""
    top = (getattr(fn, "__module__", None) or "").split(".")[0]
    if top in getattr(sys, "stdlib_module_names", ()):
        return True
    parts = Path(fn.__code__.co_filename).parts
    return "site-packages" in parts or "dist-packages" in parts


def _is_static_int(v) -> bool:
    return isinstance(v, Value) and E.is_const(v) and v.shape == () and v.dtype in "bi"


def _type_name(obj) -> str:
    return type(obj).__qualname__


def _statement_name(s) -> str:
    names = {
        ast.While: "while",
        ast.Try: "try",
        ast.With: "with",
        ast.Raise: "raise",
        ast.Global: "global",
        ast.Nonlocal: "nonlocal",
        ast.Import: "import",
        ast.ImportFrom: "import",
        ast.Delete: "del",
        ast.FunctionDef: "nested def",
        ast.ClassDef: "class",
        ast.Break: "break",
        ast.Continue: "continue",
    }
    return names.get(type(s), type(s).__name__)


def _expression_name(node) -> str:
    names = {
        ast.Lambda: "a lambda inside the function",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.JoinedStr: "an f-string",
        ast.NamedExpr: "an assignment expression (:=)",
        ast.DictComp: "a dict comprehension",
        ast.SetComp: "a set comprehension",
        ast.Yield: "yield",
        ast.Await: "await",
    }
    return names.get(type(node), f"a {type(node).__name__} expression")


def _wrap(obj, name=None):
    """A name's value from the closure or globals: constants become IR
    constants; modules, functions and containers stay static objects."""
    if isinstance(obj, Value):
        return obj
    if isinstance(obj, bool | int | float | np.number | np.bool_):
        return E.const(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise Untranslatable(f"the array {name or ''} of type {obj.dtype}".replace("  ", " "))
        return E.const(obj)
    if isinstance(obj, list | tuple):
        return type(obj)(_wrap(e) for e in obj)
    if obj is None or isinstance(obj, str | dict | range | types.ModuleType):
        return obj
    if callable(obj):
        return obj
    what = f"{name!r}, " if name else ""
    raise Untranslatable(f"the object {what}a {_type_name(obj)} (its value may change)")
