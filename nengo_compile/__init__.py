"""nengo-compile: an ahead-of-time compiler from Nengo models to TensorFlow."""

__version__ = "0.1.0"

from .errors import CompileError, LoadError, UnsupportedError  # noqa: E402
from .pipeline import Compiled, compile_file, compile_network  # noqa: E402
from .simulator import Simulator  # noqa: E402

__all__ = [
    "CompileError",
    "Compiled",
    "LoadError",
    "Simulator",
    "UnsupportedError",
    "compile_file",
    "compile_network",
]
