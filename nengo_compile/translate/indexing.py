"""Indexing at computed positions: ``a[i]``, ``a[i, j]``, ``a[i] = v``,
``a[lo:hi] = v``, where an index or a slice bound depends on ``t``, ``x`` or
state.

Reads gather along each axis indexed by a computed integer. Stores are
elementwise: ``where(mask, value, a)``, ``mask`` selecting the stored
elements (``arange(n) == i`` on an axis indexed by ``i``, the slice's range
on an axis sliced by computed bounds, a constant mask on the other axes), so
they are TensorFlow's plain elementwise operations, with XLA or without.

Semantics: a computed integer index wraps around (``i % n``): negative
indices count from the end, as in numpy; an index out of range, for which
numpy raises an IndexError inside Nengo's simulator, reads or writes the
element at ``i % n``. Slice bounds are clamped to the axis exactly as numpy
clamps them (an empty slice stores nothing).
"""

from __future__ import annotations

import numpy as np

from . import expr as E
from .expr import Untranslatable, Value


def is_computed(key) -> bool:
    """Does ``key`` (an evaluated subscript) hold an index or slice bound
    computed from values?"""
    items = key if isinstance(key, tuple) else (key,)
    for k in items:
        if isinstance(k, Value) and not E.is_const(k):
            return True
        if isinstance(k, slice) and any(
            isinstance(b, Value) and not E.is_const(b) for b in (k.start, k.stop, k.step)
        ):
            return True
    return False


def has_computed_slice(key) -> bool:
    """Does ``key`` hold a slice with a bound computed from values?"""
    items = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, slice) and is_computed(k) for k in items)


def _items(key, shape) -> list:
    """One item per axis of ``shape``: ints, static slices, computed index
    scalars (int Values) and computed slices (slices holding Values)."""
    items = list(key) if isinstance(key, tuple) else [key]
    if sum(k is Ellipsis for k in items) > 1:
        raise Untranslatable("an index with several '...'")
    if any(k is Ellipsis for k in items):
        at = next(n for n, k in enumerate(items) if k is Ellipsis)
        items[at : at + 1] = [slice(None)] * (len(shape) - len(items) + 1)
    if len(items) > len(shape):
        raise Untranslatable(f"{len(items)} indices into an array of shape {shape}")
    items += [slice(None)] * (len(shape) - len(items))
    out = []
    for k, n in zip(items, shape):
        if isinstance(k, slice):
            parts = [_bound(b) for b in (k.start, k.stop, k.step)]
            if isinstance(parts[2], Value):
                raise Untranslatable("a slice step computed from values")
            if parts[2] == 0:
                raise Untranslatable("a slice step of zero")
            out.append(slice(*parts))
        elif isinstance(k, Value):
            if k.shape != () or k.dtype != "i":
                what = "a bool" if k.dtype == "b" and k.shape == () else "not one integer"
                raise Untranslatable(f"an index computed from values that is {what}")
            if E.is_const(k):
                i = int(k.array)
                if not -n <= i < n:
                    raise Untranslatable(f"index {i} out of range for an axis of length {n}")
                out.append(i % n)
            else:
                out.append(k)
        else:  # None, index lists
            raise Untranslatable(
                f"{'None' if k is None else 'an index list'} in an index computed from values"
            )
    return out


def _bound(b):
    if b is None or isinstance(b, int):
        return b
    if not isinstance(b, Value) or b.shape != () or b.dtype not in "bi":
        raise Untranslatable("a slice bound that is not one integer")
    return int(b.array) if E.is_const(b) else E.cast(b, "i")


def _is_computed_slice(k) -> bool:
    return isinstance(k, slice) and (isinstance(k.start, Value) or isinstance(k.stop, Value))


def read(v: Value, key) -> Value:
    """``v[key]`` with computed integer indices (a gather per such axis)."""
    items = _items(key, v.shape)
    if any(_is_computed_slice(k) for k in items):
        raise Untranslatable("reading a slice whose bounds are computed from values")
    # gather the last axes first: the earlier axes keep their numbers
    for axis in reversed(range(len(items))):
        if isinstance(items[axis], Value):
            v = E.gather(v, items.pop(axis), axis)
    if all(k == slice(None) for k in items):
        return v
    return E.index(v, tuple(items))


def store(v: Value, key, value: Value, whole: bool = False) -> Value:
    """``v`` after ``v[key] = value``, with computed indices or slice bounds;
    ``whole``: ``value`` has ``v``'s shape and only its selected part is stored."""
    items = _items(key, v.shape)
    value = E.cast(value, v.dtype)
    if whole:
        return E.apply("where", _mask(items, v.shape), value, v)
    # the shape of what is stored: an axis sliced by computed bounds has a
    # computed length, so only a value of length 1 along it broadcasts into it
    selected = []
    for k, n in zip(items, v.shape):
        if isinstance(k, slice):
            computed = _is_computed_slice(k)
            selected.append(1 if computed else len(range(*k.indices(n))))
    try:
        value = E.assignable(value, tuple(selected))
    except Untranslatable:
        if any(_is_computed_slice(k) for k in items):
            raise Untranslatable(
                f"storing an array of shape {value.shape} into a slice whose bounds are "
                "computed from values (its length is computed: only a number can be stored)"
            ) from None
        raise
    return E.apply("where", _mask(items, v.shape), _spread(value, items, v.shape), v)


def _mask(items, shape) -> Value:
    """Which elements of an array of ``shape`` the key selects (bool, ``shape``)."""
    static = np.ones(shape, dtype=bool)
    computed = []
    for axis, (k, n) in enumerate(zip(items, shape)):
        along = [1] * len(shape)
        along[axis] = n
        if isinstance(k, int):
            static &= (np.arange(n) == k).reshape(along)
        elif isinstance(k, Value):
            i = E.wrapped(k, n)
            computed.append(E.reshape(E.apply("eq", E.const(np.arange(n)), i), along))
        elif _is_computed_slice(k):
            computed.append(E.reshape(_slice_mask(k, n), along))
        else:
            selected = np.zeros(n, dtype=bool)
            selected[k] = True
            static &= selected.reshape(along)
    # the masks broadcast (as `where` does) against the array's shape
    masks = computed if np.all(static) else [E.const(static), *computed]
    mask = masks[0]
    for m in masks[1:]:
        mask = E.apply("and", mask, m)
    return mask


def _slice_mask(k: slice, n: int) -> Value:
    """The positions ``range(n)[k]`` selects, for bounds computed from values,
    normalised and clamped as Python's ``slice.indices`` does."""
    step = 1 if k.step is None else k.step
    p = E.const(np.arange(n))
    lo, hi = (0, n) if step > 0 else (-1, n - 1)

    def bound(b, default):
        if b is None:
            return E.const(default)
        b = b if isinstance(b, Value) else E.const(b)
        b = E.apply("where", E.apply("lt", b, E.const(0)), E.apply("add", b, E.const(n)), b)
        return E.apply("minimum", E.apply("maximum", b, E.const(lo)), E.const(hi))

    if step > 0:
        start, stop = bound(k.start, 0), bound(k.stop, n)
        mask = E.apply("and", E.apply("ge", p, start), E.apply("lt", p, stop))
        offset = E.apply("sub", p, start)
    else:
        start, stop = bound(k.start, n - 1), bound(k.stop, -1)
        mask = E.apply("and", E.apply("le", p, start), E.apply("gt", p, stop))
        offset = E.apply("sub", start, p)
    if abs(step) != 1:
        on_step = E.apply("eq", E.apply("mod", offset, E.const(abs(step))), E.const(0))
        mask = E.apply("and", mask, on_step)
    return mask


def _spread(value: Value, items, shape) -> Value:
    """``value`` (the selected shape) laid out over ``shape``: element ``j`` of
    a static slice's axis goes to the slice's ``j``-th position; axes indexed
    by an integer or sliced by computed bounds have length 1 (broadcast)."""
    full, places = [], []
    for k, n in zip(items, shape):
        if isinstance(k, slice) and not _is_computed_slice(k):
            positions = range(*k.indices(n))
            full.append(len(positions))
            place = np.zeros(n, dtype=np.int64)
            place[list(positions)] = np.arange(len(positions))
            places.append(place)
        else:
            full.append(1)
            places.append(np.zeros(n, dtype=np.int64))
    value = E.reshape(value, tuple(full))
    if all(f == 1 or np.array_equal(pl, np.arange(len(pl))) for pl, f in zip(places, full)):
        return value  # broadcasts as it is
    source = np.ravel_multi_index(np.meshgrid(*places, indexing="ij"), tuple(full))
    if E.is_const(value):
        return E.const(value.array.reshape(-1)[source])
    return E.Op(shape, value.dtype, value.batched, "take", (value,), (source.reshape(-1),))
