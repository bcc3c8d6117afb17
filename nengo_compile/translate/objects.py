"""The static objects of symbolic execution (`convert`): the function being
translated, bindings, results, ``self`` and methods, and how a name's value
from the closure or globals enters the IR (`wrap`)."""

from __future__ import annotations

import ast
import builtins
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import expr as E
from .expr import Untranslatable, Value


@dataclass
class Function:
    """A Python function to translate: its AST and where its names come from."""

    node: ast.AST  # ast.Lambda or ast.FunctionDef
    fn: object  # the function object (for its globals, closure and defaults)
    filename: str
    self_obj: object = None
    has_self: bool = False

    def lookup(self, name):
        code = self.fn.__code__
        if name in code.co_freevars and self.fn.__closure__ is not None:
            cell = self.fn.__closure__[code.co_freevars.index(name)]
            try:
                return cell.cell_contents
            except ValueError as exc:
                raise Untranslatable(f"the name {name!r} (not yet bound)") from exc
        if name in self.fn.__globals__:
            return self.fn.__globals__[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise Untranslatable(f"the undefined name {name!r}")


@dataclass(frozen=True)
class Bind:
    """A loop variable binding inside an unrolled loop."""

    target: ast.AST
    value: object


@dataclass(frozen=True)
class Result:
    value: object
    state: dict


class SelfRef:
    """``self`` inside a method of a stateful callable object."""

    def __init__(self, obj):
        self.obj = obj


@dataclass(frozen=True)
class Method:
    """A method of an IR value (``x.sum``) or of ``self``."""

    owner: object
    name: str


class Unbound:
    """A name bound on one side of a branch only."""


UNBOUND = Unbound()


def _is_library(fn) -> bool:
    """A function from the standard library or an installed package: never inlined
    (only the model's own functions are)."""
    top = (getattr(fn, "__module__", None) or "").split(".")[0]
    if top in getattr(sys, "stdlib_module_names", ()):
        return True
    parts = Path(fn.__code__.co_filename).parts
    return "site-packages" in parts or "dist-packages" in parts


def _is_static_int(v) -> bool:
    return isinstance(v, Value) and E.is_const(v) and v.shape == () and v.dtype in "bi"


def _type_name(obj) -> str:
    return type(obj).__qualname__


def _wrap(obj, name=None):
    """A name's value from the closure or globals: constants become IR
    constants; modules, functions and containers stay static objects."""
    if isinstance(obj, Value):
        return obj
    if isinstance(obj, bool | int | float | np.number | np.bool_):
        return E.const(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise Untranslatable(f"the array {name or ''} of type {obj.dtype}".replace("  ", " "))
        return E.const(obj)
    if isinstance(obj, list | tuple):
        return type(obj)(_wrap(e) for e in obj)
    if obj is None or isinstance(obj, str | dict | range | types.ModuleType):
        return obj
    if callable(obj):
        return obj
    what = f"{name!r}, " if name else ""
    raise Untranslatable(f"the object {what}a {_type_name(obj)} (its value may change)")
