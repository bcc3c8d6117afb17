"""Stage 3, analyse: the operator dependency graph and merge groups.

The graph's edges follow Nengo's own scheduling rules (see
`nengo.utils.simulator.operator_dependency_graph`): for every memory block,
all sets come before all increments, which come before all reads, which come
before all updates. We make the same edges (and check that we do), so that
our order is valid exactly when Nengo's is, and hold them in a
`networkx.DiGraph`.

Merging is list scheduling over that graph: at each step the operators whose
predecessors are all scheduled are "ready"; ready operators with the same merge
key are mutually independent, so they can run as one vectorised group.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx
from nengo.exceptions import BuildError, NengoException
from nengo.utils.simulator import validate_ops

from .errors import CompileError, UnsupportedError
from .ir import KeyContext
from .kinds import SKIP, merge_key


@dataclass(frozen=True)
class Group:
    """Operators of one kind that run together as one vectorised step."""

    kind: str
    ops: tuple


@dataclass(frozen=True)
class Analysis:
    graph: nx.DiGraph
    groups: tuple  # of Group, in a valid execution order
    written: frozenset  # base signals that some operator writes
    n_ops: int

    def is_const(self, sig) -> bool:
        """True if no operator ever writes the signal's memory."""
        return sig.base not in self.written


def analyse(operators: Iterable, dt: float, n_ops: int | None = None) -> Analysis:
    """Build the dependency graph and schedule operators into merged groups.

    Each operator's merge key comes from its op kind (`nengo_compile.kinds`).
    ``n_ops`` is the number of operators Nengo built (before the rewrite
    stage; default: as many as given), for the plan's statistics.
    """
    operators = list(operators)
    n_ops = len(operators) if n_ops is None else n_ops
    written = frozenset(sig.base for op in operators for sig in op.sets + op.incs + op.updates)
    ctx = KeyContext(written, dt)
    keys = {}
    unsupported = []
    for op in operators:
        try:
            keys[op] = merge_key(op, ctx)
        except NotImplementedError as exc:
            unsupported.append(str(exc))
        except NengoException as exc:  # Nengo's own error (nengo.Simulator raises it too)
            raise CompileError(f"Nengo rejects the model: {exc}") from exc
    if unsupported:
        raise UnsupportedError(sorted(set(unsupported)))

    graph = dependency_graph(operators)
    groups = schedule(graph, keys, {op: i for i, op in enumerate(operators)})
    return Analysis(graph=graph, groups=groups, written=written, n_ops=n_ops)


def dependency_graph(operators) -> nx.DiGraph:
    """Nengo's read/write dependency rules, as a networkx graph.

    The edges are those of `nengo.utils.simulator.operator_dependency_graph`
    (`tests/test_plan.py` checks it): on each signal, the operators that set it
    come before those that increment it, which come before those that read it,
    which come before those that update it, where views of one base that may
    share memory count as one signal. Nengo's checks of who writes what
    (`validate_ops`) run first. Built here with plain lists, in one
    ``add_edges_from``, because Nengo's version is half our analysis time on
    large models.
    """
    sets, incs, reads, updates = (defaultdict(list) for _ in range(4))
    for op in operators:
        for table, signals in ((sets, op.sets), (incs, op.incs), (reads, op.reads)):
            for sig in signals:
                table[sig].append(op)
        for sig in op.updates:
            updates[sig].append(op)
    validate_ops(sets, updates, incs)

    # per base, its signals in each role (dicts as ordered sets)
    set_views, write_views, read_views = (defaultdict(dict) for _ in range(3))
    for sig in sets:
        set_views[sig.base][sig] = None
    for table in (sets, incs):
        for sig in table:
            write_views[sig.base][sig] = None
    for sig in reads:
        read_views[sig.base][sig] = None

    def near(sig, views):
        """The views of ``sig``'s base in ``views`` that may share its memory."""
        return [other for other in views.get(sig.base, ()) if sig.may_share_memory(other)]

    def ops_of(signals, *tables):
        return [op for other in signals for table in tables for op in table.get(other, ())]

    edges = []
    for sig, post in incs.items():
        edges.extend(itertools.product(ops_of(near(sig, set_views), sets), post))
    for sig, post in reads.items():
        edges.extend(itertools.product(ops_of(near(sig, write_views), sets, incs), post))
    for sig, post in updates.items():
        views = [*near(sig, read_views), *near(sig, write_views)]
        pre = ops_of(dict.fromkeys(views), sets, incs, reads)
        edges.extend(itertools.product(pre, post))
    graph = nx.DiGraph()
    graph.add_nodes_from(operators)
    graph.add_edges_from(edges)
    return graph


def _raise_cycle(graph: nx.DiGraph):
    """Not a missing feature: Nengo cannot run this network either."""
    cycle = " -> ".join(str(a) for a, _ in nx.find_cycle(graph))
    raise CompileError(
        f"operator dependency cycle: {cycle} (too many connections without synapses?)"
    ) from BuildError(f"Input graph has cycles: {cycle}")


def schedule(graph: nx.DiGraph, keys: dict, order: dict) -> tuple:
    """Greedy list scheduling that merges ready operators with equal keys.

    At each step we run one group: the key all of whose remaining operators
    are ready (waiting cannot make that group larger), else the key with the
    most ready operators. Ties go to the key whose first operator Nengo built
    first, so the schedule is deterministic.
    """
    indegree = {op: graph.in_degree(op) for op in graph}
    remaining = Counter(keys[op] for op in graph if keys[op] is not SKIP)
    ready = defaultdict(list)  # key -> ready ops
    first = {}  # key -> the build position of its first ready op (kept, not recomputed)
    groups = []

    def release(op):
        for succ in graph.successors(op):
            indegree[succ] -= 1
            if indegree[succ] == 0:
                make_ready(succ)

    def make_ready(op):
        if keys[op] is SKIP:  # no computation: retire it at once
            release(op)
        else:
            key = keys[op]
            ready[key].append(op)
            first[key] = min(first.get(key, order[op]), order[op])

    for op in sorted(graph, key=order.__getitem__):
        if indegree[op] == 0:
            make_ready(op)

    while ready:

        def priority(key):
            ops = ready[key]
            complete = len(ops) == remaining[key]
            return (not complete, -len(ops), first[key])

        key = min(ready, key=priority)
        del first[key]
        ops = sorted(ready.pop(key), key=order.__getitem__)
        remaining[key] -= len(ops)
        if key[1] == "single":
            groups.extend(Group(key[0], (op,)) for op in ops)
        else:
            groups.append(Group(key[0], tuple(ops)))
        for op in ops:
            release(op)

    scheduled = sum(len(g.ops) for g in groups)
    if scheduled != sum(1 for op in graph if keys[op] is not SKIP):
        _raise_cycle(graph)  # operators on a cycle never become ready
    return tuple(groups)
