"""nengo-spa's ``Transcode`` nodes: Semantic Pointer expressions as constant vectors.

``spa.Transcode(fn, output_vocab=vocab)`` builds a Node whose output is
nengo-spa's ``parse_func`` (a closure over ``fn`` and an ``SpArrayExtractor``
that parses a returned string with the vocabulary and returns ``.v``); with an
``input_vocab`` the input is wrapped first (``sp_func``: ``fn(t,
SemanticPointer(x, vocab))``). We recognise both wrappers by their code
objects and translate the user's ``fn`` with `SpaConverter`: the vocabulary is
fixed when the model is built, so every expression the function returns is a
constant vector (``vocab.parse(expr).v``, evaluated by nengo-spa at compile
time), and the function's branches on ``t`` and ``x`` select among them.

Pointers computed from the input (``sp * vocab["B"]``, ``x[0] * vocab["A"]``,
``~sp``, ``sp.dot(...)``) are `Pointer` values: binding with a constant
pointer is its binding matrix, inversion a permutation matrix, superposition
and scaling elementwise. Binding two computed pointers, and names a
non-strict vocabulary would add at run time, stay hooks and say why.

nengo-spa is optional: without it nothing is recognised, and no generated
module ever imports it.
"""

from __future__ import annotations

import ast
import inspect
import operator
import types
from dataclasses import dataclass

import numpy as np

from . import expr as E
from .convert import Converter
from .expr import Untranslatable, Value
from .objects import UNBOUND, SelfRef

try:
    from nengo_spa.ast.symbolic import PointerSymbol, PointerSymbolFactory
    from nengo_spa.modules import transcode as _transcode
    from nengo_spa.semantic_pointer import SemanticPointer
    from nengo_spa.vocabulary import Vocabulary
except ImportError:  # nengo-spa is not installed: no Transcode to recognise
    _transcode = None

__all__ = ["Pointer", "SpaConverter", "Transcoded", "unwrap"]


@dataclass(frozen=True)
class Transcoded:
    """A Transcode node's output function, unwrapped."""

    fn: object  # the user's function
    input_vocab: object  # its input is a SemanticPointer of this vocabulary (or None)
    output_vocab: object  # strings it returns are parsed with this vocabulary (or None)

    def converter(self, library, state_attrs=None, self_obj=None) -> SpaConverter:
        return SpaConverter(library, state_attrs, self_obj, output_vocab=self.output_vocab)

    def arguments(self, args: list) -> list:
        """``(t, x)`` as the user's function gets them."""
        if self.input_vocab is None or len(args) < 2:
            return args
        vocab = self.input_vocab
        return [args[0], Pointer(E.cast(args[1], "f"), vocab, vocab.algebra)]


def _code(make):
    return make(None, None).__code__


def unwrap(fn) -> Transcoded | None:
    """The user's function if ``fn`` is a Transcode node's wrapper, else None."""
    if _transcode is None or not isinstance(fn, types.FunctionType):
        return None
    parse_code = _code(_transcode.make_parse_func)
    sp_code = _code(_transcode.make_sp_func)
    output_vocab = None
    if fn.__code__ is parse_code:
        output_vocab = _cell(fn, "extractor").vocab
        fn = _cell(fn, "fn")
    input_vocab = None
    if isinstance(fn, types.FunctionType) and fn.__code__ is sp_code:
        input_vocab = _cell(fn, "vocab")
        fn = _cell(fn, "fn")
    if output_vocab is None and input_vocab is None:
        return None
    return Transcoded(fn, input_vocab, output_vocab)


def _cell(fn, name):
    return fn.__closure__[fn.__code__.co_freevars.index(name)].cell_contents


@dataclass(frozen=True)
class Pointer:
    """A Semantic Pointer computed from the input: its vector is an IR value."""

    v: Value  # shape (dimensions,)
    vocab: object
    algebra: object


@dataclass(frozen=True)
class SpaMethod:
    owner: object
    name: str


def _is(obj, cls) -> bool:
    """``isinstance`` by the object's type (``spa.sym`` answers any attribute,
    ``__class__`` included)."""
    return _transcode is not None and issubclass(type(obj), cls)


def _is_spa(obj) -> bool:
    """A static nengo-spa object (by its type: ``spa.sym`` answers any attribute)."""
    return _transcode is not None and issubclass(
        type(obj), Vocabulary | SemanticPointer | PointerSymbol | PointerSymbolFactory | Pointer
    )


def _pointer_like(obj) -> bool:
    return _transcode is not None and issubclass(
        type(obj), SemanticPointer | PointerSymbol | Pointer
    )


def check_names(vocab, text: str) -> None:
    """A non-strict vocabulary adds a missing name (with a random vector) when it
    is first parsed: at run time in Nengo, so it cannot be a constant now."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise Untranslatable(f"the Semantic Pointer expression {text!r} (not Python)") from exc
    missing = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in vocab]
    if missing and not vocab.strict:
        raise Untranslatable(
            f"the pointer {missing[0]!r}, not yet in the non-strict vocabulary (Nengo adds "
            "it, with a random vector, when the function first returns it)"
        )


def parse(vocab, text: str):
    """``vocab.parse(text)``, evaluated by nengo-spa now."""
    check_names(vocab, text)
    try:
        return vocab.parse(text)
    except Exception as exc:  # nengo-spa's parse errors, as Nengo would raise them
        raise Untranslatable(f"parsing {text!r}: {exc}") from exc


BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


class SpaConverter(Converter):
    """The converter for a Transcode function: strings are constant pointers of
    the output vocabulary, and vocabularies and pointers are static objects."""

    def __init__(self, library, state_attrs=None, self_obj=None, *, output_vocab=None):
        super().__init__(library, state_attrs, self_obj)
        self.output_vocab = output_vocab

    def value(self, obj) -> Value:
        if isinstance(obj, str):
            if self.output_vocab is None:
                raise Untranslatable("a string where a number or array is needed")
            return E.const(parse(self.output_vocab, obj).v)
        if isinstance(obj, Pointer):
            return obj.v
        if _is(obj, SemanticPointer):
            return E.const(obj.v)
        if _is(obj, PointerSymbol):
            return self.value(obj.expr)
        return super().value(obj)

    def _eval(self, node, env):
        if isinstance(node, ast.Name) and node.id not in env:
            obj = env["__func__"].lookup(node.id)
            if _is_spa(obj):
                return obj
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert | ast.USub):
            operand = self.eval(node.operand, env)
            if _pointer_like(operand):
                return self.unary(node.op, operand)
        if isinstance(node, ast.IfExp):  # pointers on both sides stay a pointer
            c = E.truth(self.value(self.eval(node.test, env)))
            if not E.is_const(c):
                a, b = self.eval(node.body, env), self.eval(node.orelse, env)
                if _pointer_like(a) and _pointer_like(b):
                    return self.select(c, a, b)
        return super()._eval(node, env)

    def merge_env(self, c, env1, env2):
        merged = super().merge_env(c, env1, env2)
        for key, value in merged.items():
            a, b = env1.get(key), env2.get(key)
            if value is UNBOUND and _pointer_like(a) and _pointer_like(b):
                merged[key] = self.select(c, a, b)
        return merged

    def select(self, c, a, b) -> Pointer:
        p, q = self.pointer(a, b), self.pointer(b, a)
        return Pointer(E.apply("where", c, p.v, q.v), _vocab(p, q), p.algebra)

    # ---- pointer algebra ---------------------------------------------------
    def unary(self, op, a):
        if not isinstance(a, Pointer):  # a constant: nengo-spa computes it
            return self._static(operator.invert if isinstance(op, ast.Invert) else operator.neg, a)
        if isinstance(op, ast.USub):
            return Pointer(E.apply("neg", a.v), a.vocab, a.algebra)
        inversion = a.algebra.get_inversion_matrix(a.v.shape[0])
        return Pointer(E.dot(E.const(inversion), a.v), a.vocab, a.algebra)

    def binop(self, op, a, b):
        if isinstance(a, str) or isinstance(b, str):
            if isinstance(a, str) and isinstance(b, str) and isinstance(op, ast.Add):
                return a + b  # an expression built from strings: parsed when returned
            raise Untranslatable("string arithmetic other than concatenating two strings")
        if not (_pointer_like(a) or _pointer_like(b)):
            return super().binop(op, a, b)
        if type(op) not in BINARY:
            raise Untranslatable(f"the operator {type(op).__name__} on Semantic Pointers")
        if not isinstance(a, Pointer) and not isinstance(b, Pointer) and _static_operands(a, b):
            return self._static(BINARY[type(op)], a, b)  # constants: nengo-spa computes it
        if isinstance(op, ast.Mult):
            return self.multiply(a, b)
        p, q = self.pointer(a, b), self.pointer(b, a)
        name = "add" if isinstance(op, ast.Add) else "sub"
        return Pointer(E.apply(name, p.v, q.v), _vocab(p, q), p.algebra)

    def compare(self, op, a, b):
        if isinstance(a, str) or isinstance(b, str):
            if isinstance(a, str) and isinstance(b, str) and isinstance(op, ast.Eq | ast.NotEq):
                return E.const((a == b) == isinstance(op, ast.Eq))
            raise Untranslatable("a comparison of a string other than == or != of two strings")
        return super().compare(op, a, b)

    def _static(self, fn, *args):
        plain = [v.array.item() if isinstance(v, Value) and v.shape == () else v for v in args]
        if any(isinstance(v, Value | str) for v in plain):
            raise Untranslatable("Semantic Pointer arithmetic with an array or a string")
        try:
            return fn(*plain)
        except Exception as exc:  # nengo-spa's type errors, as Nengo would raise them
            raise Untranslatable(f"Semantic Pointer arithmetic: {exc}") from exc

    def multiply(self, a, b):
        """Scaling by a number, or binding (only with a constant pointer: a matrix)."""
        for s, p in ((a, b), (b, a)):
            if not _pointer_like(s):
                s = self.value(s)
                if s.shape != ():
                    raise Untranslatable("a Semantic Pointer multiplied by an array")
                q = self.pointer(p, None)
                return Pointer(E.apply("mul", q.v, E.cast(s, "f")), q.vocab, q.algebra)
        p, q = self.pointer(a, b), self.pointer(b, a)
        if not (_constant(p) or _constant(q)):
            raise Untranslatable(
                "binding two Semantic Pointers computed from the input (only binding with "
                "a constant pointer translates, as its binding matrix)"
            )
        if _constant(p):  # p * q == M(p) @ q
            matrix = p.algebra.get_binding_matrix(p.v.array)
            return Pointer(E.dot(E.const(matrix), q.v), _vocab(p, q), p.algebra)
        matrix = q.algebra.get_binding_matrix(q.v.array, swap_inputs=True)
        return Pointer(E.dot(E.const(matrix), p.v), _vocab(p, q), p.algebra)

    def pointer(self, obj, other) -> Pointer:
        """``obj`` as a `Pointer` (a symbol is parsed in the vocabulary of the other)."""
        if isinstance(obj, Pointer):
            return obj
        if _is(obj, SemanticPointer):
            return Pointer(E.const(obj.v), obj.vocab, obj.algebra)
        if _is(obj, PointerSymbol):
            vocab = getattr(obj.type, "vocab", None) or getattr(other, "vocab", None)
            if vocab is None:
                raise Untranslatable(f"the symbol {obj.expr!r} without a vocabulary")
            return self.pointer(parse(vocab, obj.expr), None)
        raise Untranslatable(f"a {type(obj).__name__} in Semantic Pointer arithmetic")

    # ---- attributes, methods, subscripts -----------------------------------
    def attribute(self, obj, attr, env):
        if isinstance(obj, SelfRef) and attr not in self.state_attrs:
            value = inspect.getattr_static(obj.obj, attr, None)
            if _is_spa(value):
                return value
        if isinstance(obj, types.ModuleType) and _is_spa(getattr(obj, attr, None)):
            return getattr(obj, attr)
        if _transcode is None or not _is_spa(obj):
            return super().attribute(obj, attr, env)
        if _is(obj, PointerSymbolFactory):
            return getattr(obj, attr)
        if _is(obj, Vocabulary):
            if attr == "parse":
                return SpaMethod(obj, attr)
            if attr == "dimensions":
                return E.const(obj.dimensions)
            if attr == "vectors":
                return E.const(np.asarray(obj.vectors, dtype=np.float64))
            raise Untranslatable(f"the vocabulary attribute .{attr}")
        if _is(obj, PointerSymbol):
            if attr in ("normalized", "unitary"):
                return SpaMethod(obj, attr)
            raise Untranslatable(f"the symbol attribute .{attr}")
        if attr == "v":
            return self.value(obj)
        if attr == "vocab":
            return obj.vocab
        if attr in ("dot", "normalized", "length", "bind"):
            return SpaMethod(obj, attr)
        raise Untranslatable(f"the Semantic Pointer attribute .{attr}")

    def call(self, node, env):
        fn = self.eval(node.func, env)
        if not isinstance(fn, SpaMethod):
            return super().call(node, env)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise Untranslatable(f".{fn.name}() with keyword or starred arguments")
        args = [self.eval(a, env) for a in node.args]
        return self.method(fn.owner, fn.name, args)

    def method(self, owner, name, args):
        if _is(owner, Vocabulary):
            (text,) = args if len(args) == 1 else (None,)
            if not isinstance(text, str):
                raise Untranslatable(f"vocabulary.{name}() of a computed or missing name")
            return parse(owner, text) if name == "parse" else self.subscript(owner, text)
        if _is(owner, PointerSymbol):  # a constant: nengo-spa computes it
            return self._static(getattr(owner, name), *args)
        p = self.pointer(owner, None)
        if name == "bind" and len(args) == 1:
            return self.multiply(owner, args[0])
        if name == "dot" and len(args) == 1:
            other = args[0]
            v = self.pointer(other, p).v if _pointer_like(other) else self.value(other)
            return E.dot(p.v, E.cast(v, "f"))
        if args:
            raise Untranslatable(f".{name}() with arguments")
        norm = E.apply("sqrt", E.dot(p.v, p.v))
        if name == "length":
            return norm
        # nengo-spa: a zero vector stays as it is
        norm = E.apply("where", E.apply("le", norm, E.const(0.0)), E.const(1.0), norm)
        return Pointer(E.apply("truediv", p.v, norm), p.vocab, p.algebra)

    def subscript(self, obj, key):
        if not _is(obj, Vocabulary):
            return super().subscript(obj, key)
        if not isinstance(key, str):
            raise Untranslatable("a vocabulary indexed by a computed or non-string key")
        check_names(obj, key)
        try:
            return obj[key]
        except Exception as exc:
            raise Untranslatable(f"the pointer {key!r}: {exc}") from exc


def _static_operands(a, b) -> bool:
    """Neither operand is computed (a number from the input makes a computed pointer)."""
    return all(not isinstance(v, Value) or E.is_const(v) for v in (a, b))


def _constant(*pointers) -> bool:
    return all(E.is_const(p.v) for p in pointers)


def _vocab(p: Pointer, q: Pointer):
    if p.vocab is not None and q.vocab is not None and p.vocab is not q.vocab:
        raise Untranslatable("Semantic Pointers of two vocabularies in one expression")
    return p.vocab if p.vocab is not None else q.vocab
