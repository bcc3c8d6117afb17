"""Learning: matrices that change while the model runs, and the rules that
change them (Nengo's ``SimPES``, ``SimBCM``, ``SimOja``, ``SimVoja``, ``SimRLS``).

A learned matrix (connection weights or decoders, or an ensemble's encoders
under Voja) is a mutable signal like any other: the planner lays out its
elements in the state blocks, in Nengo's row-major order, and each batch row
learns on its own. Nengo builds every rule the same way: the rule's operator
*updates* a ``delta`` signal, shaped like the matrix, from this step's filtered
activities; a ``Copy(delta, matrix, inc=True)`` adds it to the matrix on the
next step; a ``DotInc`` reads the matrix. Copies and filters are ordinary op
kinds; this module adds:

* ``learned_matmul``: ``DotInc`` whose ``A`` some operator writes,
  ``Y += A @ X`` as a batched matrix-vector product;
* one kind per rule, with the rule's arithmetic written in Nengo's order of
  operations (so float64 results agree to rounding);
* `fold_rule_copies`, run by the analysis: where nothing but the Copy reads
  the delta and no probe reads it, the rule only saves its (vector) operands,
  and the Copy's place computes the delta from them and adds it to the matrix
  (`AppliedRule`): every value anyone sees is Nengo's, and the delta, a
  matrix-sized signal, is neither stored nor copied.

Operators of one kind merge when their signals have equal shapes: a group of
``k`` operators reads each role as ``[batch, k, *shape]``. Per-operator
constants (learning rates) become scalars when equal across the group, else
arrays shaped to broadcast over that layout.
"""

from __future__ import annotations

import numpy as np
from nengo.builder.learning_rules import SimBCM, SimOja, SimPES, SimRLS, SimVoja
from nengo.builder.operator import BsrDotInc, Copy, DotInc, Operator, SparseDotInc
from nengo.builder.signal import Signal

from ..analyse import merge_key
from . import ir
from .kinds import KINDS, AccessRequest, OpKind, register, seg

#: the key of DotInc with a constant matrix (analyse.py); we wrap it below
_constant_matrix_key = merge_key.dispatch(DotInc)


def _const(sig, ctx) -> bool:
    return sig.base not in ctx.written


def _tag(op) -> str:
    return op.tag or str(op)


@merge_key.register(DotInc)
def dot_inc_key(op, ctx) -> tuple:
    """DotInc: a constant matrix merges into one matmul (`MatMulKind`); a
    learned one is a `LearnedMatMulKind`, merged with others of its shape."""
    if _const(op.A, ctx):
        return _constant_matrix_key(op, ctx)
    if isinstance(op, (SparseDotInc, BsrDotInc)):
        raise NotImplementedError(f"sparse DotInc with a learned matrix ({_tag(op)})")
    if op.A.ndim != 2:
        raise NotImplementedError(f"DotInc with a learned {op.A.ndim}-D matrix ({_tag(op)})")
    return KINDS[LearnedMatMulKind.name].key(op, ctx)


class AppliedRule(Operator):
    """A learning rule computed where Nengo's ``Copy(delta, matrix, inc=True)``
    runs (at the start of the step after the rule's), from the rule's operands
    as the rule saw them (``operands``: the rule's attribute -> a snapshot
    signal, or the matrix itself, which nothing changes in between): it adds
    the delta to the matrix, ``target``, without storing it."""

    def __init__(self, rule, copy, operands):
        super().__init__(tag=rule.tag)
        self.rule = rule
        self.target = copy.dst
        self.operands = operands
        self.sets = []
        self.incs = [copy.dst]
        # its own reads of the matrix (Oja, Voja) are not dependencies: the
        # increment already orders it before every other read
        self.reads = [sig for sig in operands.values() if sig.base is not copy.dst.base]
        self.updates = []

    @property
    def _descstr(self):
        return f"{self.rule._descstr}, added to {self.target}"


class Snapshot(Copy):
    """``dst = src`` as an update: it runs after every read of ``dst`` (which
    keeps a learning rule's operand for `AppliedRule` in the next step)."""

    def __init__(self, src, dst, tag=None):
        super().__init__(src, dst, tag=tag)
        self.sets, self.updates = [], [dst]

    @property
    def dst(self):
        return self.updates[0]


def _snapshot(rule, sig, attr) -> Snapshot:
    saved = Signal(shape=sig.shape, name=f"{sig.name} (for {type(rule).__name__}, next step)")
    return Snapshot(sig, saved, tag=f"{type(rule).__name__} keeps {attr} for the next step")


def fold_rule_copies(operators, keep=()) -> list:
    """Defer each learning rule to the Copy that adds its delta to the matrix.

    Nengo's rule computes a delta, a matrix-sized signal kept until the next
    step's Copy adds it to the matrix. Where nothing else reads the delta and
    no probe reads it (``keep``), the rule instead saves its operands (vectors:
    filtered activities, errors; the matrix itself is unchanged until then),
    and an `AppliedRule` at the Copy's place computes the delta from them and
    adds it: every value anyone sees is Nengo's, and the delta is never stored.
    RLS changes its own state as it computes, so it keeps Nengo's form.
    """
    if not any(type(op) in RULES for op in operators):
        return operators
    kept = {sig.base for sig in keep}
    readers, writers = {}, {}
    for op in operators:
        for sig in op.reads + op.incs:  # an increment reads the old value
            readers.setdefault(sig.base, []).append(op)
        for sig in op.sets + op.incs + op.updates:
            writers.setdefault(sig.base, []).append(op)
    replaced = {}
    for op in operators:
        kind = RULES.get(type(op))
        if kind is None or kind.state:
            continue
        delta = op.delta
        copy, *others = readers.get(delta.base, [None])
        if (
            others
            or not isinstance(copy, Copy)
            or not copy.inc
            or copy.src is not delta
            or copy.src_slice is not None
            or copy.dst_slice is not None
            or copy.dst.shape != delta.shape
            or writers[delta.base] != [op]
            or delta.base in kept
            or any(sig.base is copy.dst.base for sig in op.updates)
        ):
            continue
        operands, snapshots = {}, []
        for _, attr in kind.operands:
            sig = getattr(op, attr)
            if sig.base is copy.dst.base:
                operands[attr] = sig
            else:
                snapshots.append(_snapshot(op, sig, attr))
                operands[attr] = snapshots[-1].dst
        replaced[op] = snapshots
        replaced[copy] = [AppliedRule(op, copy, operands)]
    return [new for op in operators for new in replaced.get(op, [op])]


class BatchedKind(OpKind):
    """An op kind whose group of ``k`` operators (with equal signal shapes)
    reads and writes each role as ``[batch, k, *shape]``.

    ``operands`` are ``(role, attribute)`` pairs only read; ``state`` pairs
    are read and then written (role ``X`` read, ``X_new`` set); ``outputs``
    are ``(role, attribute, mode)`` triples only written. Every role is a
    state access: Nengo's builder gives these operators no constant operand.
    """

    label = ""
    #: with the synapses, before copies: learned matrices and deltas get blocks
    #: of their own, read and written whole by the products, rules and copies
    rank = 2
    operands: tuple = ()
    state: tuple = ()
    outputs: tuple = ()

    def _signals(self, op) -> list:
        pairs = self.operands + self.state + tuple((r, a) for r, a, _ in self.outputs)
        if isinstance(op, AppliedRule):  # saved operands; the delta's shape is the matrix's
            return [
                (role, op.operands[attr] if role != "delta" else op.target) for role, attr in pairs
            ]
        return [(role, getattr(op, attr)) for role, attr in pairs]

    def key(self, op, ctx) -> tuple:
        """The merge key: the kind, whether the rule applies its delta itself
        (`AppliedRule`), and the shapes of the operator's signals."""
        applied = isinstance(op, AppliedRule)
        for role, sig in self._signals(op):
            if _const(sig, ctx):
                raise NotImplementedError(
                    f"{type(op).__name__} with a constant {role!r} signal ({_tag(op)})"
                )
        shapes = tuple(sig.shape for _, sig in self._signals(op))
        return (self.name, "merge", applied, shapes)

    def shape(self, role, sig) -> tuple:
        """The shape of one operator's part of a role."""
        return sig.shape

    def constants(self, op, dt) -> dict:
        """Per-operator constants: name -> array broadcasting over one operator."""
        return {}

    def accesses(self, ops, ctx):
        applied = isinstance(ops[0], AppliedRule)

        def segments(attr):
            if applied:
                return tuple(seg(op.operands[attr]) for op in ops)
            return tuple(seg(getattr(op, attr)) for op in ops)

        requests = [AccessRequest(role, "read", segments(attr)) for role, attr in self.operands]
        for role, attr in self.state:
            requests.append(AccessRequest(role, "read", segments(attr)))
            requests.append(AccessRequest(f"{role}_new", "set", segments(attr)))
        for role, attr, mode in self.outputs:
            if applied:  # the delta goes where the Copy would add it: the matrix
                requests.append(AccessRequest(role, "inc", tuple(seg(op.target) for op in ops)))
            else:
                requests.append(AccessRequest(role, mode, segments(attr)))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        k = len(ops)
        applied = isinstance(ops[0], AppliedRule)
        shapes = {role: (k, *self.shape(role, sig)) for role, sig in self._signals(ops[0])}
        reads = {role: acc[role].access for role, _ in self.operands + self.state}
        writes = {role: acc[f"{role}_new"].access for role, _ in self.state}
        writes.update({role: acc[role].access for role, _, _ in self.outputs})
        consts = {}
        per_op = [self.constants(op.rule if applied else op, ctx.dt) for op in ops]
        for name in per_op[0]:
            stacked = np.stack([np.asarray(c[name], dtype=np.float64) for c in per_op])
            consts[name] = params.const(f"{self.name}_{name}", stacked)
        out = self.outputs[0][0]
        return ir.Group(
            index,
            self.name,
            self.template,
            f"{self.label}{', applied to the matrix' if applied else ''} x{k} "
            f"({'x'.join(str(d) for d in shapes[out][1:])} each)",
            tuple(ctx.names(op) for op in ops),
            reads=reads,
            writes=writes,
            consts=consts,
            values={
                "shapes": shapes,
                "sizes": {role: int(np.prod(shape)) for role, shape in shapes.items()},
                "applied": applied,
            },
        )


@register
class LearnedMatMulKind(BatchedKind):
    """DotInc with a learned matrix: ``Y += A @ X``, one product per operator."""

    name = "learned_matmul"
    label = "DotInc, learned matrix"
    template = "learned_matmul.py.j2"
    operands = (("A", "A"), ("X", "X"))
    outputs = (("Y", "Y", "inc"),)

    def shape(self, role, sig):
        return sig.shape if role == "A" else (sig.size,)  # X and Y may be columns


@register
class PESKind(BatchedKind):
    """SimPES: ``delta = outer(alpha * error, pre)``, ``alpha = -rate * dt / n``."""

    name = "pes"
    label = "PES"
    template = "pes.py.j2"
    operands = (("pre", "pre_filtered"), ("error", "error"))
    outputs = (("delta", "delta", "update"),)

    def constants(self, op, dt):
        n_neurons = op.pre_filtered.shape[0]
        return {"alpha": [-op.learning_rate * dt / n_neurons]}


@register
class BCMKind(BatchedKind):
    """SimBCM: ``delta = outer(alpha * post * (post - theta), pre)``."""

    name = "bcm"
    label = "BCM"
    template = "bcm.py.j2"
    operands = (("pre", "pre_filtered"), ("post", "post_filtered"), ("theta", "theta"))
    outputs = (("delta", "delta", "update"),)

    def constants(self, op, dt):
        return {"alpha": [op.learning_rate * dt]}


@register
class OjaKind(BatchedKind):
    """SimOja: ``delta = -beta * W * (alpha * post**2)[:, None] + outer(alpha * post, pre)``."""

    name = "oja"
    label = "Oja"
    template = "oja.py.j2"
    operands = (
        ("pre", "pre_filtered"),
        ("post", "post_filtered"),
        ("weights", "weights"),
    )
    outputs = (("delta", "delta", "update"),)

    def constants(self, op, dt):
        return {"alpha": [op.learning_rate * dt], "neg_beta": [[-op.beta]]}


@register
class VojaKind(BatchedKind):
    """SimVoja: ``delta = alpha * learning * (scale * outer(post, pre) - post[:, None] * E)``."""

    name = "voja"
    label = "Voja"
    template = "voja.py.j2"
    operands = (
        ("pre", "pre_decoded"),
        ("post", "post_filtered"),
        ("encoders", "scaled_encoders"),
        ("learning", "learning_signal"),
    )
    outputs = (("delta", "delta", "update"),)

    def constants(self, op, dt):
        scale = np.asarray(op.scale, dtype=np.float64)
        return {"alpha": [op.learning_rate * dt], "scale": scale[:, None]}


@register
class RLSKind(BatchedKind):
    """SimRLS: recursive least squares on the inverse correlation matrix ``P``.

    ``Pr = P r; g = 1 / (1 + r.Pr); P -= outer(Pr, Pr * g); delta = outer(error, -g * Pr)``
    """

    name = "rls"
    label = "RLS"
    template = "rls.py.j2"
    operands = (("pre", "pre_filtered"), ("error", "error"))
    state = (("P", "inv_gamma"),)
    outputs = (("delta", "delta", "update"),)


#: learning-rule operator -> its op kind
RULES = {SimPES: PESKind, SimBCM: BCMKind, SimOja: OjaKind, SimVoja: VojaKind, SimRLS: RLSKind}


@merge_key.register(AppliedRule)
@merge_key.register(SimPES)
@merge_key.register(SimBCM)
@merge_key.register(SimOja)
@merge_key.register(SimVoja)
@merge_key.register(SimRLS)
def rule_key(op, ctx) -> tuple:
    rule = op.rule if isinstance(op, AppliedRule) else op
    kind = RULES.get(type(rule))  # exact type: a subclass may compute otherwise
    if kind is None:
        raise NotImplementedError(f"learning rule operator {type(op).__name__} ({_tag(op)})")
    return KINDS[kind.name].key(op, ctx)
