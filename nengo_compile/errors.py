"""Errors raised by nengo-compile.

Every error a user can cause is a `CompileError`: the command-line tool prints
its message on one line and exits with status 2, without a traceback.
"""

from __future__ import annotations


class CompileError(Exception):
    """A problem with the user's input that stops compilation."""


class LoadError(CompileError):
    """The model file could not be loaded, or holds no usable network."""


class UnsupportedError(CompileError):
    """The model uses operators or neuron types that cannot be compiled yet.

    Parameters
    ----------
    items : list of str
        One line per unsupported thing, each naming the object it came from.
    """

    def __init__(self, items: list[str]):
        self.items = list(items)
        lines = "\n".join(f"  - {item}" for item in self.items)
        super().__init__(f"the model uses {len(self.items)} unsupported feature(s):\n{lines}")
