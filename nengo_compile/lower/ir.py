"""The lowered intermediate representation: plain data, no Nengo objects.

The renderer reads only these classes. Every number a template places has been
computed here (or in the plan): slice bounds, parameter names, constants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: How a read or write touches one state block.
WHOLE, SLICE, GATHER = "whole", "slice", "gather"


@dataclass(frozen=True)
class Piece:
    """The part of an access that lies in one state block (or, for a gather
    read, in the concatenation of several blocks).

    For reads, pieces are concatenated in order along the last axis. For
    writes, ``value`` selects the part of the computed value that goes to this
    block: the sum of ``(lo, hi)`` ranges (more than one where several sources
    increment the same elements), or the name of an index parameter.
    """

    blocks: tuple  # block names; more than one only for a multi-block gather
    kind: str  # WHOLE, SLICE or GATHER
    start: int = 0  # SLICE: block[:, start:stop]
    stop: int = 0
    index: str | None = None  # GATHER: parameter holding block positions
    value_ranges: tuple = ()  # writes: value[:, lo:hi] + ... (one range or several)
    value_index: str | None = None  # writes: tf.gather(value, index, axis=1)
    repeat: int = 1  # reads: the WHOLE or SLICE this many times side by side

    @property
    def block(self) -> str:
        return self.blocks[0]


@dataclass(frozen=True)
class Access:
    """How one role of a merged group reads or writes the state."""

    mode: str  # "read", "set", "inc" or "update"
    pieces: tuple
    size: int

    @property
    def single(self) -> bool:
        return len(self.pieces) == 1


@dataclass(frozen=True)
class Const:
    """A constant operand: an inline scalar or a named parameter array."""

    value: float | None = None
    param: str | None = None

    @property
    def is_scalar(self) -> bool:
        return self.param is None


@dataclass(frozen=True)
class Group:
    """One merged group of operators, lowered.

    ``template`` names the op template under ``templates/ops/``; ``reads`` and
    ``writes`` map its roles to accesses; ``consts`` its constant operands;
    ``values`` anything else the template places (all computed in Python).
    """

    index: int
    kind: str
    template: str
    title: str
    sources: tuple  # one description per original operator
    reads: Mapping = field(default_factory=dict)
    writes: Mapping = field(default_factory=dict)
    consts: Mapping = field(default_factory=dict)
    values: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Block:
    """A contiguous state tensor, shaped ``[batch, size]``."""

    name: str
    size: int
    initial: str  # parameter holding the initial value (shape [size]); "" if transient
    contents: tuple  # short descriptions of the signals laid out in it
    #: written before it is read in every step: recomputed, not kept in the state
    transient: bool = False


@dataclass(frozen=True)
class Probe:
    name: str
    label: str
    target: str
    read: Access | Const
    shape: tuple
    period: float | None  # sample every `period` steps (None: every step)


@dataclass(frozen=True)
class Hook:
    """A Python callable left in the model (a Node or connection function)."""

    name: str
    label: str
    source: str  # where it was defined, for messages
    index: int  # group index that calls it
    size_in: int
    size_out: int
    takes_t: bool
    is_input: bool  # no input signal and an output: can be fed via `inputs`
    reason: str = ""  # why it was not translated to TensorFlow
    translated: bool = False  # runs as TensorFlow; as an input, feeding it is optional


@dataclass(frozen=True)
class NeuronStub:
    """A neuron type without a template, run in NumPy (see `lower.neuron_stubs`).

    ``body`` holds the lines of its ``step`` method rebuilt from the syntax
    tree (parameters as constants), or is empty when the step is not
    self-contained (``reason`` says why) and the user must supply it.
    """

    name: str  # the stub function in the module
    type_name: str
    source: str  # where the type was defined, for messages
    state: tuple  # Nengo state names, in call order
    signature: str  # the stub's parameters
    body: tuple  # lines of code; empty: raise NotImplementedError
    reason: str = ""

    @property
    def message(self) -> str:
        """Why the stub needs an implementation from the user, and how to give one."""
        return (
            f"neuron type {self.type_name!r} ({self.source}) has no template and its step "
            f"could not be copied into this module ({self.reason}): pass "
            f"Model(neuron_steps={{{self.type_name!r}: step}}), where step(dt, J, output, "
            "**state) works like NeuronType.step"
        )


@dataclass(frozen=True)
class Program:
    """Everything the renderer needs to write a module."""

    label: str
    dt: float
    seed: int
    dtype: str
    blocks: tuple
    groups: tuple
    probes: tuple
    hooks: tuple
    params: Mapping  # name -> np.ndarray (already in its final dtype)
    header: Mapping  # provenance lines for the module header
    stubs: tuple = ()  # NeuronStub, one per distinct stub function
