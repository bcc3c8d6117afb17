"""Op kinds: one home per kind of merged group, for every stage.

An op kind (a subclass of `base.OpKind`, one class per kind in a module of
this package) holds everything about its operators:

``key(op, ctx)``
    the merge key (asked by the analysis): operators with equal keys merge;
``accesses(ops, ctx)``
    which state elements each role of a group touches (asked by the planner);
``lower(index, ops, acc, params, ctx)``
    the `ir.Group` (asked by the lowering), whose ``template`` names the op
    template under ``templates/ops/`` and whose ``values`` is the kind's typed
    payload.

Kinds register by the operator type whose merge key they give, as Nengo's
``Builder.register`` does: ``@register(Copy)``. The lookup walks the
operator's MRO, so a registration covers subclasses (``DotInc`` covers
``SparseDotInc``); a kind that must refuse a subclass checks the exact type in
its key. The key's first element names the kind that plans and lowers the
group: usually the kind itself, sometimes another (a ``DotInc`` with a learned
matrix is a ``learned_matmul``; a ``SimNeurons`` without a template a
``neuron_stub``). ``SimProcess`` operators are keyed by the kind registered
for their *process* type (``@register(WhiteNoise)``), see `process_hook`.

Every module of this package is imported here (`pkgutil.iter_modules`), so a
new kind is a new module and its template: no list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import KINDS, SKIP, OpKind, lookup, register

__all__ = ["KINDS", "SKIP", "OpKind", "lookup", "merge_key", "register"]


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def merge_key(op, ctx) -> tuple:
    """A hashable key; operators with equal keys can be merged.

    The first element names the op kind (and so its lowering); the second is
    ``"single"`` for operators that never merge. An operator without a kind,
    or whose key raises `NotImplementedError`, is reported as unsupported.
    """
    found = lookup(op)
    if found is None:
        raise NotImplementedError(f"operator {type(op).__name__} ({op.tag or op})")
    return found.key(op, ctx)


_discover()
