"""Block helpers: what a generated ``_step`` calls to read, write and multiply
its state blocks (``[batch, size]`` tensors)."""

from __future__ import annotations

import tensorflow as tf

__all__ = [
    "SMALL_BATCH",
    "THIN_SUMMED_INPUTS",
    "_batched_blocks",
    "_drawn",
    "_drawn_shape",
    "_expm1_portable",
    "_expm1_series",
    "_fill",
    "_inc_gather",
    "_inc_slice",
    "_log1p_portable",
    "_log1p_series",
    "_matvec",
    "_normal_draw",
    "_own_rows",
    "_poisson_rows",
    "_set_gather",
    "_set_slice",
    "_thin_blocks",
    "_wide_blocks",
]

#: batch size from which thin blocks of a product are applied as a batched product
SMALL_BATCH = 16
#: under XLA, thin blocks with at most this many inputs are multiplied and
#: summed at any batch size (XLA's batched product of such thin blocks is slower)
THIN_SUMMED_INPUTS = 64


def _fill(batch, size, value, dtype):
    """``value`` broadcast to ``[batch, size]``.

    A tensor (a parameter that may train) is added to zeros instead: inside an
    XLA loop, the gradient of ``broadcast_to`` needs its shape as a constant,
    and the loop's gradient sees the batch size only as a saved value."""
    if tf.is_tensor(value):
        return tf.zeros(tf.stack([batch, size]), dtype) + tf.convert_to_tensor(value, dtype)
    return tf.broadcast_to(tf.convert_to_tensor(value, dtype), tf.stack([batch, size]))


def _set_slice(block, start, stop, value):
    return tf.concat([block[:, :start], value, block[:, stop:]], axis=1)


def _inc_slice(block, start, stop, value):
    return tf.concat([block[:, :start], block[:, start:stop] + value, block[:, stop:]], axis=1)


def _set_gather(block, index, value):
    updated = tf.tensor_scatter_nd_update(tf.transpose(block), index[:, None], tf.transpose(value))
    return tf.transpose(updated)


def _inc_gather(block, index, value):
    updated = tf.tensor_scatter_nd_add(tf.transpose(block), index[:, None], tf.transpose(value))
    return tf.transpose(updated)


def _thin_blocks(x, blocks, batch, xla, portable):
    """``x`` ``[batch, k * n_in]`` times ``k`` blocks ``[n_in, n_out]`` with few inputs or
    outputs: multiplied and summed for a few batch elements, or under XLA for
    blocks of at most ``THIN_SUMMED_INPUTS`` inputs at any batch size, or in a
    TFLite or ONNX export (``portable``: one way, no branch on the batch size,
    which onnxruntime cannot run inside the loop); else one batched product
    from ``SMALL_BATCH`` on (each the faster there; see benchmarks/README.md)."""
    k, n_in, n_out = blocks.shape

    def summed():
        return tf.reduce_sum(tf.reshape(x, [batch, k, n_in, 1]) * blocks, axis=2)

    def batched():
        return _batched_blocks(x, blocks, batch)

    if portable or (xla and n_in <= THIN_SUMMED_INPUTS):
        return summed()
    if x.shape[0] is None:  # a batch size known only when it runs
        return tf.cond(batch < SMALL_BATCH, summed, batched)
    return summed() if x.shape[0] < SMALL_BATCH else batched()


def _wide_blocks(x, blocks, batch, xla):
    """``x`` ``[batch, k * n_in]`` times ``k`` blocks ``[n_in, n_out]``: one batched
    product, or without XLA, for a few blocks, one 2-D product each (oneDNN's
    batched product is slow on these shapes: PES benchmark, 2 blocks of
    32x2048, batch 1: 194 -> 87 us per step)."""
    k, n_in, n_out = blocks.shape
    if not xla and k <= 4:
        parts = [tf.matmul(x[:, i * n_in : (i + 1) * n_in], blocks[i]) for i in range(k)]
        return tf.stack(parts, axis=1)
    return _batched_blocks(x, blocks, batch)


def _batched_blocks(x, blocks, batch):
    """``x`` ``[batch, k * n_in]`` times ``k`` blocks ``[n_in, n_out]`` as one batched
    product: ``[batch, k, n_out]``."""
    k, n_in, _ = blocks.shape
    xb = tf.transpose(tf.reshape(x, [batch, k, n_in]), [1, 0, 2])
    return tf.transpose(tf.matmul(xb, blocks), [1, 0, 2])


def _matvec(A, x):
    """``A @ x`` for learned matrices ``A`` ``[batch, k, m, n]`` and ``x`` ``[batch, k, n]``.

    For one batch element and one matrix, one 2-D product ``x A^T``: without
    XLA, oneDNN's batched product is slow on these shapes (PES benchmark:
    271 -> 200 us per step); under XLA too, where a product with two equal
    columns (once used to keep ``x``'s computation out of the product) is a
    slow dot of its own once the matrix's update is a vectorised loop
    (``LOOP_SHAPES``; PES benchmark, float32: 174 -> 135 us)."""
    if x.shape[0] == 1 and x.shape[1] == 1:
        m, n = A.shape[2], A.shape[3]
        y = tf.matmul(tf.reshape(x, [1, n]), tf.reshape(A, [m, n]), transpose_b=True)
        return tf.reshape(y, [1, 1, m])
    return tf.linalg.matvec(A, x)


def _expm1_portable(x):
    """``exp(x) - 1`` to a few ulp, from ops every runtime has."""
    return tf.tanh(x / 2.0) * (tf.exp(x) + 1.0)


def _log1p_portable(x):
    """``log(1 + x)`` to a few ulp (Goldberg's method), both branches finite."""
    u = 1.0 + x
    d = u - 1.0
    exact = tf.equal(d, 0.0)
    return tf.where(exact, x, tf.math.log(u) * (x / tf.where(exact, tf.ones_like(d), d)))


# ---- expm1 and log1p on small arguments, for XLA --------------------------------------
# XLA on CPU computes float64 expm1 and log1p one element at a time: in a LIF
# step of 2,048 neurons they took 16 of 20 us. Where the argument is known to be
# small, a short Taylor series (its length chosen at compile time for the
# dtype's precision over that range: `nengo_compile.kinds.neurons`) is a few
# vector multiply-adds and as exact (within 1-2 ulp, as XLA's own functions
# are of NumPy's).


def _horner(x, coefficients):
    """``c0 + c1 x + c2 x^2 + ...`` by Horner's rule."""
    y = coefficients[-1]
    for c in coefficients[-2::-1]:
        y = c + x * y
    return y


def _expm1_series(x, terms, one):
    """``expm1(x)`` for ``|x|`` at most the bound that ``terms`` (the number
    of terms of ``x + x^2/2! + ...``) was chosen for. The division by ``one``
    (a parameter holding 1.0) changes no value; it makes XLA compute the series
    once: XLA copies cheap elementwise code into each of its consumers, but
    not a division."""
    coefficients = [1.0]  # 1/k! for k = 1 .. terms
    for k in range(2, terms + 1):
        coefficients.append(coefficients[-1] / k)
    return x * _horner(x, coefficients) / one


def _log1p_series(x, terms, bound):
    """``log1p(x)``: by ``terms`` terms of ``x - x^2/2 + x^3/3 - ...`` where
    every ``|x|`` is at most ``bound`` (which ``terms`` was chosen for), else
    by ``tf.math.log1p``. The reversals around the fallback change nothing but
    keep it a branch that runs only when taken: XLA turns a conditional whose
    branches are elementwise into a select, which computes both."""
    coefficients = [(-1.0) ** k / (k + 1) for k in range(terms)]
    return tf.cond(
        tf.reduce_max(tf.abs(x)) <= bound,
        lambda: x * _horner(x, coefficients),
        lambda: tf.reverse(tf.math.log1p(tf.reverse(x, [-1])), [-1]),
    )


# ---- random draws of a part of a batch -----------------------------------------------
# A part of a batch (a replica's slice in ``run(strategy=...)``) gets the draws
# its rows get in a run of the whole batch: it draws for the whole batch, in
# the shape a run of it draws (XLA's normal draws are laid out by the shape:
# row ``i`` of a draw of ``n`` rows can differ from row ``i`` of ``m`` rows)
# and keeps its own rows. ``rows`` is ``(start, stop, total)`` (Python ints:
# this part is rows ``start:stop`` of a batch of ``total``; rows past
# ``total`` pad it, and draw zeros), or 0 for a run of the whole batch.


def _drawn(batch, rows):
    """How many rows a part of a batch draws (``total``: the whole batch's)."""
    return rows[2] if rows else batch


def _drawn_shape(x, rows):
    """The shape of ``x`` ``[batch, ...]`` for the whole batch."""
    shape = tf.shape(x)
    return tf.concat([[rows[2]], shape[1:]], 0) if rows else shape


def _own_rows(draw, rows):
    """The part's rows of a draw for the whole batch (zeros for padding)."""
    if not rows:
        return draw
    start, stop, total = rows
    if stop > total:
        padding = [[0, stop - total]] + [[0, 0]] * (draw.shape.rank - 1)
        draw = tf.pad(draw, padding)
    return draw[start:stop]


def _normal_draw(shape, key, counter, dtype):
    """A Philox normal draw of ``shape`` (key ``[1]``, counter ``[2]``, uint64)."""
    return tf.raw_ops.StatelessRandomNormalV2(
        shape=shape, key=key, counter=counter, alg=1, dtype=dtype
    )


def _poisson_rows(seed, lam, rows, dtype):
    """Poisson draws of means ``lam`` ``[batch, n]`` for a part of a batch
    (the other rows drawn with mean 0: each element's draws follow its
    position alone)."""
    if rows:
        start, stop, total = rows
        lam = tf.pad(lam, [[start, max(total - stop, 0)], [0, 0]])
        return tf.random.stateless_poisson(tf.shape(lam), seed, lam, dtype=dtype)[start:stop]
    return tf.random.stateless_poisson(tf.shape(lam), seed, lam, dtype=dtype)
