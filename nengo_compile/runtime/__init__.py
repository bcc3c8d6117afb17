"""The runtime of every generated module, as real Python.

What every compiled model shares (``CompiledModel``: ``run``, ``step``, the
batch parts, the checks of inputs and states, the exports, and the block
helpers that a model's ``_step`` calls) lives here, where linters, type
checkers and unit tests reach it. A generated module holds only its tables and
``class Model(CompiledModel)`` with its ``_step``; by default the renderer
pastes these files into it verbatim, under a banner, so that the module runs
with TensorFlow and NumPy alone (``runtime="import"`` imports them instead).

Importing this package does not import TensorFlow; its modules do.
"""

from __future__ import annotations

#: the runtime's modules, in the order they are pasted into a generated module
#: (each may use the names of those before it)
FILES = (
    "ops.py",
    "checks.py",
    "export.py",
    "training.py",
    "distribute.py",
    "graphs.py",
    "model.py",
)


def __getattr__(name: str):
    if name == "CompiledModel":
        from .model import CompiledModel

        return CompiledModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
