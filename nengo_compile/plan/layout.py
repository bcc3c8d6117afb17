"""A state block's layout: which elements of which signals it holds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BlockLayout:
    name: str
    segments: tuple  # (base, flat indices) in block order
    size: int
    #: every element is written before it is read in each step: the block is
    #: recomputed every step and not kept in the state between steps
    transient: bool = False

    def __reduce__(self):
        """Pickled (by the compile cache) with all its indices in one array:
        thousands of small arrays pickle and load 30x slower."""
        indices = [np.asarray(idx) for _, idx in self.segments] or [np.zeros(0, np.int64)]
        bases, lengths = tuple(b for b, _ in self.segments), [len(i) for i in indices]
        return _layout, (
            self.name,
            bases,
            np.concatenate(indices),
            lengths,
            self.size,
            self.transient,
        )


def _layout(name, bases, flat, lengths, size, transient) -> BlockLayout:
    pieces = np.split(flat, np.cumsum(lengths)[:-1])
    return BlockLayout(name, tuple(zip(bases, pieces)), size, transient)
