"""DotInc (and SparseDotInc, BsrDotInc): ``Y += A @ X``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from nengo.builder.operator import BsrDotInc, DotInc, SparseDotInc

from .. import ir
from ..ir import AccessRequest
from . import blocks
from .base import (
    KINDS,
    OpKind,
    const_values,
    is_const,
    op_order_values,
    register,
    seg,
    tag,
    train_source,
)


@dataclass(frozen=True)
class Dense(ir.Payload):
    """``value = x @ matrix``; ``columns``: the parameter that gathers the
    outputs from equal columns computed once (None: none are equal)."""

    shape: tuple  # (inputs, outputs)
    nnz: int
    columns: str | None = None
    form: ClassVar[str] = "dense"
    template: ClassVar[str] = "ops/matmul_dense.py.j2"


@dataclass(frozen=True)
class Sparse(ir.Payload):
    """The nonzeros ``matrix`` at (``inputs``, ``outputs``) (parameter names)."""

    inputs: str
    outputs: str
    shape: tuple
    nnz: int
    form: ClassVar[str] = "sparse"
    template: ClassVar[str] = "ops/matmul_sparse.py.j2"


@dataclass(frozen=True)
class BlockProduct(ir.Payload):
    """One bucket of equal dense blocks: ``value`` ([batch, size]) from the
    input ``x``, which is the group's input gathered by ``gather``, sliced at
    ``bounds``, or as it is; ``method``: ``"sum"`` (one input: broadcast and
    sum), ``"thin"`` or ``"wide"`` (the block helpers)."""

    blocks: tuple  # (k, n_in, n_out)
    broadcast: bool
    method: str
    x: str
    value: str
    gather: str | None
    bounds: tuple | None
    weights: ir.Const
    size: int  # k * n_out


@dataclass(frozen=True)
class Blocks(ir.Payload):
    """Batched products of dense blocks; ``parts``: the buckets' values to
    concatenate (empty: one bucket); ``order``: the parameter that puts the
    outputs in order (None: they are)."""

    shape: tuple
    nnz: int
    buckets: tuple  # of BlockProduct
    parts: tuple
    order: str | None
    form: ClassVar[str] = "blocks"
    template: ClassVar[str] = "ops/matmul_blocks.py.j2"


@register(DotInc)  # also SparseDotInc and BsrDotInc
class MatMulKind(OpKind):
    """DotInc, SparseDotInc, BsrDotInc with a constant matrix: ``Y += A @ X``.

    A whole group becomes one matrix product: each operator's matrix is placed
    at the rows of its ``Y`` and the columns of its ``X`` in one merged matrix
    (summing where operators share outputs), applied densely or as a sparse
    matrix depending on its density.
    """

    name = "matmul"
    template = "matmul.py.j2"
    rank = 8

    def key(self, op, ctx):
        """A constant matrix merges into one product; a learned (changing)
        one is a ``learned_matmul`` (`learning.LearnedMatMulKind`), merged
        with others of its shape."""
        if is_const(op.A, ctx):
            return ("matmul", "merge", is_const(op.X, ctx))
        if isinstance(op, (SparseDotInc, BsrDotInc)):
            raise NotImplementedError(f"sparse DotInc with a learned matrix ({tag(op)})")
        if op.A.ndim != 2:
            raise NotImplementedError(f"DotInc with a learned {op.A.ndim}-D matrix ({tag(op)})")
        return KINDS["learned_matmul"].key(op, ctx)

    def accesses(self, ops, ctx):
        requests = [AccessRequest("Y", "inc", tuple(seg(op.Y) for op in ops), True)]
        if not ctx.is_const(ops[0].X):
            requests.append(AccessRequest("X", "read", tuple(seg(op.X) for op in ops), True))
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
        if "X" not in acc:  # constant input: the increment is a constant
            values = []
            for op in ops:
                x = const_values(op.X).reshape(-1)
                values.append(np.asarray(blocks.matrix(op) @ x).reshape(-1))
            inc = params.const("inc", op_order_values(y, values, y.access.size))
            return ir.Group(**group, template="const_inc.py.j2", consts={"inc": inc})

        x = acc["X"]
        per_op = [
            (xpos, ypos, blocks.matrix(op))
            for op, ypos, xpos in zip(ops, y.op_positions, x.op_positions)
        ]
        shape = (x.access.size, y.access.size)  # we store the transpose: x @ M^T
        nnz = sum(m.nnz if hasattr(m, "row") else m.size for _, _, m in per_op)
        total = shape[0] * shape[1]
        trained = [
            train_source(ctx, op.A) if isinstance(m, np.ndarray) and op.A.ndim == 2 else None
            for op, (_, _, m) in zip(ops, per_op)
        ]
        if any(trained):
            return self._trained(group, x, shape, nnz, per_op, trained, params)
        buckets = blocks.buckets(*shape, per_op) if len(ops) > 1 else None
        stored = sum(b.weights.size for b in buckets or ())
        if (
            buckets
            and len(buckets) <= blocks.MAX_BUCKETS
            and nnz >= blocks.BLOCK_DENSITY * stored
            and stored <= blocks.BLOCK_SAVING * total
            and total >= blocks.BLOCK_MIN_SIZE
        ):
            consts, products = {}, []
            sources, offset = [], 0  # per bucket output: its column in the computed value
            single = len(buckets) == 1
            for i, bucket in enumerate(buckets):
                weights, source = blocks.unique_columns(bucket.weights)
                sources.append(source + offset)
                k, n_in, n_out = weights.shape
                offset += k * n_out
                inputs = bucket.inputs
                gather, bounds = None, None
                if not np.array_equal(inputs, np.arange(inputs[0], inputs[0] + len(inputs))):
                    gather = params.add("block_in", inputs, integer=True)
                elif (int(inputs[0]), int(inputs[-1]) + 1) != (0, shape[0]):
                    bounds = (int(inputs[0]), int(inputs[-1]) + 1)  # a slice of x
                consts[f"blocks{i}"] = ir.Const(param=params.add("blocks", weights))
                # thin blocks: multiply and sum (TF's batched matmul is slow on them)
                broadcast = min(n_in, n_out) <= blocks.BROADCAST_MAX
                products.append(
                    BlockProduct(
                        blocks=(k, n_in, n_out),
                        broadcast=broadcast,
                        method=("sum" if n_in == 1 else "thin") if broadcast else "wide",
                        x="x" if single else f"x{i}",
                        value="value" if single else f"value{i}",
                        gather=gather,
                        bounds=bounds,
                        weights=consts[f"blocks{i}"],
                        size=k * n_out,
                    )
                )
            # the output value's order, from the computed columns (some shared)
            outputs = np.concatenate([b.outputs for b in buckets])
            order = np.concatenate(sources)[np.argsort(outputs)]
            values = Blocks(
                shape=shape,
                nnz=int(nnz),
                buckets=tuple(products),
                parts=() if single else tuple(b.value for b in products),
                order=None
                if np.array_equal(order, np.arange(shape[1]))
                else params.add("order", order, integer=True),
            )
            return self._group(group, x, consts, values)
        rows, cols, vals = (np.concatenate(part) for part in zip(*(blocks.coo(*p) for p in per_op)))
        if total >= blocks.SPARSE_MIN_SIZE and nnz < blocks.SPARSE_DENSITY * total:
            # duplicates summed; the product is a gather of the inputs times the
            # values, summed into the outputs (XLA compiles this, not tf.sparse)
            flat = cols.astype(np.int64) * shape[1] + rows
            uniq, inverse = np.unique(flat, return_inverse=True)
            summed = np.zeros(len(uniq))
            np.add.at(summed, inverse, vals)
            values = Sparse(
                inputs=params.add("sp_in", uniq // shape[1], integer=True),
                outputs=params.add("sp_out", uniq % shape[1], integer=True),
                shape=shape,
                nnz=int(len(uniq)),
            )
            consts = {"matrix": ir.Const(param=params.add("sp_value", summed))}
        else:
            dense = blocks.summed((cols, rows), vals, shape)
            columns = None
            if total <= blocks.DEDUPE_MAX_SIZE:
                # equal outputs (say a probe and a connection decoding the same
                # function of one ensemble) are computed once
                unique, inverse = np.unique(dense, axis=1, return_inverse=True)
                if unique.shape[1] < shape[1]:
                    dense = unique
                    columns = params.add("columns", inverse.ravel(), integer=True)
            values = Dense(shape=shape, nnz=int(nnz), columns=columns)
            consts = {"matrix": ir.Const(param=params.add("weights", dense))}
        return self._group(group, x, consts, values)

    def _trained(self, group, x, shape, nnz, per_op, trained, params):
        """A product with trainable matrices: dense, each entry where its
        operator's matrix puts it (no blocks, no equal columns merged: the
        trained values may come to differ)."""
        entries = [blocks.coo(*p) for p in per_op]
        rows, cols, vals = (np.concatenate(part) for part in zip(*entries))
        fixed = np.concatenate(
            [np.zeros_like(v) if src else v for (_, _, v), src in zip(entries, trained)]
        )
        name = params.add("weights", blocks.summed((cols, rows), fixed, shape))
        for source, (r, c, v) in zip(trained, entries):
            if source:  # a dense matrix's entries, in C order (blocks.coo)
                params.train(name, source, c.astype(np.int64) * shape[1] + r, v)
        values = Dense(shape=shape, nnz=int(nnz), columns=None)
        return self._group(group, x, {"matrix": ir.Const(param=name)}, values)

    def _group(self, group, x, consts, values):
        return ir.Group(
            **group, template=self.template, reads={"X": x.access}, consts=consts, values=values
        )
