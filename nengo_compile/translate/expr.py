"""The expression IR of translated functions, with numpy's semantics.

A `Value` has the numpy ``shape`` of one batch element, a ``dtype`` kind
(``"b"`` bool, ``"i"`` int64, ``"f"`` float64: what numpy computes in) and a
``batched`` flag: batched values depend on the node's input or state, so they
differ between batch elements and carry a leading batch axis in generated code;
unbatched values depend only on time and constants.

The functions here build values the way numpy would compute them: shapes are
checked with numpy's broadcasting rules, and operations whose operands are all
constants are computed at once with numpy itself (so constants are exactly
what Nengo computes). Anything numpy would reject, or that we cannot express,
raises `Untranslatable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np

KINDS = {"b": np.bool_, "i": np.int64, "f": np.float64}


class Untranslatable(Exception):
    """A construct that cannot become TensorFlow; ``line`` is set by the converter."""

    def __init__(self, construct: str, line: int | None = None):
        super().__init__(construct)
        self.construct = construct
        self.line = line
        self.filename = None


@dataclass(frozen=True, eq=False)
class Value:
    shape: tuple
    dtype: str
    batched: bool


@dataclass(frozen=True, eq=False)
class Const(Value):
    array: Any = field(default=None, repr=False)  # np.ndarray


@dataclass(frozen=True, eq=False)
class Leaf(Value):
    """A named input of the generated code: ``t64``, ``x``, ``state0``, ..."""

    name: str = ""


@dataclass(frozen=True, eq=False)
class Op(Value):
    op: str = ""
    args: tuple = ()
    attrs: tuple = ()  # static operands (index keys, axes, shapes)


def kind_of(array) -> str:
    dtype = np.asarray(array).dtype
    if dtype == np.bool_:
        return "b"
    if np.issubdtype(dtype, np.integer):
        return "i"
    if np.issubdtype(dtype, np.floating):
        return "f"
    raise Untranslatable(f"a constant of type {dtype}")


def const(value) -> Const:
    """A constant value (numbers, bools, numeric arrays, lists of numbers)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise Untranslatable(f"a non-numeric constant ({type(value).__name__})") from exc
    kind = kind_of(array)
    array = np.array(array, dtype=KINDS[kind])  # a private copy
    array.setflags(write=False)
    return Const(array.shape, kind, False, array)


def is_const(v: object) -> TypeGuard[Const]:
    return isinstance(v, Const)


def _promote(kinds, arithmetic=True) -> str:
    if "f" in kinds:
        return "f"
    if "i" in kinds or (arithmetic and "b" in kinds):
        return "i"
    return "b"


def cast(v: Value, kind: str) -> Value:
    if v.dtype == kind:
        return v
    if is_const(v):
        return const(v.array.astype(KINDS[kind]) if kind != "b" else v.array != 0)
    return Op(v.shape, kind, v.batched, "cast", (v,), (kind,))


def broadcast_shape(*shapes) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError as exc:
        text = " and ".join(str(s) for s in shapes)
        raise Untranslatable(f"arrays of shapes {text} do not broadcast") from exc


#: elementwise operations: name -> (numpy function, operand kind, result kind)
#: operand kind "f" casts operands to float; "same" promotes them to a common
#: kind (bools count as ints); "cmp" promotes without turning bools into ints;
#: "b" wants bools. Result kind None means the operands' kind.
ELEMENTWISE = {
    "add": (np.add, "same", None),
    "sub": (np.subtract, "same", None),
    "mul": (np.multiply, "same", None),
    "truediv": (np.true_divide, "f", None),
    "floordiv_int": (np.floor_divide, "same", None),
    "mod": (np.mod, "same", None),
    "pow": (np.power, "same", None),
    "neg": (np.negative, "same", None),
    "abs": (np.abs, "same", None),
    "sign": (np.sign, "same", None),
    "maximum": (np.maximum, "same", None),
    "minimum": (np.minimum, "same", None),
    "square": (np.square, "same", None),
    "lt": (np.less, "cmp", "b"),
    "le": (np.less_equal, "cmp", "b"),
    "gt": (np.greater, "cmp", "b"),
    "ge": (np.greater_equal, "cmp", "b"),
    "eq": (np.equal, "cmp", "b"),
    "ne": (np.not_equal, "cmp", "b"),
    "and": (np.logical_and, "b", "b"),
    "or": (np.logical_or, "b", "b"),
    "xor": (np.logical_xor, "b", "b"),
    "not": (np.logical_not, "b", "b"),
    "where": (np.where, "where", None),
    "arctan2": (np.arctan2, "f", None),
}
for _name in (
    "sin cos tan arcsin arccos arctan sinh cosh tanh arcsinh arccosh arctanh exp expm1 "
    "log log1p log2 log10 sqrt reciprocal floor ceil rint trunc"
).split():
    ELEMENTWISE[_name] = (getattr(np, _name), "f", None)


def apply(name: str, *args: Value) -> Value:
    """An elementwise operation with numpy's broadcasting and type rules."""
    fn, operands, result = ELEMENTWISE[name]
    if operands == "where":
        cond, a, b = args
        cond = truth_array(cond)
        kind = _promote([a.dtype, b.dtype], arithmetic=False)
        args = (cond, cast(a, kind), cast(b, kind))
    elif operands == "f":
        args = tuple(cast(a, "f") for a in args)
    elif operands == "b":
        args = tuple(truth_array(a) for a in args)
    else:
        kind = _promote([a.dtype for a in args], arithmetic=operands == "same")
        args = tuple(cast(a, kind) for a in args)
    kind = result or args[-1].dtype
    if name == "pow" and kind == "f" and is_const(args[1]) and args[1].shape == ():
        exponent = float(args[1].array)
        if exponent in (2.0, 0.5):  # numpy's own fast paths (both exact)
            return apply("square" if exponent == 2.0 else "sqrt", args[0])
    shape = broadcast_shape(*(a.shape for a in args))
    if all(is_const(a) for a in args):
        with np.errstate(all="ignore"):
            return const(np.asarray(fn(*(a.array for a in args))).astype(KINDS[kind]))
    return Op(shape, kind, any(a.batched for a in args), name, args)


def truth_array(v: Value) -> Value:
    """Elementwise truth (``v != 0``), as numpy's ``astype(bool)``."""
    return v if v.dtype == "b" else cast(v, "b")


def truth(v: Value) -> Value:
    """The truth of a value in ``if``, ``and``, ``not``: one element only."""
    if int(np.prod(v.shape)) != 1:
        raise Untranslatable(f"the truth value of an array of shape {v.shape} (ambiguous in numpy)")
    return reshape(truth_array(v), ())


def floordiv(a: Value, b: Value) -> Value:
    """Python's ``a // b``: for floats, ``(a - a % b) / b`` rounded, as CPython does."""
    if a.dtype != "f" and b.dtype != "f":
        return apply("floordiv_int", a, b)
    a, b = cast(a, "f"), cast(b, "f")
    if is_const(a) and is_const(b):
        with np.errstate(all="ignore"):
            return const(np.floor_divide(a.array, b.array))
    return apply("rint", apply("truediv", apply("sub", a, apply("mod", a, b)), b))


def reshape(v: Value, shape) -> Value:
    shape = tuple(int(d) for d in shape)
    size = int(np.prod(v.shape))
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1]))
        if known == 0 or size % known:
            raise Untranslatable(f"reshape of {v.shape} to {shape}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    if int(np.prod(shape)) != size:
        raise Untranslatable(f"reshape of {v.shape} to {shape}")
    if shape == v.shape:
        return v
    if is_const(v):
        return const(v.array.reshape(shape))
    return Op(shape, v.dtype, v.batched, "reshape", (v,), (shape,))


def broadcast_to(v: Value, shape) -> Value:
    shape = tuple(shape)
    if broadcast_shape(v.shape, shape) != shape:
        raise Untranslatable(f"an array of shape {v.shape} cannot become {shape}")
    if v.shape == shape:
        return v
    if is_const(v):
        return const(np.broadcast_to(v.array, shape))
    return Op(shape, v.dtype, v.batched, "broadcast", (v,), (shape,))


def assignable(v: Value, shape) -> Value:
    """``v`` as numpy assigns it into an array of ``shape`` (``a[...] = v``)."""
    vshape = v.shape
    while len(vshape) > len(shape) and vshape[0] == 1:
        vshape = vshape[1:]
    return broadcast_to(reshape(v, vshape), shape)


def _norm_key(key, shape):
    """Check a static index key against numpy, returning the positions it selects."""
    positions = np.arange(int(np.prod(shape))).reshape(shape)
    try:
        with np.errstate(all="raise"):
            return positions[key]
    except (IndexError, TypeError, ValueError) as exc:
        raise Untranslatable(f"index {key!r} of an array of shape {shape}: {exc}") from exc


def is_basic(key) -> bool:
    return all(isinstance(k, int | slice) or k is None or k is Ellipsis for k in key)


def index(v: Value, key: tuple) -> Value:
    """``v[key]`` for a static key (ints, slices, None, ..., int or bool lists)."""
    key = tuple(np.asarray(k) if isinstance(k, list) else k for k in key)
    positions = _norm_key(key, v.shape)
    if is_const(v):
        return const(v.array[key])
    if is_basic(key):
        return Op(positions.shape, v.dtype, v.batched, "index", (v,), (key,))
    return Op(positions.shape, v.dtype, v.batched, "take", (v,), (positions.reshape(-1),))


def gather(v: Value, i: Value, axis: int = 0) -> Value:
    """``v[..., i, ...]`` for a computed integer scalar ``i`` on ``axis``: an
    index out of range wraps around (``i % n``, so negative ones count from the
    end as in numpy; numpy raises for the others)."""
    if i.shape != () or i.dtype not in "bi":
        raise Untranslatable("an index computed from values that is not one integer")
    if len(v.shape) <= axis:
        raise Untranslatable("indexing a scalar")
    if is_const(i):
        return index(v, (slice(None),) * axis + (int(i.array),))
    i = wrapped(i, v.shape[axis])
    shape = v.shape[:axis] + v.shape[axis + 1 :]
    return Op(shape, v.dtype, v.batched or i.batched, "gather", (v, i), (axis,))


def wrapped(i: Value, n: int) -> Value:
    """``i % n`` as an int64 (``i`` itself where it is already ``... % n``)."""
    i = cast(i, "i")
    if isinstance(i, Op) and i.op == "mod" and is_const(i.args[1]) and i.args[1].shape == ():
        if int(i.args[1].array) == n:
            return i
    return apply("mod", i, const(n))


def setitem(v: Value, key: tuple, value: Value) -> Value:
    """``v`` after ``v[key] = value`` (static key), as a new value."""
    key = tuple(np.asarray(k) if isinstance(k, list) else k for k in key)
    positions = _norm_key(key, v.shape)
    value = assignable(cast(value, v.dtype), positions.shape)
    size = int(np.prod(v.shape))
    source = np.arange(size)
    source[positions.reshape(-1)] = size + np.arange(positions.size)
    if is_const(v) and is_const(value):
        array = np.array(v.array)
        array[key] = value.array
        return const(array)
    return Op(v.shape, v.dtype, v.batched or value.batched, "setitem", (v, value), (source,))


def stack(values, axis=0) -> Value:
    """``np.array([...])`` / ``np.stack``: elements of one shape, on a new axis."""
    values = list(values)
    if not values:
        return const(np.zeros(0))
    shapes = {v.shape for v in values}
    if len(shapes) > 1:
        raise Untranslatable(f"an array from elements of different shapes {sorted(shapes)}")
    (shape,) = shapes
    axis = _axis(axis, len(shape) + 1)
    kind = _promote([v.dtype for v in values], arithmetic=False)
    values = [cast(v, kind) for v in values]
    if all(is_const(v) for v in values):
        return const(np.stack([v.array for v in values], axis=axis))
    out = shape[:axis] + (len(values),) + shape[axis:]
    return Op(out, kind, any(v.batched for v in values), "stack", tuple(values), (axis,))


def concat(values, axis=0) -> Value:
    values = list(values)
    if not values or any(len(v.shape) == 0 for v in values):
        raise Untranslatable("concatenating scalars")
    rank = len(values[0].shape)
    axis = _axis(axis, rank)
    rest = {v.shape[:axis] + v.shape[axis + 1 :] for v in values}
    if len(rest) > 1 or any(len(v.shape) != rank for v in values):
        raise Untranslatable("concatenating arrays of different shapes")
    kind = _promote([v.dtype for v in values], arithmetic=False)
    values = [cast(v, kind) for v in values]
    if all(is_const(v) for v in values):
        return const(np.concatenate([v.array for v in values], axis=axis))
    shape = list(values[0].shape)
    shape[axis] = sum(v.shape[axis] for v in values)
    return Op(tuple(shape), kind, any(v.batched for v in values), "concat", tuple(values), (axis,))


def _axis(axis, rank) -> int:
    axis = int(axis)
    if not -rank <= axis < rank:
        raise Untranslatable(f"axis {axis} of an array with {rank} dimensions")
    return axis % rank


REDUCE = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}


def reduce(name: str, v: Value, axis=None) -> Value:
    """``np.sum`` and friends, over all elements or one axis; ``mean`` too."""
    if name == "mean":
        total = reduce("sum", cast(v, "f"), axis)
        count = int(np.prod(v.shape)) if axis is None else v.shape[_axis(axis, len(v.shape))]
        return apply("truediv", total, const(float(count)))
    if name in ("max", "min") and int(np.prod(v.shape)) == 0:
        raise Untranslatable(f"{name} of an empty array")
    kind = "i" if name in ("sum", "prod") and v.dtype == "b" else v.dtype
    v = cast(v, kind)
    if axis is None:
        v = reshape(v, (-1,))
        axis = 0
    axis = _axis(axis, len(v.shape))
    if is_const(v):
        return const(REDUCE[name](v.array, axis=axis))
    shape = v.shape[:axis] + v.shape[axis + 1 :]
    return Op(shape, kind, v.batched, "reduce", (v,), (name, axis))


def dot(a: Value, b: Value) -> Value:
    """``np.dot`` / ``@`` for vectors and matrices."""
    if len(a.shape) == 0 or len(b.shape) == 0:
        return apply("mul", a, b)
    kind = _promote([a.dtype, b.dtype])
    a, b = cast(a, kind), cast(b, kind)
    if a.shape[-1] != b.shape[0] or len(a.shape) > 2 or len(b.shape) > 2:
        raise Untranslatable(f"a product of arrays of shapes {a.shape} and {b.shape}")
    if is_const(a) and is_const(b):
        return const(np.dot(a.array, b.array))
    shape = a.shape[:-1] + b.shape[1:]
    return Op(shape, kind, a.batched or b.batched, "dot", (a, b))


def roll(v: Value, shift: int, axis=None) -> Value:
    if is_const(v):
        return const(np.roll(v.array, shift, axis=axis))
    if axis is None:
        flat = Op(
            (int(np.prod(v.shape)),), v.dtype, v.batched, "roll", (reshape(v, (-1,)),), (shift, 0)
        )
        return reshape(flat, v.shape)
    axis = _axis(axis, len(v.shape))
    return Op(v.shape, v.dtype, v.batched, "roll", (v,), (int(shift), axis))


def transpose(v: Value) -> Value:
    if len(v.shape) < 2:
        return v
    if is_const(v):
        return const(v.array.T)
    perm = tuple(reversed(range(len(v.shape))))
    return Op(v.shape[::-1], v.dtype, v.batched, "transpose", (v,), (perm,))
