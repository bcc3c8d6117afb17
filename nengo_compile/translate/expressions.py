"""Expressions of symbolic execution: `Expressions`, the part of
`convert.Converter` that evaluates expressions to IR values (names,
operators, subscripts, attributes, calls and comprehensions)."""

from __future__ import annotations

import ast
import inspect
import types

import numpy as np

from . import expr as E
from . import indexing
from .expr import Untranslatable, Value
from .objects import (
    UNBOUND,
    Method,
    SelfRef,
    _is_library,
    _is_static_int,
    _type_name,
    _wrap,
)


class Expressions:
    """Evaluates expressions for `convert.Converter` (a mixin)."""

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
            return slice(*(self.slice_bound(p) for p in parts))
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

    def slice_bound(self, v):
        """A static bound as an int; a computed one stays a value (`indexing`)."""
        if isinstance(v, Value) and not E.is_const(v):
            if v.shape != () or v.dtype not in "bi":
                raise Untranslatable("a slice bound that is not one integer")
            return v
        return self.static_int(v)

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
            if isinstance(key, slice) and not indexing.is_computed(key):
                return obj[key]
            if isinstance(key, Value) and E.is_const(key) and key.shape == () and key.dtype in "bi":
                try:
                    return obj[int(key.array)]
                except IndexError as exc:
                    raise Untranslatable("an index out of range") from exc
        value = self.value(obj)
        if indexing.is_computed(key):
            return indexing.read(value, key)
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
