"""The model key: a hash of what the stages after build read.

`fingerprint` hashes the operators with their signals (names, shapes,
views, initial values), the neuron types, processes and learning rules they
hold, the Python functions of Nodes and connections (their code, defaults,
closures, the globals they read and their source lines), the network's
objects (kinds, labels, which function is whose), the probes, dt, dtype,
seed and the options, and the compiler itself (the bytes of every file of
this package, and the versions of Nengo, NumPy, Jinja2, networkx and
Python). Equal keys mean the stages from rewrite to lower compute the same
program (`nengo_compile.cache` keeps it).

Code of the packages in `KNOWN` and of Python's own library is keyed by
name and version; every other function by its code, every other class by
the bytes of the file that defines it. What the key cannot read safely it
refuses: an object of a type it does not know how to read (a file or a
lock in a function's globals, say) makes the model uncacheable (it is
compiled as without a cache, and ``-v`` says why), never a guess.

`Fingerprint.objects` lists the build's objects in the order the key met
them: equal keys make the objects at one position of two builds the same
object of the model (the cache replaces references by these positions).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import os
import platform
import sys
import types
import weakref
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import nengo
import numpy as np
from nengo.builder.operator import Operator
from nengo.builder.signal import Signal
from nengo.params import iter_params

logger = logging.getLogger("nengo_compile")

MAX_OBJECTS = 5_000_000  # a model whose key would read more is not cached

#: packages whose module-level objects are keyed by name and version: their
#: code is not the user's, and an upgrade changes the key
KNOWN = {
    "numpy": "numpy",
    "nengo": "nengo",
    "scipy": "scipy",
    "nengo_spa": "nengo-spa",
    "nengo_compile": "nengo-compile",
}


class Uncacheable(Exception):
    """The key cannot read this model safely (the message says what)."""


@dataclass
class Fingerprint:
    """A model's key, and the build's objects in the order the key met them."""

    key: str
    objects: list = field(repr=False)
    index: dict = field(repr=False)  # id(object) -> its position in objects


def fingerprint(built, options: dict, describe) -> Fingerprint | None:
    """The key of ``built`` compiled with ``options``, or None (and why, at
    ``-v``) if the key cannot read something in it. ``describe`` is a
    `nengo_compile.lower.Describer` of the network: names that hold memory
    addresses are keyed by the objects' positions instead, as the module
    shows them."""
    hasher = _Hasher(describe.text)
    try:
        hasher.add(_compiler())
        hasher.add(sorted(options.items()))
        hasher.add((built.dt, built.seed))
        hasher.network(built.network, built.model)
        for op in built.operators:
            hasher.add(op)
        for probe, sig in built.probes:
            hasher.add((probe, probe.attr, probe.sample_every, probe.label, sig))
        hasher.add((built.model.step, built.model.time))
    except Uncacheable as exc:
        logger.info("cache    not used: %s", exc)
        return None
    return Fingerprint(hasher.hexdigest(), hasher.objects, hasher.memo)


@functools.lru_cache(maxsize=1)
def _compiler() -> tuple:
    """The compiler's own identity: every file of this package and of its
    templates (outside the package in a checkout; its name, size and
    modification time, as Python keys its ``.pyc`` files), and versions."""
    from . import render

    package = Path(__file__).parent
    templates = render.templates_dir()
    folders = [package]
    if not templates.is_relative_to(package):  # a checkout's (a wheel's are in the package)
        folders.append(templates)
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".py", ".j2"):
                st = path.stat()
                name = f"{folder.name}/{path.relative_to(folder)}"
                digest.update(f"{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    import jinja2
    import networkx

    versions = tuple(m.__version__ for m in (nengo, np, jinja2, networkx))
    return digest.hexdigest(), (*versions, platform.python_version())


@functools.cache
def _package_version(top: str) -> str | None:
    """A version for the objects of top-level package ``top``, if they are
    keyed by name: Python's own modules, and `KNOWN`."""
    if top in sys.stdlib_module_names or top in ("builtins", "__builtin__"):
        return platform.python_version()
    if top in KNOWN:
        known = getattr(sys.modules.get(top), "__version__", None)
        if known is None:
            try:
                known = version(KNOWN[top])
            except Exception:  # noqa: BLE001 - not installed as a distribution
                known = "?"
        return str(known)
    return None


@functools.cache
def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class _Hasher:
    """A token stream of what the stages read, and the objects met (memo)."""

    def __init__(self, text):
        self.text = text  # normalises memory addresses in names
        self.parts: list = []
        self.memo: dict = {}  # id -> position in objects
        self.objects: list = []  # every object met, kept alive (ids stay unique)
        self.names: frozenset = frozenset()  # names the current function reads
        self.handlers = {
            Signal: self._signal,
            dict: self._dict,
            slice: self._slice,
            types.FunctionType: self._function,
            types.MethodType: self._method,
            types.CodeType: self._code,
            types.ModuleType: self._module,
            functools.partial: self._partial,
            np.random.RandomState: self._random_state,
            np.random.Generator: self._generator,
        }

    def hexdigest(self) -> str:
        digest = hashlib.sha256()
        digest.update("\x1f".join(self.parts).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def add(self, obj) -> None:
        t = type(obj)
        if t is str:
            self.parts.append("s" + self.text(obj))
            return
        if obj is None or t is bool or t is int or t is float or t is complex:
            self.parts.append(repr(obj))  # None, True, 1, 1.0 and 1j differ
            return
        if t is tuple or t is list:  # by value, not remembered: most are ours
            self._sequence(obj)
            return
        if t is np.ndarray:  # by value: the cache keeps arrays by value too
            self._array(obj)
            return
        if t is bytes:
            self.parts.append("b" + hashlib.sha256(obj).hexdigest())
            return
        position = self.memo.get(id(obj))
        if position is not None:
            self.parts.append(f"@{position}")
            return
        self._remember(obj)
        handler = self.handlers.get(t)
        if handler is None:
            handler = self._handler(t)
            self.handlers[t] = handler
        handler(obj)

    def _remember(self, obj) -> None:
        if len(self.objects) >= MAX_OBJECTS:
            raise Uncacheable(f"the model holds more than {MAX_OBJECTS:,} objects to key")
        self.memo[id(obj)] = len(self.objects)
        self.objects.append(obj)

    def _handler(self, t):
        if issubclass(t, Operator):
            return self._operator
        if issubclass(t, type):
            return self._class
        if issubclass(t, (np.generic, np.dtype)):
            return self._scalar
        if issubclass(t, (types.BuiltinFunctionType, np.ufunc)):
            return self._builtin
        if issubclass(t, (weakref.WeakKeyDictionary, weakref.WeakValueDictionary)):
            return lambda obj: self._dict(dict(obj.items()))
        if issubclass(t, weakref.ref):
            return lambda obj: self.add(("weakref", obj()))
        for base, handler in list(self.handlers.items()):
            if isinstance(base, type) and issubclass(t, base):
                return handler
        return self._object

    # --- values

    def _sequence(self, seq) -> None:
        self.parts.append(f"{type(seq).__name__}[{len(seq)}")
        add = self.add
        for item in seq:
            add(item)
        self.parts.append("]")

    def _dict(self, d) -> None:
        self.parts.append(f"dict[{len(d)}")
        for k, v in d.items():
            self.add(k)
            self.add(v)
        self.parts.append("]")

    def _slice(self, s) -> None:
        self.add(("slice", s.start, s.stop, s.step))

    def _array(self, a) -> None:
        self.parts.append(f"a{a.dtype.str}{a.shape}")
        if a.dtype.hasobject:
            self._sequence(list(a.flat))
        else:
            self.parts.append(hashlib.sha256(np.ascontiguousarray(a).data).hexdigest())

    def _scalar(self, x) -> None:
        self.parts.append(f"n{type(x).__name__}:{x!r}")

    def _random_state(self, rng) -> None:
        self.add(("RandomState", rng.get_state()))

    def _generator(self, rng) -> None:
        self.add(("Generator", rng.bit_generator.state))

    # --- the build

    def network(self, network, model) -> None:
        """Each object's kind and label in network order (the module's
        names), and which function belongs to which Node or Connection."""
        for obj in [network, *network.all_networks, *network.all_objects]:
            self._remember(obj)
            self.add(type(obj))
            self.add(obj.label)
            if isinstance(obj, nengo.Node):
                self.add(obj.output)
                self.add(model.sig.get(obj, {}).get("out"))
            elif isinstance(obj, nengo.Connection):
                self.add(obj.function)

    def _signal(self, sig) -> None:
        value, name = sig._initial_value, sig._name  # what Signal's properties derive from
        if not isinstance(value, np.ndarray):  # a sparse matrix
            self.parts.append("sparse signal")
            self.add((name, sig.readonly))
            self._object(value)
            return
        self.parts.append(
            f"signal:{value.dtype.str}{value.shape}{value.strides}:{sig._offset}:"
            f"{sig._readonly}:" + (self.text(name) if isinstance(name, str) else repr(name))
        )
        base = sig._base
        if base is None:
            self._array(value)
        else:
            position = self.memo.get(id(base))
            if position is None:
                self.add(base)
            else:
                self.parts.append(f"@{position}")

    def _operator(self, op) -> None:
        self.add(type(op))
        parts, add, memo, text = self.parts, self.add, self.memo, self.text
        for name, value in vars(op).items():  # in the order the class sets them
            parts.append(name)
            if type(value) is list:  # its signals: _sets, _incs, _reads, _updates
                parts.append(f"[{len(value)}")
                for item in value:
                    position = memo.get(id(item))  # most were met before
                    if position is None:
                        add(item)
                    else:
                        parts.append(f"@{position}")
            elif type(value) is str:
                parts.append("s" + text(value))
            else:
                add(value)

    def _object(self, obj) -> None:
        """A plain object: its class, its Nengo parameters, its attributes."""
        t = type(obj)
        self.add(t)
        params = _param_names(t)  # type: ignore[arg-type]
        if params:
            self._dict({name: getattr(obj, name) for name in params})
        state = getattr(obj, "__dict__", None)
        slots = [s for c in t.__mro__ for s in getattr(c, "__slots__", ())]
        if state is None and not slots:
            raise Uncacheable(f"cannot key an object of type {t.__module__}.{t.__qualname__}")
        if state is not None:
            self._dict({k: v for k, v in sorted(state.items()) if k not in _SKIPPED})
        for name in sorted(set(slots) - {"__dict__", "__weakref__"}):
            self.add((name, getattr(obj, name, "<unset>")))

    # --- code

    def _class(self, cls) -> None:
        module = getattr(cls, "__module__", "") or ""
        self.parts.append(f"class:{module}.{cls.__qualname__}")
        known = _known(module, cls.__qualname__)
        if known is not None:
            self.parts.append(known)
            return
        file = getattr(sys.modules.get(module), "__file__", None)
        if file and os.path.isfile(file):
            self.parts.append(_file_digest(file))
            for base in cls.__mro__[1:]:
                self.add(base)
            return
        # defined where no file holds it (a notebook, exec): its members
        for base in cls.__mro__[1:]:
            self.add(base)
        self._dict(
            {k: v for k, v in sorted(vars(cls).items()) if k not in ("__dict__", "__weakref__")}
        )

    def _builtin(self, fn) -> None:
        module = getattr(fn, "__module__", None) or ""
        self.parts.append(f"builtin:{module}.{getattr(fn, '__qualname__', fn.__name__)}")
        owner = getattr(fn, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType):
            self.add(owner)  # a bound method of a built-in type (rng.normal)
        else:
            self.parts.append(_package_version(module.split(".")[0]) or "?")

    def _module(self, module) -> None:
        name = module.__name__
        self.parts.append(f"module:{name}")
        known = _package_version(name.split(".")[0])
        if known is not None:
            self.parts.append(known)
            return
        file = getattr(module, "__file__", None)
        if not file or not os.path.isfile(file):
            raise Uncacheable(f"cannot key module {name!r}: no file holds it")
        self.parts.append(_file_digest(file))
        # what a function reads from it (mod.helper): by value
        for attr in sorted(self.names):
            if attr in vars(module):
                self.add((attr, vars(module)[attr]))

    def _partial(self, p) -> None:
        self.add(("partial", p.func, p.args, p.keywords))

    def _method(self, m) -> None:
        self.add(("method", m.__func__, m.__self__))

    def _function(self, fn) -> None:
        module = fn.__module__ or ""
        self.parts.append(f"function:{module}.{fn.__qualname__}")
        known = _known(module, fn.__qualname__)
        if known is not None:
            self.parts.append(known)
            return
        code = fn.__code__
        names = frozenset(_names(code))
        outer, self.names = self.names, names
        try:
            self.add(code)
            try:
                self.add(inspect.getsource(fn))
            except (OSError, TypeError):
                self.add("<no source>")
            self.add((fn.__defaults__, fn.__kwdefaults__))
            cells = []
            for cell in fn.__closure__ or ():
                try:
                    cells.append(cell.cell_contents)
                except ValueError:  # an empty cell
                    cells.append("<empty cell>")
            self.add(cells)
            scope = fn.__globals__
            self.add([(name, scope[name]) for name in sorted(names) if name in scope])
        finally:
            self.names = outer

    def _code(self, code) -> None:
        qualname = getattr(code, "co_qualname", code.co_name)
        self.parts.append(f"code:{qualname}:{Path(code.co_filename).name}:{code.co_firstlineno}")
        self.parts.append(code.co_code.hex())
        self.add((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars))
        self.add((code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags))
        self.add(code.co_consts)


#: attributes of Nengo's objects that cache what they show, not what they are
_SKIPPED = {"_paramdict", "_FrozenObject__argreprs"}


def _known(module: str, qualname: str) -> str | None:
    """The version that keys a module-level class or function of a package
    keyed by name; None for the rest (their code is keyed). A function or
    class made inside a function (``<locals>``, lambdas) is always keyed by
    its code: one name can hold many."""
    if "<" in qualname:
        return None
    return _package_version(module.split(".")[0])


@functools.cache
def _param_names(cls) -> tuple:
    """The names of a class's Nengo parameters (kept in the class, not the object)."""
    return tuple(sorted(iter_params(cls)))


def _names(code) -> set:
    """The global and attribute names a code object (and the code nested in it) reads."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names
