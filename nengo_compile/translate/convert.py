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

import numpy as np

from . import expr as E
from . import indexing
from .expr import Untranslatable, Value
from .expressions import Expressions
from .objects import UNBOUND, Bind, Function, Result, SelfRef, _wrap

__all__ = ["Converter", "Function", "Result"]

#: at most this many statements are executed per function (unrolled loops, branches)
MAX_STATEMENTS = 5000
MAX_DEPTH = 8


class Converter(Expressions):
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
            if isinstance(s.target, ast.Subscript) and indexing.has_computed_slice(
                self.eval(s.target.slice, env)
            ):
                self.update_slice(s.target, s.op, s.value, env)
                return None
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
            self.store(target, self.value(value), env)
            return
        raise Untranslatable(f"an assignment to a {type(target).__name__}")

    def store(self, target: ast.Subscript, value: Value, env, whole=False):
        """``target = value`` into a part of an array; ``whole``: ``value`` is
        the whole array, of which only the part selected by ``target`` is
        stored (`update_slice`)."""
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
        key = self.eval(target.slice, env)
        if indexing.is_computed(key):  # an index or a slice bound computed from values
            new = indexing.store(base, key, value, whole=whole)
        else:
            new = E.setitem(base, self.static_key(key), value)
        self.assign(base_node, new, env)

    def update_slice(self, target: ast.Subscript, op, value_node, env):
        """``a[lo:hi] += v`` where ``lo`` or ``hi`` is computed: the slice's
        length is computed, so ``a + v`` is computed over the whole array and
        stored where the slice selects (``v`` must be one number)."""
        base = self.value(self.eval(_load(target.value), env))
        value = self.value(self.eval(value_node, env))
        if int(np.prod(value.shape)) != 1:
            raise Untranslatable(
                f"an augmented assignment of an array of shape {value.shape} to a slice whose "
                "bounds are computed from values (only a number can be: its length is computed)"
            )
        new = self.value(self.binop(op, base, E.reshape(value, ())))
        self.store(target, E.cast(E.assignable(new, base.shape), base.dtype), env, whole=True)

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
