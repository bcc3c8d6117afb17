"""What every op kind shares: the base class, the registry, and helpers
that turn signals into access segments and constants into parameters."""

from __future__ import annotations

import weakref

import numpy as np

from .. import ir
from ..errors import UnsupportedError

#: op kinds by name (the first element of their merge keys)
KINDS: dict = {}
#: what gives the merge key of an operator (or process) type
_BY_TYPE: dict = {}

#: Merge key of operators that do no computation (they only order others).
SKIP = ("skip",)


def register(*types):
    """Class decorator: register an op kind under its ``name`` and as the one
    that gives the merge key of operators (or processes) of ``types`` and
    their subclasses. A class without a ``name`` only gives keys."""

    def decorate(cls):
        instance = cls()
        instance.types = types
        if cls.name:
            KINDS[cls.name] = instance
        for t in types:
            _BY_TYPE[t] = instance
        return cls

    return decorate


def lookup(obj):
    """The kind registered for ``obj``'s type or its nearest base, or None."""
    for cls in type(obj).__mro__:
        found = _BY_TYPE.get(cls)
        if found is not None:
            return found
    return None


def tag(op) -> str:
    """How messages name an operator."""
    return op.tag or str(op)


def is_const(sig, ctx) -> bool:
    """In a merge key: no operator writes the signal's memory."""
    return sig.base not in ctx.written


class Params:
    """Collects parameter arrays; names are a kind prefix plus a counter."""

    def __init__(self, dtype: str):
        self.dtype = np.dtype(dtype)
        self.arrays: dict = {}
        #: trainable parameters: name -> [(ir.TrainSource, positions, values)]
        self.training: dict = {}

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

    def train(self, param: str, source, positions, values) -> None:
        """Make a parameter trainable where a Nengo object's values go:
        ``param`` (already added, holding zero at ``positions``) gets
        ``values`` (the object's parameter, flattened in C order) added at
        the flat ``positions`` before each run (see `ir.Trainable`)."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        assert positions.shape == values.shape == (int(np.prod(source.shape)),)
        self.training.setdefault(param, []).append((source, positions, values))

    def trainables(self) -> tuple:
        """The trainable variables (`ir.Trainable`), their values and
        positions added to ``arrays`` as ``<param>_train`` and ``<param>_at``."""
        found = []
        for param, parts in self.training.items():
            positions = np.concatenate([p for _, p, _ in parts])
            values = np.concatenate([v for _, _, v in parts])
            offsets = np.cumsum([0] + [len(v) for _, _, v in parts[:-1]])
            index = np.int32 if self.arrays[param].size < 2**31 else np.int64
            self.arrays[f"{param}_train"] = values.astype(self.dtype)
            self.arrays[f"{param}_at"] = positions.astype(index)
            found.append(
                ir.Trainable(
                    variable=f"{param}_train",
                    param=param,
                    positions=f"{param}_at",
                    parts=tuple(source for source, _, _ in parts),
                    offsets=tuple(int(o) for o in offsets),
                )
            )
        return tuple(found)


def train_source(ctx, sig):
    """The `ir.TrainSource` of a signal that trains (``ctx`` an
    `ir.LowerContext`), or None."""
    sources = ctx.train_sources
    return None if sources is None else sources.get(sig)


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


def op_order_values(acc: ir.Resolved, per_op_values, size: int) -> np.ndarray:
    """Place per-operator values at their operators' positions in a value."""
    out = np.zeros(size)
    for pos, values in zip(acc.op_positions, per_op_values):
        out[pos] = np.asarray(values, dtype=np.float64).reshape(-1)
    return out


class OpKind:
    """Base class of op kinds (see `nengo_compile.kinds`)."""

    name = ""
    template = ""
    #: the operator (or process) types it was registered for
    types: tuple = ()
    #: planning priority: kinds with a lower rank lay out their signals first
    rank = 5
    #: a process kind (registered by process type) whose key refuses a
    #: process: it runs as a hook if True, else the refusal is an error
    hook_fallback = True

    def key(self, op, ctx) -> tuple:
        """The merge key of ``op`` (``ctx`` is an `ir.KeyContext`)."""
        return (self.name, "merge")

    def accesses(self, ops, ctx) -> list:
        raise NotImplementedError

    def lower(self, index, ops, acc, params, ctx) -> ir.Group:
        raise NotImplementedError

    def title(self, ops) -> str:
        return f"{self.name} x{len(ops)}"
