"""Neuron types without a template: explicit NumPy stubs.

A ``SimNeurons`` operator whose neuron type has no template (a custom
``NeuronType`` subclass in the user's model file, say) becomes a group of its
own that calls a *stub function* of the generated module through
``tf.numpy_function``, once per batch element, as Nengo calls ``step``.

If the type's ``step`` method is self-contained NumPy code, the stub is that
method rebuilt from its checked syntax tree: ``self`` dropped, every
``self.<param>`` replaced by the parameter's value, NumPy called as ``np``.
Self-contained means: only the statements and expressions in `_STATEMENTS`
and `_EXPRESSIONS`; names that are its arguments or locals, NumPy, or a few
builtins; ``self`` used only to read numeric parameters; no private
attributes, no ``np.random`` and no file access. Anything else gives a stub
that raises ``NotImplementedError`` telling the user to pass an
implementation (``Model(neuron_steps={"TypeName": fn})``).

The compiler warns once per stubbed type; the module lists them in ``STUBS``.
Stubs run in Python: they cannot be exported, and ``jit_compile`` refuses them.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import numbers
import textwrap
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import ir
from ..ir import AccessRequest
from ..names import Namespace
from .base import OpKind, register, seg

#: builtins a self-contained step may call
BUILTINS = frozenset(
    {
        "abs",
        "bool",
        "enumerate",
        "float",
        "int",
        "len",
        "max",
        "min",
        "range",
        "round",
        "sum",
        "zip",
    }
)
#: attributes a self-contained step may not touch (randomness, files)
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "random",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "load",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "tofile",
        "memmap",
        "dump",
        "dumps",
        "ctypeslib",
        "lib",
        "testing",
        "seterr",
    }
)
_STATEMENTS = (
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Expr,
    ast.Return,
    ast.If,
    ast.For,
    ast.While,
    ast.Pass,
    ast.Break,
    ast.Continue,
)
_EXPRESSIONS = (
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.Call,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Name,
    ast.Constant,
    ast.Tuple,
    ast.List,
    ast.IfExp,
    ast.Starred,
    ast.keyword,
    ast.expr_context,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
    ast.boolop,
)


class NotSelfContained(Exception):
    """The step method cannot be copied into the module (the message says why)."""


def stub_key(op) -> tuple:
    """The merge key of a ``SimNeurons`` whose type has no template."""
    if op.state_extra:
        raise NotImplementedError(
            f"neuron type {type(op.neurons).__name__} ({op.tag or op}) has no template and "
            f"keeps non-array state ({', '.join(sorted(op.state_extra))})"
        )
    return ("neuron_stub", "single")


@dataclass(frozen=True)
class Stub(ir.Payload):
    """The stub function the group calls, and the roles of its state (in
    Nengo's order), read and set around the call."""

    stub: ir.NeuronStub
    roles: tuple


@register()
class NeuronStubKind(OpKind):
    """SimNeurons without a template: ``step`` in NumPy through ``tf.numpy_function``."""

    name = "neuron_stub"
    template = "neuron_stub.py.j2"
    rank = 1

    def accesses(self, ops, ctx):
        (op,) = ops
        requests = [
            AccessRequest("J", "read", (seg(op.J),)),
            AccessRequest("output", "set", (seg(op.output),)),
        ]
        for i, sig in enumerate(op.state.values()):
            requests.append(AccessRequest(f"state{i}", "read", (seg(sig),)))
            requests.append(AccessRequest(f"state{i}_new", "set", (seg(sig),)))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        (op,) = ops
        roles = [f"state{i}" for i in range(len(op.state))]
        return ir.Group(
            index,
            self.name,
            self.template,
            f"{type(op.neurons).__name__} ({op.output.size} neurons), NumPy stub",
            (ctx.names(op),),
            reads={"J": acc["J"].access, **{r: acc[r].access for r in roles}},
            writes={"output": acc["output"].access, **{r: acc[f"{r}_new"].access for r in roles}},
            values=Stub(make_stub(op.neurons, tuple(op.state)), tuple(roles)),
        )


def make_stub(neuron_type, state: tuple) -> ir.NeuronStub:
    """The stub of one neuron type (unnamed: `name_stubs` names it)."""
    cls = type(neuron_type)
    try:
        signature, body = rebuild_step(neuron_type)
        reason = ""
    except NotSelfContained as exc:
        signature, body, reason = "dt, J, output, **state", (), str(exc)
    return ir.NeuronStub(
        name="",
        type_name=cls.__name__,
        source=_where(cls),
        state=state,
        signature=signature,
        body=body,
        reason=reason,
    )


def name_stubs(groups) -> tuple:
    """Name the stub functions (one per distinct stub) and warn once per type.

    Returns the groups (stub groups now naming their function) and the
    distinct stubs, in order of first use. Two classes with one name (from two
    files, or defined twice) are told apart by where they are defined:
    ``"Name (file.py:12)"`` is then their key in ``STUBS`` and ``neuron_steps``.
    """
    names = Namespace()
    found = [g.values.stub for g in groups if g.kind == NeuronStubKind.name]
    sources = {}  # type name -> where each class of that name is defined
    for stub in found:
        sources.setdefault(stub.type_name, {})[stub.source] = None
    stubs = {}
    out = []
    for group in groups:
        if group.kind == NeuronStubKind.name:
            stub = group.values.stub
            if stub not in stubs:
                type_name = stub.type_name
                if len(sources[type_name]) > 1:  # two classes of one name: tell them apart
                    type_name = f"{type_name} ({stub.source})"
                name = names.name(f"stub_{stub.type_name}", "stub")
                stubs[stub] = replace(stub, name=name, type_name=type_name)
            group = replace(group, values=replace(group.values, stub=stubs[stub]))
        out.append(group)
    warned = set()
    for stub in stubs.values():
        if stub.type_name not in warned:
            warned.add(stub.type_name)
            warnings.warn(_warning(stub), stacklevel=2)
    return tuple(out), tuple(stubs.values())


def _warning(stub) -> str:
    how = (
        "its step method was copied into the module"
        if stub.body
        else f"its step could not be copied ({stub.reason}); pass it as "
        f"Model(neuron_steps={{{stub.type_name!r}: step}})"
    )
    return (
        f"neuron type {stub.type_name} ({stub.source}) has no template: it runs as a NumPy "
        f"stub through tf.numpy_function ({how}); the module cannot be exported"
    )


def _where(cls) -> str:
    """``file.py:line`` of the class (or of its step method), without folders."""
    for obj in (cls, cls.step):
        try:
            file = inspect.getsourcefile(obj)
            _, line = inspect.getsourcelines(obj)
            return f"{Path(file or '?').name}:{line}"
        except (TypeError, OSError):
            continue
    return cls.__qualname__


def rebuild_step(neuron_type) -> tuple:
    """The type's ``step`` as ``(signature, body lines)``, parameters as constants.

    Raises `NotSelfContained` when the method is not self-contained NumPy code.
    """
    fn = type(neuron_type).step
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        raise NotSelfContained("its source is not available") from None
    node = tree.body[0] if len(tree.body) == 1 else None
    if not isinstance(node, ast.FunctionDef) or node.decorator_list:
        raise NotSelfContained("step is not a plain method")
    if "__class__" in fn.__code__.co_freevars:
        raise NotSelfContained("step calls super()")
    if fn.__code__.co_freevars:
        raise NotSelfContained("step uses variables of an enclosing function")
    args = node.args
    positional = args.posonlyargs + args.args
    if not positional or positional[0].arg != "self":
        raise NotSelfContained("step has no 'self' argument")
    for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
        if not isinstance(default, ast.Constant):
            raise NotSelfContained("step has a default argument that is not a constant")

    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    body = body or [ast.Pass()]
    arg_names = {a.arg for a in positional + args.kwonlyargs}
    arg_names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    local_names = arg_names | {
        n.id
        for stmt in body
        for n in ast.walk(stmt)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    rebuilt = _Rebuilder(neuron_type, fn.__globals__, local_names).rebuild(body)

    if args.posonlyargs:  # drop self
        posonly, plain = args.posonlyargs[1:], args.args
    else:
        posonly, plain = [], args.args[1:]
    new_args = ast.arguments(
        posonlyargs=[_plain(a) for a in posonly],
        args=[_plain(a) for a in plain],
        vararg=_plain(args.vararg),
        kwonlyargs=[_plain(a) for a in args.kwonlyargs],
        kw_defaults=args.kw_defaults,
        kwarg=_plain(args.kwarg),
        defaults=args.defaults,
    )
    signature = ast.unparse(new_args)
    lines = tuple(ast.unparse(ast.Module(body=rebuilt, type_ignores=[])).splitlines())
    if not all(line.isascii() for line in lines + (signature,)):
        raise NotSelfContained("step holds non-ASCII text")
    return signature, lines


def _plain(arg):
    """An argument without its annotation."""
    return None if arg is None else ast.arg(arg=arg.arg)


class _Rebuilder(ast.NodeTransformer):
    """Checks a step body and rewrites ``self.<param>`` and NumPy's name."""

    def __init__(self, neuron_type, globals_: dict, local_names: set):
        self.neuron_type = neuron_type
        self.globals = globals_
        self.locals = local_names
        self.numpy_names = {
            name for name, value in globals_.items() if value is np and name not in local_names
        }
        if "np" in local_names:
            raise NotSelfContained("step has a local variable named 'np'")

    def rebuild(self, body: list) -> list:
        out = []
        for stmt in body:
            for node in ast.walk(stmt):
                if not isinstance(node, _STATEMENTS + _EXPRESSIONS):
                    raise NotSelfContained(f"step uses {type(node).__name__} syntax")
            out.append(self.visit(stmt))
        return [ast.fix_missing_locations(stmt) for stmt in out]

    def visit_AnnAssign(self, node):
        if node.value is None:
            raise NotSelfContained("step has a bare annotation")
        return self.visit(ast.Assign(targets=[node.target], value=node.value, lineno=0))

    def visit_Attribute(self, node):
        if node.attr.startswith("_") or node.attr in FORBIDDEN_ATTRIBUTES:
            raise NotSelfContained(f"step uses the attribute {node.attr!r}")
        if isinstance(node.value, ast.Name) and node.value.id == "self":
            if not isinstance(node.ctx, ast.Load):
                raise NotSelfContained("step assigns to an attribute of self")
            return _constant(node.attr, getattr(self.neuron_type, node.attr, None))
        return self.generic_visit(node)

    def visit_Name(self, node):
        name = node.id
        if name == "self":
            raise NotSelfContained("step uses self other than to read numeric parameters")
        if name in self.locals:
            return node
        if name in self.numpy_names:
            return ast.copy_location(ast.Name(id="np", ctx=node.ctx), node)
        if name in BUILTINS and name not in self.globals and hasattr(builtins, name):
            return node
        raise NotSelfContained(f"step uses the name {name!r}")


def _constant(attr: str, value):
    """A syntax node for a parameter's value."""
    if isinstance(value, (bool, np.bool_)):
        return ast.Constant(bool(value))
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            raise NotSelfContained(f"parameter {attr!r} is NaN")
    else:
        raise NotSelfContained(f"step reads self.{attr}, which is not a number")
    node: ast.expr
    if math.isinf(value):
        node = ast.Attribute(value=ast.Name(id="np", ctx=ast.Load()), attr="inf", ctx=ast.Load())
    else:
        node = ast.Constant(abs(value))
    negative = math.copysign(1.0, value) < 0
    return ast.UnaryOp(op=ast.USub(), operand=node) if negative else node
