"""Stage, rewrite (between build and analyse): changes to Nengo's operators.

Learning rules at their Copy (`fold_rule_copies`): Nengo builds every rule
as an operator that *updates* a matrix-sized ``delta`` from this step's
filtered activities and a ``Copy(delta, matrix, inc=True)`` that adds it on
the next step. Where nothing but that Copy reads the delta, the rule instead
saves its (vector) operands (`Snapshot`), and the Copy's place computes the
delta from them and adds it (`AppliedRule`): every value anyone sees is
Nengo's, and the delta is neither stored nor copied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nengo.builder.operator import Copy
from nengo.builder.signal import Signal

from .kinds.learning import RULES
from .operators import AppliedRule, Snapshot


@dataclass(frozen=True)
class Rewritten:
    """The operators to analyse, and how many Nengo built."""

    operators: tuple
    n_built: int


def rewrite(operators: Iterable, keep: Iterable = ()) -> Rewritten:
    """Rewrite Nengo's operators (see the module docstring).

    ``keep`` holds the signals whose value after each step must be Nengo's
    (the probed ones): rewrites that change when a value is written leave
    them alone.
    """
    operators = list(operators)
    return Rewritten(tuple(fold_rule_copies(operators, keep)), len(operators))


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
