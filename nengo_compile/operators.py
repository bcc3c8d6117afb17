"""Operators that nengo-compile adds to Nengo's: made by the rewrite stage
(`nengo_compile.rewrite`), keyed and lowered by the learning kinds
(`nengo_compile.kinds.learning`)."""

from __future__ import annotations

from nengo.builder.operator import Copy, Operator


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
