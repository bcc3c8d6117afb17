"""Op kinds: what each kind of merged group accesses, and how it is lowered.

Each kind is registered under the name that `nengo_compile.analyse.merge_key`
gives it. A kind answers two questions:

``accesses(ops, ctx)``
    Which state elements each role of the group touches, per operator, and in
    which order the lowering wants them (asked by the planner).
``lower(index, ops, acc, params, ctx)``
    The `ir.Group` for the group, given the planner's resolved accesses.

Only roles on *mutable* signals are accesses; constant operands (weights,
biases) are gathered into parameter arrays by the lowering itself.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedError
from . import ir

KINDS: dict = {}


def register(cls):
    """Class decorator: register an op kind under ``cls.name``."""
    KINDS[cls.name] = cls()
    return cls


@dataclass(frozen=True)
class AccessRequest:
    """One role of a group: the state elements each operator touches.

    ``per_op[i]`` is a tuple of ``(base_signal, flat_indices)`` segments for
    the i-th operator. If ``order_free``, the lowering can take the elements in
    any order (the planner sorts them by position and removes duplicates).
    """

    role: str
    mode: str  # "read", "set", "inc" or "update"
    per_op: tuple
    order_free: bool = False


@dataclass(frozen=True)
class Resolved:
    """The planner's answer for one role: the access, and where each
    operator's elements sit in the accessed value."""

    access: ir.Access
    op_positions: tuple  # per op: np.ndarray of positions in the value


@dataclass(frozen=True)
class LowerContext:
    dt: float
    dtype: str
    is_const: object  # callable: Signal -> bool
    names: object = None  # callable: op -> short description
    hooks: object = None  # SimPyFunc op -> ir.Hook
    check_finite: bool = False  # translated functions check their output is finite
    translator: object = None  # nengo_compile.translate.Translator (None: no translation)


class Params:
    """Collects parameter arrays; names are a kind prefix plus a counter."""

    def __init__(self, dtype: str):
        self.dtype = np.dtype(dtype)
        self.arrays: dict = {}

    def add(self, prefix: str, array, integer: bool = False, dtype=None) -> str:
        name = f"{prefix}{len(self.arrays)}"
        dtype = dtype or (np.int32 if integer else self.dtype)
        self.arrays[name] = np.ascontiguousarray(np.asarray(array, dtype=dtype))
        return name

    def const(self, prefix: str, values) -> ir.Const:
        """A scalar if every value is equal, else a parameter array."""
        values = np.asarray(values, dtype=np.float64)
        flat = values.ravel()
        if flat.size > 0 and np.all(flat == flat[0]) and np.isfinite(flat[0]):
            return ir.Const(value=float(self.dtype.type(flat[0])))
        return ir.Const(param=self.add(prefix, values))


#: signal -> `elements(signal)`, computed once per signal (the plan asks for
#: every operator's signals several times); read-only arrays
_ELEMENTS = weakref.WeakKeyDictionary()


def elements(sig) -> np.ndarray:
    """Flat (C-order) indices of a signal's elements within its base (read-only)."""
    flat = _ELEMENTS.get(sig)
    if flat is None:
        flat = _ELEMENTS[sig] = _elements(sig)
        flat.flags.writeable = False
    return flat


def _elements(sig) -> np.ndarray:
    base = sig.base
    if base.initial_value.ndim > 0 and not base.initial_value.flags.c_contiguous:
        raise UnsupportedError([f"signal {base.name!r} is not C-contiguous"])
    if sig is base:
        return np.arange(base.size)
    if len(sig.shape) == 1:  # the usual view: a slice of a vector
        return sig.elemoffset + np.arange(sig.shape[0]) * sig.elemstrides[0]
    mem = np.asarray(sig.elemoffset)
    for n, stride in zip(sig.shape, sig.elemstrides):
        mem = mem[..., None] + np.arange(n) * stride
    # memory positions equal flat positions in a C-contiguous base
    return mem.reshape(-1)


def seg(sig, idx=None) -> tuple:
    """One access segment: a signal (optionally some of its elements)."""
    flat = elements(sig)
    return ((sig.base, flat if idx is None else flat[idx]),)


def index_array(sig, sl) -> np.ndarray:
    """Positions (within the signal) selected by ``sig[sl]``."""
    if sl is None:
        return np.arange(sig.size)
    return np.arange(sig.size).reshape(sig.shape)[sl].reshape(-1)


def const_values(sig) -> np.ndarray:
    return np.asarray(sig.initial_value, dtype=np.float64)


def op_order_values(acc: Resolved, per_op_values, size: int) -> np.ndarray:
    """Place per-operator values at their operators' positions in a value."""
    out = np.zeros(size)
    for pos, values in zip(acc.op_positions, per_op_values):
        out[pos] = np.asarray(values, dtype=np.float64).reshape(-1)
    return out


class OpKind:
    """Base class of op kinds."""

    name = ""
    template = ""
    #: planning priority: kinds with a lower rank lay out their signals first
    rank = 5

    def accesses(self, ops, ctx) -> list:
        raise NotImplementedError

    def lower(self, index, ops, acc, params, ctx) -> ir.Group:
        raise NotImplementedError

    def title(self, ops) -> str:
        return f"{self.name} x{len(ops)}"


@register
class TimeKind(OpKind):
    """TimeUpdate: ``step += 1; time = step * dt``."""

    name = "time"
    template = "time.py.j2"
    rank = 0

    def accesses(self, ops, ctx):
        return []

    def lower(self, index, ops, acc, params, ctx):
        return ir.Group(index, self.name, self.template, "TimeUpdate", ("time",))


@register
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


@register
class CopyKind(OpKind):
    """Copy: ``dst[dst_slice] = src[src_slice]`` (or ``+=``)."""

    name = "copy"
    template = "copy.py.j2"
    rank = 3

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
        values = op_order_values(
            dst,
            [const_values(op.src).reshape(-1)[self._indices(op)[0]] for op in ops],
            dst.access.size,
        )
        return ir.Group(**group, consts={"src": params.const("copy", values)})


@register
class ElementwiseIncKind(OpKind):
    """ElementwiseInc: ``Y += A * X`` with numpy broadcasting."""

    name = "elementwise_inc"
    template = "elementwise_inc.py.j2"
    rank = 3

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


def _matrix(op):
    """The operator's A as a dense or scipy-sparse 2-D matrix [Y.size, X.size]."""
    A = op.A.initial_value
    if hasattr(op, "indptr"):  # BsrDotInc
        from scipy.sparse import bsr_matrix

        return bsr_matrix((A, op.indices, op.indptr)).tocoo()
    if hasattr(A, "tocoo"):  # scipy.sparse
        return A.tocoo()
    if hasattr(A, "allocate"):  # nengo.transforms.SparseMatrix: what Nengo's simulator
        A = A.allocate()  # uses (scipy CSR, or dense with Nengo's warning)
        return A.tocoo() if hasattr(A, "tocoo") else np.asarray(A, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    if A.ndim == 0:
        return A * np.eye(op.X.size)
    if A.ndim == 1:
        return A.reshape(1, -1)
    return A


#: a merged matrix with fewer nonzeros than this fraction is applied as sparse
SPARSE_DENSITY = 0.1
#: ... but only when it is at least this large
SPARSE_MIN_SIZE = 64 * 1024


#: a group whose operators form dense blocks (see `_buckets`) is applied as
#: batched products of its blocks when they hold at least this fraction of nonzeros,
BLOCK_DENSITY = 0.25
#: ... store at most this fraction of the merged matrix,
BLOCK_SAVING = 0.5
#: ... the merged matrix has at least this many entries
BLOCK_MIN_SIZE = 4096
#: ... and the blocks come in at most this many shapes
MAX_BUCKETS = 8
#: blocks with at most this many inputs or outputs are applied by broadcasting
#: (one input) or, for small batches, multiplied and summed (`_thin_blocks`)
BROADCAST_MAX = 4
#: dense matrices up to this size are checked for equal columns (computed once)
DEDUPE_MAX_SIZE = 1 << 22


def _summed(index, values, shape) -> np.ndarray:
    """A dense array of ``shape`` with ``values`` summed at ``index`` (a fast
    ``np.add.at``)."""
    flat = np.ravel_multi_index(index, shape)
    size = int(np.prod(shape))
    return np.bincount(flat, weights=values, minlength=size).reshape(shape)


@dataclass(frozen=True)
class _Bucket:
    """Equal dense blocks of a merged product: the input columns ``inputs``
    (positions in the input value), reshaped ``[batch, k, n_in]``, times
    ``weights`` ``[k, n_in, n_out]``, give ``[batch, k, n_out]``: outputs
    ``outputs`` (positions in the output value), flattened."""

    weights: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray


def _coo(xpos, ypos, m) -> tuple:
    """An operator's nonzeros as (output positions, input positions, values) in
    the group's values: every entry of a dense matrix, the stored ones of a
    sparse one."""
    if hasattr(m, "row"):
        r, c, v = m.row, m.col, np.asarray(m.data, dtype=np.float64)
    else:
        r, c = (a.ravel() for a in np.indices(m.shape))
        v = m.ravel()
    return ypos[r], xpos[c], v


def _sorted_unique(positions):
    """``np.unique(positions)``, without sorting positions that are already
    increasing (the usual case: a signal's elements in order)."""
    if len(positions) < 2 or (positions[1:] > positions[:-1]).all():
        return positions
    return np.unique(positions)


def _span(positions):
    """``positions`` as a slice if they are many and consecutive (faster to index)."""
    if len(positions) < 64:
        return positions
    first = int(positions[0])
    if positions[-1] - first == len(positions) - 1 and (np.diff(positions) == 1).all():
        return slice(first, first + len(positions))
    return positions


def _buckets(x_size, y_size, per_op) -> list | None:
    """The block form of a merged product: a list of `_Bucket`, or None.

    Operators reading the same input elements form one block (their outputs
    side by side); blocks of equal shape form a bucket, one batched product.
    There is a block form if no two blocks share an input or an output: the
    usual shape of a merged group of encoders or decoders of ensembles.
    ``per_op`` holds, per operator, its input and output positions (in the
    group's input and output values) and its matrix (`_matrix`).
    """
    found = {}  # input positions (as bytes) -> (the positions, their operators)
    for xpos, ypos, m in per_op:
        inputs = _sorted_unique(xpos)
        found.setdefault(inputs.tobytes(), (inputs, []))[1].append((xpos, ypos, m))
    if len(found) < 2:
        return None
    # per block, sorted by its inputs: (inputs, outputs, operators)
    blocks = sorted(found.values(), key=lambda block: block[0].tolist())
    blocks = [
        (xs, _sorted_unique(np.concatenate([op[1] for op in members])), members)
        for xs, members in blocks
    ]
    inputs = np.concatenate([block[0] for block in blocks])
    outputs = np.concatenate([block[1] for block in blocks])
    if len(np.unique(inputs)) != len(inputs) or len(np.unique(outputs)) != len(outputs):
        return None  # blocks overlap
    shapes = {}
    for block in blocks:
        shapes.setdefault((len(block[0]), len(block[1])), []).append(block)
    buckets = []
    # blocks share no input or output: one map from positions to their place in
    # their own block serves every block
    local_in = np.full(x_size, -1)
    local_out = np.full(y_size, -1)
    for (n_in, n_out), members in sorted(shapes.items()):
        weights = np.zeros((len(members), n_in, n_out))
        entries = []
        for k, (ins, outs, ops) in enumerate(members):
            local_in[ins] = np.arange(n_in)
            local_out[outs] = np.arange(n_out)
            for xpos, ypos, m in ops:
                if hasattr(m, "row") or len(xpos) != n_in or len(_sorted_unique(ypos)) < len(ypos):
                    rows, cols, vals = _coo(xpos, ypos, m)  # sparse, or repeated positions
                    entries.append((np.full(len(vals), k), local_in[cols], local_out[rows], vals))
                else:  # dense, each position once: placed as it is
                    at = _span(local_in[xpos]), _span(local_out[ypos])
                    if not any(isinstance(i, slice) for i in at):
                        at = np.ix_(*at)
                    weights[k][at] += m.T
        if entries:  # summed where they repeat
            index = tuple(np.concatenate([e[i] for e in entries]) for i in range(3))
            values = np.concatenate([e[3] for e in entries])
            weights += _summed(index, values, weights.shape)
        bucket_in = np.concatenate([block[0] for block in members])
        bucket_out = np.concatenate([block[1] for block in members])
        buckets.append(_Bucket(weights, bucket_in, bucket_out))
    return buckets


def _unique_columns(weights) -> tuple:
    """Blocks ``[k, n_in, n_out]`` with each block's equal columns kept once
    (several connections decoding the same function of one ensemble), padded
    to the largest count, and, per original column (block-major), the position
    of its column in the flattened output ``[k * n_unique]``. Kept as they are
    unless the multiply-adds saved outnumber the outputs gathered back.

    Columns are grouped by a random projection, then compared exactly."""
    k, n_in, n_out = weights.shape
    unchanged = weights, np.arange(k * n_out)
    if n_in == 1:  # an elementwise product: nothing to save
        return unchanged
    # per column (block-major, as the flattened output): its projection
    projection = np.random.RandomState(0).standard_normal(n_in)
    fingerprint = np.einsum("kio,i->ko", weights, projection).reshape(-1)
    block = np.repeat(np.arange(k), n_out)
    order = np.lexsort((np.arange(len(block)), fingerprint, block))
    b, f = block[order], fingerprint[order]
    starts = np.concatenate([[True], (b[1:] != b[:-1]) | (f[1:] != f[:-1])])
    if starts.all():
        return unchanged  # no two columns of a block project alike
    first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    again = order[~starts]  # columns whose projection an earlier one has

    def columns(j):
        return weights[j // n_out, :, j % n_out]

    if not (columns(again) == columns(first[~starts])).all():
        return unchanged  # equal projections of unequal columns (or NaNs)
    group = np.cumsum(starts) - 1  # per sorted column: its unique column
    block_of = b[starts]  # per unique column, sorted by block
    local = np.arange(len(block_of)) - np.searchsorted(block_of, block_of)
    n_unique = int(local.max()) + 1
    if (n_out - n_unique) * n_in < n_out:
        return unchanged
    reduced = np.zeros((k, n_in, n_unique))
    reduced[block_of, :, local] = columns(order[starts])
    source = np.empty(len(order), dtype=np.int64)
    source[order] = block_of[group] * n_unique + local[group]
    return reduced, source


@register
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
                values.append(np.asarray(_matrix(op) @ x).reshape(-1))
            inc = params.const("inc", op_order_values(y, values, y.access.size))
            return ir.Group(**group, template="const_inc.py.j2", consts={"inc": inc})

        x = acc["X"]
        per_op = [
            (xpos, ypos, _matrix(op)) for op, ypos, xpos in zip(ops, y.op_positions, x.op_positions)
        ]
        shape = (x.access.size, y.access.size)  # we store the transpose: x @ M^T
        nnz = sum(m.nnz if hasattr(m, "row") else m.size for _, _, m in per_op)
        total = shape[0] * shape[1]
        buckets = _buckets(*shape, per_op) if len(ops) > 1 else None
        stored = sum(b.weights.size for b in buckets or ())
        if (
            buckets
            and len(buckets) <= MAX_BUCKETS
            and nnz >= BLOCK_DENSITY * stored
            and stored <= BLOCK_SAVING * total
            and total >= BLOCK_MIN_SIZE
        ):
            values = dict(form="blocks", shape=shape, nnz=int(nnz), buckets=[])
            consts = {}
            sources, offset = [], 0  # per bucket output: its column in the computed value
            for i, bucket in enumerate(buckets):
                weights, source = _unique_columns(bucket.weights)
                sources.append(source + offset)
                k, n_in, n_out = weights.shape
                offset += k * n_out
                inputs = bucket.inputs
                if np.array_equal(inputs, np.arange(inputs[0], inputs[0] + len(inputs))):
                    read = (int(inputs[0]), int(inputs[-1]) + 1)  # a slice of x
                else:
                    read = params.add("block_in", inputs, integer=True)
                consts[f"blocks{i}"] = ir.Const(param=params.add("blocks", weights))
                values["buckets"].append(
                    dict(
                        blocks=(k, n_in, n_out),
                        read=read,
                        # thin blocks: multiply and sum (TF's batched matmul is slow on them)
                        broadcast=min(n_in, n_out) <= BROADCAST_MAX,
                    )
                )
            # the output value's order, from the computed columns (some shared)
            outputs = np.concatenate([b.outputs for b in buckets])
            order = np.concatenate(sources)[np.argsort(outputs)]
            if not np.array_equal(order, np.arange(shape[1])):
                values["order"] = params.add("order", order, integer=True)
            return self._group(group, x, consts, values)
        rows, cols, vals = (np.concatenate(part) for part in zip(*(_coo(*p) for p in per_op)))
        if total >= SPARSE_MIN_SIZE and nnz < SPARSE_DENSITY * total:
            # duplicates summed; the product is a gather of the inputs times the
            # values, summed into the outputs (XLA compiles this, not tf.sparse)
            flat = cols.astype(np.int64) * shape[1] + rows
            uniq, inverse = np.unique(flat, return_inverse=True)
            summed = np.zeros(len(uniq))
            np.add.at(summed, inverse, vals)
            values = dict(
                form="sparse",
                inputs=params.add("sp_in", uniq // shape[1], integer=True),
                outputs=params.add("sp_out", uniq % shape[1], integer=True),
                shape=shape,
                nnz=int(len(uniq)),
            )
            consts = {"matrix": ir.Const(param=params.add("sp_value", summed))}
        else:
            dense = _summed((cols, rows), vals, shape)
            values = dict(form="dense", shape=shape, nnz=int(nnz))
            if total <= DEDUPE_MAX_SIZE:
                # equal outputs (say a probe and a connection decoding the same
                # function of one ensemble) are computed once
                unique, inverse = np.unique(dense, axis=1, return_inverse=True)
                if unique.shape[1] < shape[1]:
                    dense = unique
                    values["columns"] = params.add("columns", inverse.ravel(), integer=True)
            consts = {"matrix": ir.Const(param=params.add("weights", dense))}
        return self._group(group, x, consts, values)

    def _group(self, group, x, consts, values):
        return ir.Group(
            **group, template=self.template, reads={"X": x.access}, consts=consts, values=values
        )


@register
class PyFuncKind(OpKind):
    """SimPyFunc: a Python callable, translated into TF operations when
    `nengo_compile.translate` can, else kept as a named hook.

    A translated function reads its input ``x`` (if it uses it) and the state
    of its object (attributes it assigns, as their own signals), and sets its
    output and that state.
    """

    name = "pyfunc"
    template = "pyfunc.py.j2"
    rank = 4

    def translation(self, op, ctx):
        """The `Translated` function, or None (with the reason) if it stays a hook."""
        if ctx.translator is None:
            return None, ""
        x_value = None
        if op.x is not None and ctx.is_const(op.x):
            x_value = const_values(op.x)
        result = ctx.translator.get(
            op,
            op.fn,
            takes_t=op.t is not None,
            x_shape=None if op.x is None else op.x.shape,
            x_value=x_value,
            size_out=0 if op.output is None else op.output.size,
        )
        if hasattr(result, "reason"):
            return None, result.reason
        return result, ""

    def _state_signal(self, op, var, ctx):
        from nengo.builder.signal import Signal

        key = (op, var.attr)
        if key not in ctx.translator.signals:
            ctx.translator.signals[key] = Signal(var.initial, name=f"node state self.{var.attr}")
        return ctx.translator.signals[key]

    def accesses(self, ops, ctx):
        (op,) = ops
        translated, _ = self.translation(op, ctx)
        requests = []
        if op.output is not None:
            requests.append(AccessRequest("output", "set", (seg(op.output),)))
        reads_x = translated is None or translated.uses_x
        if op.x is not None and not ctx.is_const(op.x) and reads_x:
            requests.append(AccessRequest("x", "read", (seg(op.x),)))
        for k, var in enumerate(translated.state if translated else ()):
            segments = (seg(self._state_signal(op, var, ctx)),)
            requests.append(AccessRequest(f"state{k}", "read", segments))
            requests.append(AccessRequest(f"state{k}_new", "set", segments))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        (op,) = ops
        hook = ctx.hooks[op]
        translated, reason = self.translation(op, ctx)
        reads = {k: v.access for k, v in acc.items() if v.access.mode == "read"}
        writes = {k: v.access for k, v in acc.items() if v.access.mode != "read"}
        if translated is not None:
            from ..translate import emit_translation

            emitted = emit_translation(translated, params, "fn", op.output.size)
            return ir.Group(
                index,
                self.name,
                "node_tf.py.j2",
                f"{hook.name!r} translated to TensorFlow",
                (ctx.names(op),),
                reads=reads,
                writes={k.replace("_new", ""): v for k, v in writes.items()},
                values={
                    "lines": emitted.lines,
                    "source": translated.source,
                    "state": emitted.state,
                    "hook": hook,
                    "check_finite": ctx.check_finite and op.output is not None,
                },
            )
        consts = {}
        if op.x is not None and "x" not in acc:
            consts["x"] = ir.Const(param=params.add("hook_x", const_values(op.x).reshape(-1)))
        return ir.Group(
            index,
            self.name,
            self.template,
            f"hook {hook.name!r}",
            (ctx.names(op),),
            reads=reads,
            writes=writes,
            consts=consts,
            values={"hook": hook, "reason": reason},
        )
