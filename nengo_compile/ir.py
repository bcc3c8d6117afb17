"""The IR: the dataclasses that the stages hand each other.

Every stage may import this module; it imports nothing of the package. Two
parts:

* the lowered program (`Program`, `Group`, `Access`, `Piece`, `Const`, ...):
  plain data, no Nengo objects; the renderer reads only these classes. Every
  number a template places has been computed in Python (in the plan or by the
  op kind): slice bounds, parameter names, constants;
* what the planner and the op kinds exchange (`AccessRequest`, `Resolved`,
  `KeyContext`, `LowerContext`): these may hold Nengo signals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

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

    @property
    def one_block(self) -> bool:
        """The piece lies in one block (a gather may read several)."""
        return len(self.blocks) == 1

    @property
    def repeated(self) -> bool:
        """A read of the same elements several times side by side."""
        return self.repeat > 1


@dataclass(frozen=True)
class Access:
    """How one role of a merged group reads or writes the state."""

    mode: str  # "read", "set", "inc" or "update"
    pieces: tuple
    size: int

    @property
    def single(self) -> bool:
        return len(self.pieces) == 1

    @property
    def op(self) -> str:
        """How a write stores its value: ``"inc"`` (adds) or ``"set"``."""
        return "inc" if self.mode == "inc" else "set"

    @property
    def whole_values(self) -> tuple:
        """Per piece: True where the piece takes the whole computed value."""
        return tuple(p.value_ranges == ((0, self.size),) for p in self.pieces)


@dataclass(frozen=True)
class Const:
    """A constant operand: an inline scalar or a named parameter array."""

    value: float | None = None
    param: str | None = None

    @property
    def is_scalar(self) -> bool:
        return self.param is None


class Payload:
    """Base of the typed payloads of lowered groups: one frozen dataclass per
    op kind (and form), holding what its template places besides the
    accesses and constants, every value ready to place.

    A payload also reads as a mapping of its fields and class constants
    (``values["form"]``, ``values.get("buckets", ())``; a field that is None
    is absent), for tools and tests that inspect groups.
    """

    def __getitem__(self, name: str):
        if name not in self:
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and hasattr(self, name) and getattr(self, name) is not None

    def get(self, name: str, default=None):
        return self[name] if name in self else default

    def keys(self) -> list:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]  # type: ignore[arg-type]


@dataclass(frozen=True)
class Empty(Payload):
    """The payload of a kind whose template needs only accesses and constants."""


@dataclass(frozen=True)
class Group:
    """One merged group of operators, lowered.

    ``template`` names the op template under ``templates/ops/``; ``reads`` and
    ``writes`` map its roles to accesses; ``consts`` its constant operands;
    ``values`` the kind's typed payload (a `Payload`: everything else the
    template places, computed in Python). ``random`` and ``no_xla`` say
    whether the group draws random numbers (not portable to TFLite or ONNX)
    and whether it has an operation without an XLA kernel: set by its kind.
    """

    index: int
    kind: str
    template: str
    title: str
    sources: tuple  # one description per original operator
    reads: Mapping = field(default_factory=dict)
    writes: Mapping = field(default_factory=dict)
    consts: Mapping = field(default_factory=dict)
    values: Payload = field(default_factory=Empty)
    random: bool = False
    no_xla: bool = False
    #: state blocks the group's arithmetic writes whole in a shape of their own,
    #: block -> shape per batch element: the run loop carries them so (`Block.shape`)
    carry: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Block:
    """A contiguous state tensor, shaped ``[batch, size]``; ``shape``, if any:
    the run loop carries it as ``[batch, *shape]`` (a learned matrix, whose
    update XLA then emits as a loop over rows, vectorised, not over the flat
    block with index arithmetic per element)."""

    name: str
    size: int
    initial: str  # parameter holding the initial value (shape [size]); "" if transient
    contents: tuple  # short descriptions of the signals laid out in it
    #: written before it is read in every step: recomputed, not kept in the state
    transient: bool = False
    shape: tuple = ()


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
    owner: object = field(default=None, compare=False, repr=False)  # its Node or Connection


@dataclass(frozen=True)
class NeuronStub:
    """A neuron type without a template, run in NumPy (see `kinds.neuron_stubs`).

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
class TrainSource:
    """A Nengo object's trainable parameter (`nengo_compile.trainable`)."""

    key: str  # where the object is in its network: "ensembles[0]", "connections[3]"
    role: str  # "encoders", "bias" or "weights"
    label: str  # the object, for messages
    shape: tuple  # the parameter's shape in Nengo


@dataclass(frozen=True)
class Trainable:
    """A trainable variable: the values of ``parts`` (`TrainSource`, at their
    ``offsets`` in it, flattened in C order) added, at the flat positions
    ``positions`` (a parameter), to the parameter ``param``, which holds zero
    there: ``param.flat[positions] += variable`` (summed where positions
    repeat), before a run."""

    variable: str
    param: str
    positions: str
    parts: tuple  # TrainSource
    offsets: tuple  # int, per part


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
    trainable: tuple = ()  # Trainable: the variables a training updates


# ---- what the planner and the op kinds exchange ------------------------------


@dataclass(frozen=True)
class AccessRequest:
    """One role of a group: the state elements each operator touches.

    ``per_op[i]`` is a tuple of ``(base_signal, flat_indices)`` segments for
    the i-th operator. If ``order_free``, the lowering can take the elements in
    any order (the planner sorts them by position and removes duplicates).
    """

    role: str
    mode: str  # "read", "set", "inc" or "update"
    per_op: tuple
    order_free: bool = False


@dataclass(frozen=True)
class Resolved:
    """The planner's answer for one role: the access, and where each
    operator's elements sit in the accessed value."""

    access: Access
    op_positions: tuple  # per op: np.ndarray of positions in the value


@dataclass(frozen=True)
class KeyContext:
    """What merge keys may depend on besides the operator itself."""

    written: frozenset
    dt: float


@dataclass(frozen=True)
class LowerContext:
    """What op kinds may consult to plan and lower a group."""

    dt: float
    dtype: str
    is_const: Callable  # Signal -> bool
    names: Callable | None = None  # op -> short description
    hooks: Mapping | None = None  # SimPyFunc op -> Hook
    check_finite: bool = False  # translated functions check their output is finite
    translation: Any = None  # nengo_compile.translate.Translation (None: no translation)
    simulator_rngs: Any = None  # kinds.process.SimulatorRngs: what nengo.Simulator draws
    #: trainable parameter signals -> ir.TrainSource (`nengo_compile.trainable`);
    #: None: a module that does not train
    train_sources: Mapping | None = None
    #: the SoftLIFRate sigma that LIF neurons train with (0 or None: LIFRate)
    lif_smoothing: float | None = 0.05
