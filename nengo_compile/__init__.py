"""nengo-compile: an ahead-of-time compiler from Nengo models to TensorFlow.

Importing it imports neither TensorFlow nor Nengo: the compiler (with Nengo,
NumPy, Jinja2 and networkx) loads on first use of `compile_network`,
`compile_file`, `Compiled`, `configure_trainable` or `freeze`, and
`Simulator` (and the exports) import TensorFlow when first used; so
``nengo-compile --help`` answers at once.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import CompileError, LoadError, UnsupportedError  # noqa: E402

#: public name -> the module that defines it, imported on first use
_LAZY = {
    "Compiled": "pipeline",
    "compile_file": "pipeline",
    "compile_network": "pipeline",
    "configure_trainable": "trainable",
    "freeze": "freezing",
    "Simulator": "simulator",  # imports TensorFlow
}

__all__ = [
    "CompileError",
    "Compiled",
    "LoadError",
    "Simulator",
    "UnsupportedError",
    "compile_file",
    "compile_network",
    "configure_trainable",
    "freeze",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))
