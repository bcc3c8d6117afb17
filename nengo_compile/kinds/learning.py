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
* the rules' operands, for the rewrite stage (`nengo_compile.rewrite`,
  `fold_rule_copies`): where nothing but the Copy reads
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

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from nengo.builder.learning_rules import SimBCM, SimOja, SimPES, SimRLS, SimVoja

from .. import ir
from ..ir import AccessRequest
from ..operators import AppliedRule
from .base import KINDS, OpKind, is_const, register, seg, tag


@dataclass(frozen=True)
class Batched(ir.Payload):
    """Per role: its shape as a group holds it (``"[batch, k, *shape]"``) and
    its size per batch row; ``applied``: the rule adds its delta to the
    matrix itself (`AppliedRule`); ``carried``: the roles whose write adds to
    one whole block, in the role's shape (the run loop carries the block so:
    `ir.Group.carry`)."""

    shapes: Mapping
    sizes: Mapping
    applied: bool
    carried: tuple = ()


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
    #: the learning-rule operator it computes, by exact type (None: not a rule)
    rule_type = None

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
        rule = op.rule if applied else op
        if self.rule_type is not None and type(rule) is not self.rule_type:
            # an operator subclass may compute otherwise: refused by name
            raise NotImplementedError(f"learning rule operator {type(op).__name__} ({tag(op)})")
        for role, sig in self._signals(op):
            if is_const(sig, ctx):
                raise NotImplementedError(
                    f"{type(op).__name__} with a constant {role!r} signal ({tag(op)})"
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
        # an applied delta added to the whole matrix block: added in the matrix's
        # shape, which the run loop carries; XLA's CPU loop over the flat block
        # is scalar, with index arithmetic per element, over [k, m, n] it is
        # vectorised (the PES benchmark's 32x2048 update alone, float32: about
        # 40 -> 10 us per step; its module: 274 -> 174 us)
        write = writes[out]
        whole = applied and write.single and write.whole_values[0]
        whole = whole and write.pieces[0].kind == ir.WHOLE and write.mode == "inc"
        carry = {write.pieces[0].block: shapes[out]} if whole else {}
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
            values=Batched(
                shapes={role: f"[batch, {', '.join(map(str, s))}]" for role, s in shapes.items()},
                sizes={role: int(np.prod(shape)) for role, shape in shapes.items()},
                applied=applied,
                carried=(out,) if whole else (),
            ),
            carry=carry,
        )


@register()  # keyed by `matmul.MatMulKind`, the kind of every DotInc
class LearnedMatMulKind(BatchedKind):
    """DotInc with a learned matrix: ``Y += A @ X``, one product per operator."""

    name = "learned_matmul"
    label = "DotInc, learned matrix"
    template = "learned_matmul.py.j2"
    operands = (("A", "A"), ("X", "X"))
    outputs = (("Y", "Y", "inc"),)

    def shape(self, role, sig):
        return sig.shape if role == "A" else (sig.size,)  # X and Y may be columns


@register(SimPES)
class PESKind(BatchedKind):
    """SimPES: ``delta = outer(alpha * error, pre)``, ``alpha = -rate * dt / n``."""

    name = "pes"
    label = "PES"
    rule_type = SimPES
    template = "pes.py.j2"
    operands = (("pre", "pre_filtered"), ("error", "error"))
    outputs = (("delta", "delta", "update"),)

    def constants(self, op, dt):
        n_neurons = op.pre_filtered.shape[0]
        return {"alpha": [-op.learning_rate * dt / n_neurons]}


@register(SimBCM)
class BCMKind(BatchedKind):
    """SimBCM: ``delta = outer(alpha * post * (post - theta), pre)``."""

    name = "bcm"
    label = "BCM"
    rule_type = SimBCM
    template = "bcm.py.j2"
    operands = (("pre", "pre_filtered"), ("post", "post_filtered"), ("theta", "theta"))
    outputs = (("delta", "delta", "update"),)

    def constants(self, op, dt):
        return {"alpha": [op.learning_rate * dt]}


@register(SimOja)
class OjaKind(BatchedKind):
    """SimOja: ``delta = -beta * W * (alpha * post**2)[:, None] + outer(alpha * post, pre)``."""

    name = "oja"
    label = "Oja"
    rule_type = SimOja
    template = "oja.py.j2"
    operands = (
        ("pre", "pre_filtered"),
        ("post", "post_filtered"),
        ("weights", "weights"),
    )
    outputs = (("delta", "delta", "update"),)

    def constants(self, op, dt):
        return {"alpha": [op.learning_rate * dt], "neg_beta": [[-op.beta]]}


@register(SimVoja)
class VojaKind(BatchedKind):
    """SimVoja: ``delta = alpha * learning * (scale * outer(post, pre) - post[:, None] * E)``."""

    name = "voja"
    label = "Voja"
    rule_type = SimVoja
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


@register(SimRLS)
class RLSKind(BatchedKind):
    """SimRLS: recursive least squares on the inverse correlation matrix ``P``.

    ``Pr = P r; g = 1 / (1 + r.Pr); P -= outer(Pr, Pr * g); delta = outer(error, -g * Pr)``
    """

    name = "rls"
    label = "RLS"
    rule_type = SimRLS
    template = "rls.py.j2"
    operands = (("pre", "pre_filtered"), ("error", "error"))
    state = (("P", "inv_gamma"),)
    outputs = (("delta", "delta", "update"),)


#: learning-rule operator -> its op kind (exact types)
RULES = {SimPES: PESKind, SimBCM: BCMKind, SimOja: OjaKind, SimVoja: VojaKind, SimRLS: RLSKind}


@register(AppliedRule)
class AppliedRuleKey(OpKind):
    """The key of an `AppliedRule`: its rule's kind's, applied (no kind of its own)."""

    def key(self, op, ctx):
        return KINDS[RULES[type(op.rule)].name].key(op, ctx)
