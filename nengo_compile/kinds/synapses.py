"""Synapses: Nengo's LinearFilter family (Lowpass, Alpha, general and
discrete filters) and the Triangle FIR filter, as SimProcess operators.

Nengo picks one of four step implementations from the filter's discrete
state-space matrices ``(A, B, C, D)``; we pick the same one, so the arithmetic
is the same:

* ``NoX``:   ``y = D u``                         (no state)
* ``OneX``:  ``x = a x + b u; y = x``             (one state, no passthrough)
* ``NoD``:   ``x = A x + B u; y = C x``           (no passthrough)
* ``General``: ``y = C x + D u; x = A x + B u``
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from nengo.synapses import LinearFilter, Triangle

from .. import ir
from ..ir import AccessRequest
from .base import OpKind, op_order_values, register, seg

#: discrete state-space matrices by filter parameters and dt: a model's many
#: equal synapses (every Lowpass(0.005)) are discretised once
_SS_CACHE: dict = {}


def _discrete_ss(process, dt) -> tuple:
    num, den = np.asarray(process.num), np.asarray(process.den)
    key: tuple = (type(process), num.tobytes(), num.shape, den.tobytes(), den.shape)
    key += (process.analog, process.method, float(dt))
    if key not in _SS_CACHE:
        if len(_SS_CACHE) >= 4096:
            _SS_CACHE.clear()
        matrices = tuple(np.array(m) for m in process._get_ss(dt))
        for m in matrices:
            m.flags.writeable = False  # shared by every filter with these parameters
        _SS_CACHE[key] = matrices
    return _SS_CACHE[key]


#: (operator, dt) -> `_step_class`: asked for by the merge key, the accesses
#: and the lowering of every filter
_STEP_CLASSES = weakref.WeakKeyDictionary()


def _step_class(op, dt):
    known = _STEP_CLASSES.setdefault(op, {})
    if dt not in known:
        known[dt] = _find_step_class(op, dt)
    return known[dt]


def _find_step_class(op, dt):
    A, B, C, D = _discrete_ss(op.process, dt)
    X = op.state["X"].initial_value
    for cls in (LinearFilter.NoX, LinearFilter.OneX, LinearFilter.NoD, LinearFilter.General):
        if cls.check(A, B, C, D, X):
            return cls.__name__, (A, B, C, D)
    raise NotImplementedError(f"linear filter {op.process} has an unexpected form")


def state_order(op):
    """X is (k, n) in Nengo; we lay it out as (n, k) so a group is [N, k]."""
    k = op.state["X"].shape[0]
    n = op.output.size
    return np.arange(k * n).reshape(k, n).T.reshape(-1)


@dataclass(frozen=True)
class FilterStep(ir.Payload):
    """A group of filters of one step form (``templates/ops/_filter.py.j2``):
    its state is read as ``[batch, size * order]`` and stepped as
    ``[batch, size, order]``. ``read_in_reshape``: the state is read inside
    the reshape (one statement; the form filtered noise has always had)."""

    step: str  # "NoX", "OneX", "NoD" or "General"
    size: int
    order: int
    flat_size: int  # size * order
    read_in_reshape: bool = False


@register(LinearFilter)  # Lowpass, Alpha, ...
class LinearFilterKind(OpKind):
    """Nengo's LinearFilter, stepped in the form Nengo picks (module docstring);
    filters merge by step form and order."""

    name = "linear_filter"
    template = "linear_filter.py.j2"
    rank = 2
    hook_fallback = False  # a filter we cannot compile is an error, not a hook

    def key(self, op, ctx):
        if op.input is None:
            raise NotImplementedError(f"linear filter without input ({op.tag})")
        name, (A, _, _, _) = _step_class(op, ctx.dt)
        return ("linear_filter", "merge", op.mode, name, len(A))

    def accesses(self, ops, ctx):
        mode = {"update": "update", "set": "set", "inc": "inc"}[ops[0].mode]
        requests = [
            AccessRequest("input", "read", tuple(seg(op.input) for op in ops)),
            AccessRequest("output", mode, tuple(seg(op.output) for op in ops)),
        ]
        step, _ = _step_class(ops[0], ctx.dt)
        if step != "NoX":
            segments = tuple(seg(op.state["X"], state_order(op)) for op in ops)
            requests.append(AccessRequest("X", "read", segments))
            requests.append(AccessRequest("X_new", "set", segments))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        step, _ = _step_class(ops[0], ctx.dt)
        out = acc["output"]
        size = out.access.size
        mats = [_step_class(op, ctx.dt)[1] for op in ops]
        k = len(mats[0][0])

        consts = filter_constants(step, mats, ops, out, params)
        reads = {"input": acc["input"].access}
        writes = {"output": out.access}
        if step != "NoX":
            reads["X"] = acc["X"].access
            writes["X"] = acc["X_new"].access
        return ir.Group(
            index,
            self.name,
            self.template,
            f"LinearFilter[{step}, order {k}] x{len(ops)} ({size} values)",
            tuple(ctx.names(op) for op in ops),
            reads=reads,
            writes=writes,
            consts=consts,
            values=FilterStep(step, size, k, size * k),
        )


def filter_constants(step, mats, ops, out, params) -> dict:
    """The constants of a group of filters of one step form (see the module
    docstring): scalars or per-element vectors; matrices shared by every
    element or one per element. ``mats`` holds each op's ``(A, B, C, D)``."""
    size = out.access.size
    k = len(mats[0][0])

    def per_element(fn, width=None):
        values = [
            np.tile(np.asarray(fn(m), dtype=np.float64), (op.output.size, 1))
            for op, m in zip(ops, mats)
        ]
        if width is None:
            flat = [v.reshape(-1) for v in values]
            return params.const(step.lower(), op_order_values(out, flat, size))
        return _per_element_matrix(params, step.lower(), out, values, width, size)

    consts = {}
    if step == "NoX":
        consts["d"] = per_element(lambda m: [m[3].item()])
    elif step == "OneX":
        consts["a"] = per_element(lambda m: [m[0].item()])
        consts["b"] = per_element(lambda m: [m[2].item() * m[1].item()])
    else:
        consts["A"] = per_element(lambda m: np.asarray(m[0]).reshape(-1), (k, k))
        consts["B"] = per_element(lambda m: np.asarray(m[1]).reshape(-1), (k,))
        consts["C"] = per_element(lambda m: np.asarray(m[2]).reshape(-1), (k,))
        if step == "General":
            consts["D"] = per_element(lambda m: [m[3].item()])
    return consts


def _per_element_matrix(params, prefix, out, values, width, size):
    """A matrix shared by all elements ([*width]) or one per element ([size, *width])."""
    first = values[0][0]
    if all(np.array_equal(v, np.broadcast_to(first, v.shape)) for v in values):
        return ir.Const(param=params.add(prefix, first.reshape(width)))
    full = np.zeros((size, int(np.prod(width))))
    for pos, v in zip(out.op_positions, values):
        full[pos] = v
    return ir.Const(param=params.add(prefix, full.reshape((size,) + tuple(width))))


@dataclass(frozen=True)
class TriangleTaps(ir.Payload):
    """The FIR state ``X``, read as ``[batch, flat_size]``, stepped as
    ``[batch, size, n_taps]``."""

    n_taps: int
    size: int
    flat_size: int  # size * n_taps


@register(Triangle)
class TriangleKind(OpKind):
    """Triangle FIR filter (one operator per group)."""

    name = "triangle"
    template = "triangle.py.j2"
    rank = 2
    hook_fallback = False

    def key(self, op, ctx):
        return ("triangle", "single")

    def accesses(self, ops, ctx):
        (op,) = ops
        mode = {"update": "update", "set": "set", "inc": "inc"}[op.mode]
        n_taps = op.state["X"].shape[0]
        n = op.output.size
        x_order = np.arange(n_taps * n).reshape(n_taps, n).T.reshape(-1)
        requests = [
            AccessRequest("input", "read", (seg(op.input),)),
            AccessRequest("output", mode, (seg(op.output),)),
        ]
        for name, order in (("Y", None), ("X", x_order), ("Xi", None)):
            segments = (seg(op.state[name], order),)
            requests.append(AccessRequest(name, "read", segments))
            requests.append(AccessRequest(f"{name}_new", "set", segments))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        (op,) = ops
        n_taps, n0, ndiff = op.process._get_coefficients(ctx.dt)
        return ir.Group(
            index,
            self.name,
            self.template,
            f"Triangle ({n_taps} taps, {op.output.size} values)",
            (ctx.names(op),),
            reads={name: acc[name].access for name in ("input", "Y", "X", "Xi")},
            writes={
                "output": acc["output"].access,
                **{name: acc[f"{name}_new"].access for name in ("Y", "X", "Xi")},
            },
            consts={"n0": ir.Const(value=float(n0)), "ndiff": ir.Const(value=float(ndiff))},
            values=TriangleTaps(n_taps, op.output.size, n_taps * op.output.size),
        )
