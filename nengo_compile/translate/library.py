"""The allow-list: numpy, math and builtin functions a translated function may call.

Functions are looked up by identity (``np.sin`` is ``np.sin`` however it was
imported). Each handler takes the converter and the call's arguments (IR values
or static objects) and returns an IR value. Calls to anything else keep the
function a hook, and the message names what was called.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from . import expr as E
from . import source
from .expr import Untranslatable, Value

HANDLERS: dict = {}


def handles(*fns):
    def decorate(handler):
        for fn in fns:
            HANDLERS[id(fn)] = (fn, handler)
        return handler

    return decorate


def lookup(fn):
    entry = HANDLERS.get(id(fn))
    return entry[1] if entry is not None and entry[0] is fn else None


def _elementwise(name, *fns):
    @handles(*fns)
    def handler(conv, *args, **kwargs):
        _no_kwargs(kwargs, fns[0])
        n = 1 if name not in TWO_ARGS else 2
        if len(args) != n:
            raise Untranslatable(f"{_name(fns[0])} with {len(args)} arguments")
        return E.apply(name, *(conv.value(a) for a in args))

    return handler


TWO_ARGS = {"add", "sub", "mul", "truediv", "mod", "pow", "maximum", "minimum", "arctan2"}

_UNARY = {
    "sin": (np.sin, math.sin),
    "cos": (np.cos, math.cos),
    "tan": (np.tan, math.tan),
    "arcsin": (np.arcsin, math.asin),
    "arccos": (np.arccos, math.acos),
    "arctan": (np.arctan, math.atan),
    "sinh": (np.sinh, math.sinh),
    "cosh": (np.cosh, math.cosh),
    "tanh": (np.tanh, math.tanh),
    "arcsinh": (np.arcsinh, math.asinh),
    "arccosh": (np.arccosh, math.acosh),
    "arctanh": (np.arctanh, math.atanh),
    "exp": (np.exp, math.exp),
    "expm1": (np.expm1, math.expm1),
    "log": (np.log,),
    "log1p": (np.log1p, math.log1p),
    "log2": (np.log2, math.log2),
    "log10": (np.log10, math.log10),
    "sqrt": (np.sqrt, math.sqrt),
    "square": (np.square,),
    "reciprocal": (np.reciprocal,),
    "rint": (np.rint,),
    "trunc": (np.trunc,),
    "sign": (np.sign,),
    "abs": (np.abs, np.fabs, builtins.abs, math.fabs),
    "neg": (np.negative,),
    "add": (np.add,),
    "sub": (np.subtract,),
    "mul": (np.multiply,),
    "truediv": (np.true_divide,),
    "mod": (np.mod, np.remainder),
    "pow": (np.power, math.pow),
    "maximum": (np.maximum,),
    "minimum": (np.minimum,),
    "arctan2": (np.arctan2, math.atan2),
}
for _op, _fns in _UNARY.items():
    _elementwise(_op, *_fns)


def _no_kwargs(kwargs, fn):
    if kwargs:
        raise Untranslatable(f"{_name(fn)} with keyword arguments {sorted(kwargs)}")


@handles(np.floor, np.ceil, math.floor, math.ceil)
def _(conv, x, **kwargs):
    _no_kwargs(kwargs, np.floor)
    v = E.apply(conv.calling, conv.value(x))
    if conv.calling_fn in (math.floor, math.ceil):  # these return ints
        v = E.cast(v, "i")
    return v


@handles(math.log)
def _(conv, x, base=None):
    v = E.apply("log", conv.value(x))
    if base is not None:
        v = E.apply("truediv", v, E.apply("log", conv.value(base)))
    return v


@handles(np.round, np.around, builtins.round)
def _(conv, x, decimals=None, ndigits=None):
    digits = decimals if decimals is not None else ndigits
    v = E.cast(conv.value(x), "f")
    if digits is None:
        v = E.apply("rint", v)
        return E.cast(v, "i") if conv.calling_fn is builtins.round else v
    if conv.calling_fn is builtins.round:
        raise Untranslatable("round(x, ndigits) (Python rounds in decimal)")
    d = conv.static_int(conv.value(digits))
    if d == 0:
        return E.apply("rint", v)
    scale = E.const(10.0 ** abs(d))
    if d > 0:
        return E.apply("truediv", E.apply("rint", E.apply("mul", v, scale)), scale)
    return E.apply("mul", E.apply("rint", E.apply("truediv", v, scale)), scale)


@handles(np.clip)
def _(conv, a, a_min=None, a_max=None):
    v = conv.value(a)
    if a_min is not None:
        v = E.apply("maximum", v, conv.value(a_min))
    if a_max is not None:
        v = E.apply("minimum", v, conv.value(a_max))
    return v


@handles(np.where)
def _(conv, cond, a=None, b=None):
    if a is None or b is None:
        raise Untranslatable("np.where with one argument")
    return E.apply("where", conv.value(cond), conv.value(a), conv.value(b))


@handles(builtins.max, builtins.min)
def _(conv, *args, **kwargs):
    _no_kwargs(kwargs, builtins.max)
    name = conv.calling
    if len(args) == 1:
        return E.reduce(name, conv.value(args[0]))
    result = conv.value(args[0])
    for other in args[1:]:
        other = conv.value(other)
        if result.shape != () or other.shape != ():
            raise Untranslatable(f"{name}() of arrays (Python compares them as a whole)")
        # Python's max(a, b) keeps a unless b > a (min: unless b < a)
        result = E.apply(
            "where", E.apply("gt" if name == "max" else "lt", other, result), other, result
        )
    return result


def _reduction(name, *fns):
    @handles(*fns)
    def handler(conv, a, axis=None, **kwargs):
        _no_kwargs(kwargs, fns[0])
        if axis is not None:
            axis = conv.static_int(conv.value(axis))
        return E.reduce(name, conv.value(a), axis)


_reduction("sum", np.sum)
_reduction("mean", np.mean)
_reduction("max", np.max, np.amax)
_reduction("min", np.min, np.amin)
_reduction("prod", np.prod)


@handles(builtins.sum)
def _(conv, iterable, start=None):
    items = conv.iterate(iterable)
    total = conv.value(start) if start is not None else E.const(0)
    for item in items:
        total = E.apply("add", total, conv.value(item))
    return total


@handles(np.dot, np.matmul)
def _(conv, a, b):
    return E.dot(conv.value(a), conv.value(b))


@handles(np.linalg.norm)
def _(conv, x, ord=None, axis=None):
    v = E.cast(conv.value(x), "f")
    if ord is not None or axis is not None or len(v.shape) > 1:
        raise Untranslatable("np.linalg.norm other than a vector's 2-norm")
    return E.apply("sqrt", E.dot(v, v))


@handles(np.array, np.asarray, np.copy, np.asanyarray)
def _(conv, obj, dtype=None, **kwargs):
    v = conv.value(obj)
    return _as_dtype(v, dtype)


def _as_dtype(v, dtype):
    if dtype is None:
        return v
    try:
        kind = np.dtype(dtype).kind
    except TypeError as exc:
        raise Untranslatable(f"the dtype {dtype!r}") from exc
    kinds = {"f": "f", "i": "i", "u": "i", "b": "b"}
    if kind not in kinds:
        raise Untranslatable(f"the dtype {dtype!r}")
    return E.cast(v, kinds[kind])


@handles(builtins.float)
def _(conv, x):
    return E.reshape(E.cast(_one(conv, x, "float"), "f"), ())


@handles(builtins.int)
def _(conv, x):
    v = _one(conv, x, "int")  # a float becomes an int by truncation, as in tf.cast
    return E.reshape(E.cast(v, "i"), ())


@handles(builtins.bool)
def _(conv, x):
    return E.truth(conv.value(x))


def _one(conv, x, name):
    v = conv.value(x)
    if int(np.prod(v.shape)) != 1:
        raise Untranslatable(f"{name}() of an array of shape {v.shape}")
    return v


@handles(builtins.len)
def _(conv, x):
    if isinstance(x, list | tuple):
        return E.const(len(x))
    v = conv.value(x)
    if not v.shape:
        raise Untranslatable("len() of a scalar")
    return E.const(v.shape[0])


@handles(builtins.range)
def _(conv, *args):
    return range(*(conv.static_int(conv.value(a)) for a in args))


@handles(builtins.list, builtins.tuple)
def _(conv, obj=()):
    items = conv.iterate(obj)
    return list(items) if conv.calling == "list" else tuple(items)


@handles(builtins.enumerate)
def _(conv, obj, start=0):
    first = conv.static_int(conv.value(start))
    return [(E.const(first + i), item) for i, item in enumerate(conv.iterate(obj))]


@handles(builtins.zip)
def _(conv, *iterables):
    return list(zip(*(conv.iterate(i) for i in iterables)))


def _static_shape(conv, shape):
    if isinstance(shape, list | tuple):
        return tuple(conv.static_int(conv.value(d)) for d in shape)
    return (conv.static_int(conv.value(shape)),)


@handles(np.zeros, np.ones, np.empty)
def _(conv, shape, dtype=float):
    fill = 1.0 if conv.calling == "ones" else 0.0  # np.empty: we choose zeros
    return _as_dtype(E.const(np.full(_static_shape(conv, shape), fill)), dtype)


@handles(np.full)
def _(conv, shape, fill_value, dtype=None):
    v = E.broadcast_to(conv.value(fill_value), _static_shape(conv, shape))
    return _as_dtype(v, dtype)


@handles(np.zeros_like, np.ones_like, np.empty_like)
def _(conv, a, dtype=None):
    v = conv.value(a)
    fill = 1 if conv.calling == "ones_like" else 0
    return _as_dtype(E.cast(E.const(np.full(v.shape, fill)), v.dtype), dtype)


@handles(np.full_like)
def _(conv, a, fill_value, dtype=None):
    v = conv.value(a)
    return _as_dtype(E.broadcast_to(E.cast(conv.value(fill_value), v.dtype), v.shape), dtype)


@handles(np.arange, np.linspace, np.eye, np.identity)
def _(conv, *args, **kwargs):
    values = [_static(conv, a) for a in args]
    kw = {k: _static(conv, v) for k, v in kwargs.items()}
    return E.const(getattr(np, conv.calling)(*values, **kw))


def _static(conv, obj):
    if isinstance(obj, Value):
        if not E.is_const(obj):
            raise Untranslatable("a computed argument where a constant is needed")
        return obj.array.item() if obj.shape == () else obj.array
    if obj is None or isinstance(obj, str | type):
        return obj
    return conv.value(obj).array


@handles(np.concatenate, np.hstack)
def _(conv, arrays, axis=0):
    values = [conv.value(a) for a in conv.iterate(arrays)]
    if conv.calling == "hstack":
        values = [E.reshape(v, (1,)) if v.shape == () else v for v in values]
        axis = 0 if len(values[0].shape) == 1 else 1
        return E.concat(values, axis)
    return E.concat(values, conv.static_int(conv.value(axis)))


@handles(np.stack)
def _(conv, arrays, axis=0):
    return E.stack([conv.value(a) for a in conv.iterate(arrays)], conv.static_int(conv.value(axis)))


@handles(np.roll)
def _(conv, a, shift, axis=None):
    if axis is not None:
        axis = conv.static_int(conv.value(axis))
    return E.roll(conv.value(a), conv.static_int(conv.value(shift)), axis)


@handles(np.reshape)
def _(conv, a, newshape=None, shape=None):
    return E.reshape(conv.value(a), _static_shape(conv, shape if shape is not None else newshape))


@handles(np.ravel)
def _(conv, a):
    return E.reshape(conv.value(a), (-1,))


@handles(np.transpose)
def _(conv, a):
    return E.transpose(conv.value(a))


@handles(np.outer)
def _(conv, a, b):
    a, b = E.reshape(conv.value(a), (-1, 1)), E.reshape(conv.value(b), (1, -1))
    return E.apply("mul", a, b)


#: methods of arrays: name -> handler(conv, value, *args, **kwargs)
METHODS: dict = {}


def method(conv, value, name, args, kwargs):
    return METHODS[name](conv, value, *args, **kwargs)


def _method(*names):
    def decorate(handler):
        for n in names:
            METHODS[n] = handler
        return handler

    return decorate


@_method("sum", "mean", "max", "min", "prod")
def _(conv, v, axis=None):
    if axis is not None:
        axis = conv.static_int(conv.value(axis))
    return E.reduce(conv.calling_method, v, axis)


@_method("reshape")
def _(conv, v, *shape):
    shape = shape[0] if len(shape) == 1 else shape
    return E.reshape(v, _static_shape(conv, shape))


@_method("flatten", "ravel", "copy")
def _(conv, v):
    return v if conv.calling_method == "copy" else E.reshape(v, (-1,))


@_method("dot")
def _(conv, v, other):
    return E.dot(v, conv.value(other))


@_method("astype")
def _(conv, v, dtype):
    return _as_dtype(v, dtype)


@_method("clip")
def _(conv, v, a_min=None, a_max=None):
    return HANDLERS[id(np.clip)][1](conv, v, a_min, a_max)


@_method("item")
def _(conv, v):
    if int(np.prod(v.shape)) != 1:
        raise Untranslatable(".item() of an array with several elements")
    return E.reshape(v, ())


def _name(fn) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    if isinstance(fn, np.ufunc):
        module = "numpy"
    if module in ("builtins", ""):
        return name
    return f"{module.split('.')[0] if module.startswith('numpy') else module}.{name}"


RANDOM = ("numpy.random", "random")
IO = {"print", "open", "input", "write"}


def describe(fn) -> str:
    """How a message names a function that cannot be translated."""
    name = _name(fn)
    owner = type(getattr(fn, "__self__", None))
    if owner.__name__ in ("RandomState", "Generator"):
        return f"numpy.random.{getattr(fn, '__name__', '?')} (random numbers)"
    if owner.__module__ == "random":  # random.random is a method of a hidden Random
        return f"random.{getattr(fn, '__name__', '?')} (random numbers)"
    module = getattr(fn, "__module__", "") or ""
    if module.startswith(RANDOM) or module == "random" or "Generator" in name:
        return f"{name} (random numbers)"
    if getattr(fn, "__name__", "") in IO:
        return f"{name} (input/output)"
    return name


def function_name(fn) -> str:
    """The plain name of a library function (to tell handlers apart)."""
    return getattr(fn, "__name__", "")


__all__ = ["lookup", "describe", "method", "METHODS", "source"]
