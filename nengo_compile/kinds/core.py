"""Nengo's core operators: TimeUpdate, Reset, Copy, ElementwiseInc (and
SimProbe, which computes nothing)."""

from __future__ import annotations

import numpy as np
from nengo.builder.operator import Copy, ElementwiseInc, Reset, TimeUpdate
from nengo.builder.probe import SimProbe

from .. import ir
from ..ir import AccessRequest
from .base import (
    SKIP,
    OpKind,
    const_values,
    index_array,
    is_const,
    op_order_values,
    register,
    seg,
    train_source,
)


@register(SimProbe)
class ProbeKind(OpKind):
    """SimProbe: no computation (probes read the state after each step)."""

    def key(self, op, ctx):
        return SKIP


@register(TimeUpdate)
class TimeKind(OpKind):
    """TimeUpdate: ``step += 1; time = step * dt``."""

    name = "time"
    template = "time.py.j2"
    rank = 0

    def key(self, op, ctx):
        return ("time", "single")

    def accesses(self, ops, ctx):
        return []

    def lower(self, index, ops, acc, params, ctx):
        return ir.Group(index, self.name, self.template, "TimeUpdate", ("time",))


@register(Reset)
class ResetKind(OpKind):
    """Reset: ``dst[...] = value``, a constant."""

    name = "reset"
    template = "reset.py.j2"
    rank = 9

    def accesses(self, ops, ctx):
        return [AccessRequest("dst", "set", tuple(seg(op.dst) for op in ops), True)]

    def lower(self, index, ops, acc, params, ctx):
        dst = acc["dst"]
        values = op_order_values(
            dst, [np.broadcast_to(op.value, op.dst.shape) for op in ops], dst.access.size
        )
        return ir.Group(
            index,
            self.name,
            self.template,
            self.title(ops),
            tuple(ctx.names(op) for op in ops),
            writes={"dst": dst.access},
            consts={"value": params.const("reset", values)},
        )


@register(Copy)
class CopyKind(OpKind):
    """Copy: ``dst[dst_slice] = src[src_slice]`` (or ``+=``)."""

    name = "copy"
    template = "copy.py.j2"
    rank = 3

    def key(self, op, ctx):
        return ("copy", "merge", op.inc, is_const(op.src, ctx))

    def _indices(self, op):
        dst = index_array(op.dst, op.dst_slice)
        src = index_array(op.src, op.src_slice)
        return (src if src.shape == dst.shape else np.broadcast_to(src, dst.shape)), dst

    def accesses(self, ops, ctx):
        mode = "inc" if ops[0].inc else "set"
        pairs = [self._indices(op) for op in ops]
        requests = [
            AccessRequest("dst", mode, tuple(seg(op.dst, d) for op, (_, d) in zip(ops, pairs)))
        ]
        if not ctx.is_const(ops[0].src):
            segments = tuple(seg(op.src, s) for op, (s, _) in zip(ops, pairs))
            requests.append(AccessRequest("src", "read", segments))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        dst = acc["dst"]
        group = dict(
            index=index,
            kind=self.name,
            template=self.template,
            title=self.title(ops),
            sources=tuple(ctx.names(op) for op in ops),
            writes={"dst": dst.access},
        )
        if "src" in acc:
            return ir.Group(**group, reads={"src": acc["src"].access})
        per_op = [const_values(op.src).reshape(-1)[self._indices(op)[0]] for op in ops]
        trained = [
            train_source(ctx, op.src)
            if np.array_equal(self._indices(op)[0], np.arange(op.src.size))
            else None
            for op in ops
        ]
        if not any(trained):
            values = op_order_values(dst, per_op, dst.access.size)
            return ir.Group(**group, consts={"src": params.const("copy", values)})
        # trainable values (biases): a parameter holding zero where they go
        fixed = [np.zeros_like(v) if src else v for v, src in zip(per_op, trained)]
        name = params.add("copy", op_order_values(dst, fixed, dst.access.size))
        for source, values, positions in zip(trained, per_op, dst.op_positions):
            if source:
                params.train(name, source, positions, values)
        return ir.Group(**group, consts={"src": ir.Const(param=name)})


@register(ElementwiseInc)
class ElementwiseIncKind(OpKind):
    """ElementwiseInc: ``Y += A * X`` with numpy broadcasting."""

    name = "elementwise_inc"
    template = "elementwise_inc.py.j2"
    rank = 3

    def key(self, op, ctx):
        return ("elementwise_inc", "merge", is_const(op.A, ctx), is_const(op.X, ctx))

    @staticmethod
    def _bcast(sig, shape):
        positions = np.arange(sig.size).reshape(sig.shape)
        return np.broadcast_to(positions, shape).reshape(-1)

    def accesses(self, ops, ctx):
        requests = [AccessRequest("Y", "inc", tuple(seg(op.Y) for op in ops))]
        for role in ("X", "A"):
            if not ctx.is_const(getattr(ops[0], role)):
                requests.append(
                    AccessRequest(
                        role,
                        "read",
                        tuple(
                            seg(getattr(op, role), self._bcast(getattr(op, role), op.Y.shape))
                            for op in ops
                        ),
                    )
                )
        return requests

    def lower(self, index, ops, acc, params, ctx):
        y = acc["Y"]
        group = dict(
            index=index,
            kind=self.name,
            title=self.title(ops),
            sources=tuple(ctx.names(op) for op in ops),
            writes={"Y": y.access},
        )

        def const_operand(op, role):
            sig = getattr(op, role)
            return const_values(sig).reshape(-1)[self._bcast(sig, op.Y.shape)]

        if not acc.keys() - {"Y"}:  # both operands constant: a constant increment
            values = [const_operand(op, "A") * const_operand(op, "X") for op in ops]
            inc = params.const("inc", op_order_values(y, values, y.access.size))
            return ir.Group(**group, template="const_inc.py.j2", consts={"inc": inc})
        reads, consts = {}, {}
        for role in ("A", "X"):
            if role in acc:
                reads[role] = acc[role].access
            else:
                values = [const_operand(op, role) for op in ops]
                consts[role] = params.const("ew", op_order_values(y, values, y.access.size))
        return ir.Group(**group, template=self.template, reads=reads, consts=consts)
