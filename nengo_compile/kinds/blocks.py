"""The merged matrix of a group of products, and its block form: the
arithmetic behind `matmul.MatMulKind`'s choice of dense, sparse or blocks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def matrix(op):
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


#: a group whose operators form dense blocks (see `buckets`) is applied as
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


def summed(index, values, shape) -> np.ndarray:
    """A dense array of ``shape`` with ``values`` summed at ``index`` (a fast
    ``np.add.at``)."""
    flat = np.ravel_multi_index(index, shape)
    size = int(np.prod(shape))
    return np.bincount(flat, weights=values, minlength=size).reshape(shape)


@dataclass(frozen=True)
class Bucket:
    """Equal dense blocks of a merged product: the input columns ``inputs``
    (positions in the input value), reshaped ``[batch, k, n_in]``, times
    ``weights`` ``[k, n_in, n_out]``, give ``[batch, k, n_out]``: outputs
    ``outputs`` (positions in the output value), flattened."""

    weights: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray


def coo(xpos, ypos, m) -> tuple:
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


def buckets(x_size, y_size, per_op) -> list | None:
    """The block form of a merged product: a list of `Bucket`, or None.

    Operators reading the same input elements form one block (their outputs
    side by side); blocks of equal shape form a bucket, one batched product.
    There is a block form if no two blocks share an input or an output: the
    usual shape of a merged group of encoders or decoders of ensembles.
    ``per_op`` holds, per operator, its input and output positions (in the
    group's input and output values) and its matrix (`matrix`).
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
                    rows, cols, vals = coo(xpos, ypos, m)  # sparse, or repeated positions
                    entries.append((np.full(len(vals), k), local_in[cols], local_out[rows], vals))
                else:  # dense, each position once: placed as it is
                    at = _span(local_in[xpos]), _span(local_out[ypos])
                    if not any(isinstance(i, slice) for i in at):
                        at = np.ix_(*at)
                    weights[k][at] += m.T
        if entries:  # summed where they repeat
            index = tuple(np.concatenate([e[i] for e in entries]) for i in range(3))
            values = np.concatenate([e[3] for e in entries])
            weights += summed(index, values, weights.shape)
        bucket_in = np.concatenate([block[0] for block in members])
        bucket_out = np.concatenate([block[1] for block in members])
        buckets.append(Bucket(weights, bucket_in, bucket_out))
    return buckets


def unique_columns(weights) -> tuple:
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
