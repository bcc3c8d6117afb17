"""nengo-compile: an ahead-of-time compiler from Nengo models to TensorFlow.

Importing it does not import TensorFlow: compiling needs only Nengo, NumPy,
Jinja2 and networkx. `Simulator` (and the exports) import TensorFlow when
first used.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import CompileError, LoadError, UnsupportedError  # noqa: E402
from .pipeline import Compiled, compile_file, compile_network  # noqa: E402

__all__ = [
    "CompileError",
    "Compiled",
    "LoadError",
    "Simulator",
    "UnsupportedError",
    "compile_file",
    "compile_network",
]


def __getattr__(name: str):
    # the Simulator runs compiled modules: it imports TensorFlow, so only on use
    if name == "Simulator":
        from .simulator import Simulator

        return Simulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
