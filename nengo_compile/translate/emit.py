"""From expression IR to TensorFlow statements, one statement per operation.

The statements are built only from the IR: temporary names (``v0``, ``v1``,
...), the fixed names of the inputs (``t64``, ``x``, ``state0``), numeric
literals, parameter names and TensorFlow functions from the tables below. No
text of the user's reaches them.

Batched values carry a leading batch axis (``[batch, *shape]``); unbatched
ones have their numpy shape. Before a broadcasting operation, batched operands
of lower rank get new axes after the batch axis (``v[:, None]``), which is
numpy's broadcasting with the batch axis kept first.
"""

from __future__ import annotations

import numpy as np

from . import expr as E

#: a statement longer than this is split over several lines (the step body
#: is indented by 8 in a module formatted at 100 columns)
WIDTH = 88

#: ``exact_float`` is a local of the generated step: tf.float64 (numpy's
#: precision, so results match Nengo), or the model's dtype in portable exports
TF_DTYPES = {"f": "exact_float", "i": "tf.int64", "b": "tf.bool"}

INFIX = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "truediv": "/",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
}

FUNCTIONS = {
    "floordiv_int": "tf.math.floordiv",
    "mod": "tf.math.floormod",
    "pow": "tf.pow",
    "abs": "tf.abs",
    "sign": "tf.sign",
    "maximum": "tf.maximum",
    "minimum": "tf.minimum",
    "square": "tf.square",
    "eq": "tf.equal",
    "ne": "tf.not_equal",
    "and": "tf.logical_and",
    "or": "tf.logical_or",
    "xor": "tf.math.logical_xor",
    "not": "tf.logical_not",
    "where": "tf.where",
    "arctan2": "tf.atan2",
    "sin": "tf.sin",
    "cos": "tf.cos",
    "tan": "tf.tan",
    "arcsin": "tf.asin",
    "arccos": "tf.acos",
    "arctan": "tf.atan",
    "sinh": "tf.sinh",
    "cosh": "tf.cosh",
    "tanh": "tf.tanh",
    "arcsinh": "tf.asinh",
    "arccosh": "tf.acosh",
    "arctanh": "tf.atanh",
    "exp": "tf.exp",
    "expm1": "tf.math.expm1",
    "log": "tf.math.log",
    "log1p": "tf.math.log1p",
    "sqrt": "tf.sqrt",
    "reciprocal": "tf.math.reciprocal",
    "floor": "tf.floor",
    "ceil": "tf.math.ceil",
    "rint": "tf.math.rint",
}
#: functions written as several TF operations: name -> format of the operands
COMPOSED = {
    "neg": "-{0}",
    "log2": "tf.math.log({0}) / 0.6931471805599453",
    "log10": "tf.math.log({0}) / 2.302585092994046",
    "trunc": "tf.sign({0}) * tf.floor(tf.abs({0}))",
}


def literal(value) -> str:
    value = value.item() if isinstance(value, np.generic | np.ndarray) else value
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if np.isnan(value):
        return 'float("nan")'
    if np.isinf(value):
        return 'float("inf")' if value > 0 else '-float("inf")'
    return repr(value)


class Emitter:
    """Writes the statements computing IR values; each value is computed once."""

    def __init__(self, params, prefix="fn"):
        self.params = params
        self.prefix = prefix
        self.lines = []
        self.names = {}  # id(value) -> (name, value)
        self.counter = 0

    # ---- operands --------------------------------------------------------
    def ref(self, v: E.Value) -> str:
        """A name or literal for ``v`` (scalar constants inline)."""
        if isinstance(v, E.Const):
            if v.shape == ():
                return literal(v.array)
            return self._param(v)
        if isinstance(v, E.Leaf):
            return v.name
        if id(v) not in self.names:
            self.names[id(v)] = (self._emit(v), v)
        return self.names[id(v)][0]

    def arg(self, v: E.Value) -> str:
        """``v`` as a function argument: scalar constants become typed tensors."""
        if isinstance(v, E.Const) and v.shape == ():
            return f"tf.constant({literal(v.array)}, {TF_DTYPES[v.dtype]})"
        return self.ref(v)

    def padded(self, v: E.Value, rank: int, as_arg=False) -> str:
        code = self.arg(v) if as_arg else self.ref(v)
        missing = rank - len(v.shape)
        if v.batched and missing > 0:
            return f"{code}[:, {', '.join(['None'] * missing)}]"
        return code

    def _param(self, v) -> str:
        key = ("const", v.dtype, v.array.shape, v.array.tobytes())
        if key not in self.names:
            name = self.params.add(self.prefix, v.array, dtype=E.KINDS[v.dtype])
            code = f'p["{name}"]'
            if v.dtype == "f":
                code = f"tf.cast({code}, exact_float)"
            self.names[key] = (code, v)
        return self.names[key][0]

    def _divisor(self, c: E.Const) -> str:
        """A constant divisor, as a parameter: given a literal, Grappler and XLA
        rewrite ``x / c`` as ``x * (1 / c)``, which is not always ``x / c``
        (``0.15 / 0.05`` is 2.9999999999999996; ``0.15 * 20.0`` is 3.0)."""
        key = ("divisor", float(c.array))
        if key not in self.names:
            name = self.params.add(self.prefix, np.reshape(c.array, (1,)), dtype=np.float64)
            self.names[key] = (f'tf.cast(p["{name}"][0], exact_float)', c)
        return self.names[key][0]

    def _index_param(self, positions) -> str:
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size <= 8:
            return "[" + ", ".join(str(int(p)) for p in positions) + "]"
        key = ("index", positions.tobytes())
        if key not in self.names:
            name = self.params.add(self.prefix + "_index", positions, dtype=np.int64)
            self.names[key] = (f'p["{name}"]', None)
        return self.names[key][0]

    def assign(self, target: str, code: str) -> str:
        self.lines.extend(split_statement(f"{target} = {code}"))
        return target

    def _emit(self, v: E.Op) -> str:
        code = self.code(v)
        if ("code", code) in self.names:  # the same operation on the same operands
            return self.names[("code", code)][0]
        name = self.assign(f"v{self._next()}", code)
        self.names[("code", code)] = (name, v)
        return name

    def batch_shape(self, v, shape=None) -> str:
        dims = ["batch"] if v.batched else []
        dims += [str(d) for d in (v.shape if shape is None else shape)]
        return "[" + ", ".join(dims) + "]"

    def batched(self, v: E.Value, shape=None) -> str:
        """``v`` with a batch axis (unbatched values are broadcast)."""
        if v.batched:
            return self.ref(v)
        shape = v.shape if shape is None else shape
        dims = ", ".join(["batch"] + [str(d) for d in shape])
        return f"tf.broadcast_to({self.arg(v)}, [{dims}])"

    # ---- operations ------------------------------------------------------
    def code(self, v: E.Op) -> str:
        op, args, attrs = v.op, v.args, v.attrs
        rank = len(v.shape)
        b = 1 if v.batched else 0
        if op == "cast":
            (a,) = args
            if attrs[0] == "b":
                return f"tf.not_equal({self.ref(a)}, tf.zeros_like({self.ref(a)}))"
            return f"tf.cast({self.ref(a)}, {TF_DTYPES[attrs[0]]})"
        if op in INFIX:
            left, right = (self.padded(a, rank) for a in args)
            if op == "truediv" and isinstance(args[1], E.Const) and args[1].shape == ():
                if abs(np.frexp(float(args[1].array))[0]) != 0.5:  # 1 / c is inexact
                    right = self._divisor(args[1])
            return f"{left} {INFIX[op]} {right}"
        if op in COMPOSED:
            return COMPOSED[op].format(self.ref(args[0]))
        if op in FUNCTIONS:  # one operand at least is a tensor: literals take its type
            as_arg = op == "where"  # but tf.where would make a float literal float32
            operands = ", ".join(self.padded(a, rank, as_arg=as_arg) for a in args)
            return f"{FUNCTIONS[op]}({operands})"
        if op == "reshape":
            return f"tf.reshape({self.ref(args[0])}, {self.batch_shape(v)})"
        if op == "broadcast":
            return f"tf.broadcast_to({self.padded(args[0], rank)}, {self.batch_shape(v)})"
        if op == "index":
            key = ", ".join([":"] * b + [_key_item(k) for k in attrs[0]])
            return f"{self.ref(args[0])}[{key}]"
        if op == "take":
            (a,) = args
            flat = self.ref(a)
            if len(a.shape) != 1:
                flat = f"tf.reshape({flat}, {'[batch, -1]' if a.batched else '[-1]'})"
            code = f"tf.gather({flat}, {self._index_param(attrs[0])}, axis={b})"
            if rank != 1:
                flat = self.assign(f"v{self._next()}", code)
                code = f"tf.reshape({flat}, {self.batch_shape(v)})"
            return code
        if op == "gather":
            a, i = args
            axis = attrs[0] if attrs else 0
            if i.batched and (a.batched or axis):  # one index per batch element
                return f"tf.gather({self.batched(a)}, {self.ref(i)}, axis={axis + 1}, batch_dims=1)"
            axis += 1 if a.batched else 0
            return f"tf.gather({self.ref(a)}, {self.ref(i)}, axis={axis})"
        if op == "setitem":
            base, value = args
            size = int(np.prod(base.shape))
            flat = [
                self._flat(base, size, v.batched),
                self._flat(value, int(np.prod(value.shape)), v.batched),
            ]
            both = self.assign(f"v{self._next()}", f"tf.concat([{', '.join(flat)}], axis={b})")
            gathered = f"tf.gather({both}, {self._index_param(attrs[0])}, axis={b})"
            if rank == 1:
                return gathered
            gathered = self.assign(f"v{self._next()}", gathered)
            return f"tf.reshape({gathered}, {self.batch_shape(v)})"
        if op == "stack":
            items = [self.batched(a) if v.batched else self.arg(a) for a in args]
            return f"tf.stack([{', '.join(items)}], axis={attrs[0] + b})"
        if op == "concat":
            items = [self.batched(a) if v.batched else self.arg(a) for a in args]
            return f"tf.concat([{', '.join(items)}], axis={attrs[0] + b})"
        if op == "reduce":
            name, axis = attrs
            axis += 1 if args[0].batched else 0
            return f"tf.reduce_{name}({self.ref(args[0])}, axis={axis})"
        if op == "dot":
            a, c = args
            if len(a.shape) == 1 and len(c.shape) == 1:
                return f"tf.reduce_sum({self.ref(a)} * {self.ref(c)}, axis=-1)"
            if len(a.shape) == 2 and len(c.shape) == 1:
                return f"tf.linalg.matvec({self.ref(a)}, {self.ref(c)})"
            if len(a.shape) == 1:
                return f"tf.linalg.matvec({self.ref(c)}, {self.ref(a)}, transpose_a=True)"
            return f"tf.matmul({self.ref(a)}, {self.ref(c)})"
        if op == "roll":
            shift, axis = attrs
            return f"tf.roll({self.ref(args[0])}, {shift}, axis={axis + b})"
        if op == "transpose":
            perm = [0] * b + [p + b for p in attrs[0]]
            return f"tf.transpose({self.ref(args[0])}, {perm})"
        raise AssertionError(f"no emission for {op}")

    def _next(self) -> int:
        self.counter += 1
        return self.counter - 1

    def _flat(self, v, size, batched) -> str:
        code = self.ref(v) if not isinstance(v, E.Const) or v.shape else self.arg(v)
        if len(v.shape) != 1:
            code = f"tf.reshape({code}, {'[batch, -1]' if v.batched else '[-1]'})"
        if batched and not v.batched:
            code = f"tf.broadcast_to({code}, [batch, {size}])"
        return code

    # ---- results ---------------------------------------------------------
    def rows(self, target: str, v: E.Value, size: int, dtype="DTYPE") -> str:
        """``target = v`` as a ``[batch, size]`` tensor of ``dtype``; ``v`` has
        ``size`` elements, or one (broadcast)."""
        if isinstance(v, E.Const):
            value = np.asarray(v.array, dtype=np.float64).reshape(-1)
            if np.all(value == value[0]):
                return self.assign(target, f"_fill(batch, {size}, {literal(value[0])}, DTYPE)")
            v = E.const(value)
        code = self.ref(v)
        n = int(np.prod(v.shape))
        if v.batched and v.shape != (n,):
            code = f"tf.reshape({code}, [batch, {n}])"
        elif not v.batched and v.shape not in ((), (n,)):
            code = f"tf.reshape({code}, [{n}])"
        code = f"tf.cast({code}, {dtype})"
        if not v.batched or n != size:
            code = f"tf.broadcast_to({code}, [batch, {size}])"
        return self.assign(target, code)


def _key_item(k) -> str:
    if k is None:
        return "None"
    if k is Ellipsis:
        return "..."
    if isinstance(k, slice):
        parts = ["" if p is None else str(p) for p in (k.start, k.stop, k.step)]
        text = f"{parts[0]}:{parts[1]}"
        return text + (f":{parts[2]}" if k.step is not None else "")
    return str(int(k))


def split_statement(line: str) -> list:
    """A statement, split as ``ruff format`` would if it is too long.

    Only our own statements come here: ``name = f(a, [b, c], k=d)``. Long
    ones are exploded with trailing commas, one argument (and one list item)
    per line, which ruff keeps as they are.
    """
    if len(line) <= WIDTH or "(" not in line:
        return [line]
    head, _, rest = line.partition("(")
    assert rest.endswith(")")
    args = _split_top(rest[:-1])
    out = [f"{head}("]
    for a in args:
        if a.startswith("[") and a.endswith("]") and len(a) + 4 > WIDTH:
            out.append("    [")
            out.extend(f"        {item}," for item in _split_top(a[1:-1]))
            out.append("    ],")
        else:
            out.append(f"    {a},")
    out.append(")")
    return out


def _split_top(text: str) -> list:
    """Split at commas that are not inside brackets or strings."""
    parts, depth, current, quote = [], 0, [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts
