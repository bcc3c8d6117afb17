"""Stage 4, plan: lay out mutable signals in contiguous state blocks.

The unit of layout is the *element* (one scalar of a base signal), so one
Nengo signal may be split across blocks and a block may interleave signals.
Groups are visited by their kind's rank (neurons first, then synapses, then
copies, ...); each group's roles, in the kind's order, claim the elements not
yet placed as a new block, in the order the group reads or writes them. Before
that, a group's operators are reordered to follow the elements that earlier
groups already placed. Order-free roles (matrix products, resets) take their
elements in whatever order they lie.

Every access is then resolved into pieces (whole block, slice, gather), and
the counts are kept in `PlanStats`, which tests assert on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from .. import ir
from ..analyse import Analysis
from ..errors import UnsupportedError
from ..ir import LowerContext, Resolved
from ..kinds import KINDS
from ..kinds.base import elements
from .layout import BlockLayout

#: a read split into more pieces than this (a repeated slice counting once)
#: becomes one gather ...
MAX_PIECES = 8
#: ... unless its contiguous runs are long (on average at least LONG_RUN
#: elements) and at most MAX_RUNS: copying long ranges as slices lets XLA fold
#: ``slice(concat(...))`` away, where a gather reads every element through an index
MAX_RUNS, LONG_RUN = 32, 64


@dataclass(frozen=True)
class PlanStats:
    """Plan quality: how many operators merged, how reads and writes are served."""

    ops_before: int
    groups_after: int
    blocks: int
    state_size: int
    transient_blocks: int = 0
    transient_size: int = 0
    reads: dict = field(default_factory=dict)  # kind -> count (whole/slice/gather)
    writes: dict = field(default_factory=dict)

    def lines(self) -> list:
        def fmt(c):
            return ", ".join(f"{c.get(k, 0)} {k}" for k in (ir.WHOLE, ir.SLICE, ir.GATHER))

        return [
            f"operators: {self.ops_before} -> {self.groups_after} merged groups",
            f"state: {self.blocks} blocks, {self.state_size} values per batch element "
            f"({self.transient_blocks} blocks, {self.transient_size} values recomputed "
            "every step and not kept)",
            f"reads: {fmt(self.reads)}",
            f"writes: {fmt(self.writes)}",
        ]


@dataclass(frozen=True)
class PlannedGroup:
    kind: str
    ops: tuple  # final operator order
    accesses: dict  # role -> Resolved


@dataclass(frozen=True)
class Plan:
    groups: tuple  # PlannedGroup, in execution order
    blocks: tuple  # BlockLayout
    index_params: dict  # name -> int array
    probe_reads: tuple  # per probe signal: ir.Access, or None if constant
    stats: PlanStats


class Placement:
    """Where each element of each mutable base signal lives.

    Every base signal met gets a range of a flat element space (``offset``);
    ``block`` and ``pos`` hold, per flat element, its block (-1: not placed)
    and its position there, so a lookup of many segments is one gather.
    """

    def __init__(self):
        self.offset = {}  # base -> its first flat element
        self.block = np.full(1024, -1)
        self.pos = np.full(1024, -1)
        self.n_elements = 0
        self.layouts = []  # per block: list of (base, indices)
        self.sizes = []
        self.counts = {"read": Counter(), "write": Counter()}
        self._requests = {}  # id(request) -> (request, its segments, their flat positions)

    def _offset(self, base) -> int:
        offset = self.offset.get(base)
        if offset is None:
            offset = self.offset[base] = self.n_elements
            self.n_elements += base.size
            if self.n_elements > len(self.block):
                grow = max(self.n_elements, 2 * len(self.block)) - len(self.block)
                self.block = np.concatenate([self.block, np.full(grow, -1)])
                self.pos = np.concatenate([self.pos, np.full(grow, -1)])
        return offset

    def _flat(self, segments) -> np.ndarray:
        if not segments:
            return np.zeros(0, dtype=np.int64)
        known = self.offset
        offsets = [known[base] if base in known else self._offset(base) for base, _ in segments]
        lengths = [len(idx) for _, idx in segments]
        indices = np.concatenate([idx for _, idx in segments]).astype(np.int64)
        return indices + np.repeat(np.array(offsets, dtype=np.int64), lengths)

    def segments(self, request):
        """A request's segments, all operators' in order, and their flat
        positions: computed once per request (the plan asks several times)."""
        known = self._requests.get(id(request))
        if known is None or known[0] is not request:
            segments = [s for per_op in request.per_op for s in per_op]
            known = self._requests[id(request)] = (request, segments, self._flat(segments))
        return known[1], known[2]

    def locate(self, segments, flat=None):
        flat = self._flat(segments) if flat is None else flat
        return self.block[flat], self.pos[flat]

    def place(self, segments, flat=None):
        """Put the unplaced elements of ``segments`` into a new block, in order."""
        flat = self._flat(segments) if flat is None else flat
        unplaced = np.flatnonzero(self.block[flat] < 0)
        if len(unplaced) == 0:
            return
        _, first = np.unique(flat[unplaced], return_index=True)
        new = unplaced[np.sort(first)]  # first occurrences, in order
        b = len(self.sizes)
        self.block[flat[new]] = b
        self.pos[flat[new]] = np.arange(len(new))
        # the layout: per segment, its new elements
        lengths = [len(idx) for _, idx in segments]
        segment_of = np.repeat(np.arange(len(segments)), lengths)[new]
        local = np.concatenate([idx for _, idx in segments])[new]
        cuts = np.flatnonzero(np.diff(segment_of)) + 1
        layout = [(segments[segment_of[a]][0], local[a:b]) for a, b in _spans(cuts, len(new))]
        self.layouts.append(layout)
        self.sizes.append(len(new))

    def name(self, b: int) -> str:
        return f"s{b}"

    def resolve(self, segments, mode, index_params, flat=None):
        """Turn a list of elements into pieces of blocks (see `ir.Piece`)."""
        blocks, pos = self.locate(segments, flat)
        assert (blocks >= 0).all(), "access to an element that was never placed"
        n = len(blocks)
        if mode == "read":
            pieces = self._read_pieces(blocks, pos, index_params)
            self.counts["read"].update(p.kind for p in pieces)
        else:
            pieces = self._write_pieces(blocks, pos, index_params, mode)
            self.counts["write"].update(p.kind for p in pieces)
        return ir.Access(mode, tuple(pieces), n)

    def _index(self, index_params, array):
        name = f"index{len(index_params)}"
        index_params[name] = np.asarray(array, dtype=np.int32)
        return name

    def _kind(self, b, pos):
        if len(pos) == self.sizes[b] and np.array_equal(pos, np.arange(self.sizes[b])):
            return ir.WHOLE
        if len(pos) and np.array_equal(pos, np.arange(pos[0], pos[0] + len(pos))):
            return ir.SLICE
        return ir.GATHER

    def _read_pieces(self, blocks, pos, index_params):
        runs = _repeated_runs(blocks, pos, _contiguous_runs(blocks, pos))
        if len(runs) <= MAX_PIECES or (
            len(runs) <= MAX_RUNS and len(blocks) >= LONG_RUN * len(runs)
        ):
            return [self._slice_piece(int(blocks[a]), pos[a:b], repeat=n) for a, b, n in runs]
        runs = _spans(np.flatnonzero(np.diff(blocks)) + 1, len(blocks))
        if len(runs) > MAX_PIECES:
            order = list(dict.fromkeys(blocks.tolist()))
            offsets = np.cumsum([0] + [self.sizes[b] for b in order])
            start = dict(zip(order, offsets))
            offset = np.zeros(len(self.sizes), dtype=np.int64)
            offset[order] = [start[b] for b in order]
            flat = offset[blocks] + pos
            names = tuple(self.name(b) for b in order)
            return [ir.Piece(names, ir.GATHER, index=self._index(index_params, flat))]
        pieces = []
        for lo, hi in runs:
            b, p = int(blocks[lo]), pos[lo:hi]
            kind = self._kind(b, p)
            if kind == ir.GATHER:
                pieces.append(ir.Piece((self.name(b),), kind, index=self._index(index_params, p)))
            else:
                pieces.append(ir.Piece((self.name(b),), kind, int(p[0]), int(p[-1]) + 1))
        return pieces

    def _slice_piece(self, b, p, **value):
        """A WHOLE or SLICE piece of block ``b`` at the consecutive positions ``p``."""
        kind = self._kind(b, p)
        assert kind != ir.GATHER
        return ir.Piece((self.name(b),), kind, int(p[0]), int(p[-1]) + 1, **value)

    def _summed_slices(self, b, where, p, mode):
        """A write to block ``b`` as a few slices, each the sum of value ranges
        (several sources incrementing the same elements), or None."""
        runs = _contiguous_runs(where, p, steps=True)
        targets = {}  # block range -> value ranges summed into it
        for lo, hi in runs:
            targets.setdefault((int(p[lo]), int(p[hi - 1]) + 1), []).append(
                (int(where[lo]), int(where[hi - 1]) + 1)
            )
        if len(targets) > MAX_PIECES or (mode != "inc" and len(targets) < len(runs)):
            return None
        bounds = sorted(targets)
        if any(a[1] > b[0] for a, b in zip(bounds, bounds[1:])):
            return None  # overlapping, unequal ranges
        return [
            self._slice_piece(b, np.arange(*target), value_ranges=tuple(targets[target]))
            for target in bounds
        ]

    def _write_pieces(self, blocks, pos, index_params, mode):
        pieces = []
        _, first = np.unique(blocks, return_index=True)
        for b in blocks[np.sort(first)].tolist():  # blocks in order of first use
            where = np.flatnonzero(blocks == b)
            p = pos[where]
            kind = self._kind(b, p)
            in_order = np.array_equal(where, np.arange(where[0], where[0] + len(where)))
            if kind != ir.GATHER and in_order:
                value_range = (int(where[0]), int(where[-1]) + 1)
                pieces.append(self._slice_piece(b, p, value_ranges=(value_range,)))
                continue
            summed = self._summed_slices(b, where, p, mode)
            if summed is not None:
                pieces.extend(summed)
                continue
            value = (
                {"value_ranges": ((int(where[0]), int(where[-1]) + 1),)}
                if in_order
                else {"value_index": self._index(index_params, where)}
            )
            if kind == ir.GATHER:
                index = self._index(index_params, p)
                pieces.append(ir.Piece((self.name(b),), kind, index=index, **value))
            else:
                pieces.append(self._slice_piece(b, p, **value))
        return pieces


def plan(analysis: Analysis, ctx: LowerContext, probe_signals=(), special_bases=()) -> Plan:
    """Lay out the state and resolve every group's and probe's accesses.

    ``special_bases`` (Nengo's ``step`` and ``time``) are never placed: the
    generated step computes them directly.
    """
    placement = Placement()
    special = set(special_bases)
    groups = [list(g.ops) for g in analysis.groups]
    kinds = [KINDS[g.kind] for g in analysis.groups]

    final_requests = {}  # group -> its requests, for its final operator order
    visit = sorted(range(len(groups)), key=lambda i: (kinds[i].rank, -len(groups[i]), i))
    for i in visit:
        kind, ops = kinds[i], groups[i]
        requests = kind.accesses(ops, ctx)
        _check_special(requests, special)
        perm = _operator_order(placement, [r for r in requests if not r.order_free])
        if perm is not None:
            ops = groups[i] = [ops[j] for j in perm]
            if all(len(r.per_op) == len(ops) for r in requests):  # one entry per operator
                requests = [_permuted(r, perm) for r in requests]
            else:
                requests = kind.accesses(ops, ctx)
        for request in requests:
            placement.place(*placement.segments(request))
        final_requests[i] = requests

    probe_segments = [
        None if analysis.is_const(sig) else ((sig.base, elements(sig)),) for sig in probe_signals
    ]
    for segments in probe_segments:  # probed elements that no operator touches
        if segments is not None:
            placement.place(segments)

    index_params = {}
    planned = []
    for i, (group, ops) in enumerate(zip(analysis.groups, groups)):
        accesses = {}
        for request in final_requests[i]:
            accesses[request.role] = _resolve(placement, request, index_params)
        planned.append(PlannedGroup(group.kind, tuple(ops), accesses))

    probe_reads = tuple(
        None if segments is None else placement.resolve(segments, "read", index_params)
        for segments in probe_segments
    )
    transient = _transient_blocks(placement, [final_requests[i] for i in range(len(groups))])
    layouts = tuple(
        BlockLayout(placement.name(b), tuple(layout), placement.sizes[b], b in transient)
        for b, layout in enumerate(placement.layouts)
    )
    stats = PlanStats(
        ops_before=analysis.n_ops,
        groups_after=len(planned),
        blocks=len(layouts),
        state_size=int(sum(placement.sizes)),
        transient_blocks=len(transient),
        transient_size=int(sum(placement.sizes[b] for b in transient)),
        reads=dict(placement.counts["read"]),
        writes=dict(placement.counts["write"]),
    )
    return Plan(tuple(planned), layouts, index_params, probe_reads, stats)


def _permuted(request, perm):
    return replace(request, per_op=tuple(request.per_op[j] for j in perm))


def _operator_order(placement, ordered):
    """A new order of a group's operators, or None to keep theirs: the layout
    that earlier groups made for the first of the group's ordered requests
    that has placed elements, else (nothing placed yet) operators reading the
    same elements side by side."""
    for request in ordered:
        perm = _follow_layout(placement, request)
        if perm is not None:
            return perm
    return _repeats_together(placement, ordered[0]) if ordered else None


def _follow_layout(placement, request):
    """The order of the request's operators by where their first already placed
    element lies (operators with none last, in their order), or None if no
    element is placed yet. One lookup for the whole group, a stable sort."""
    lengths = [sum(len(idx) for _, idx in segments) for segments in request.per_op]
    blocks, pos = placement.locate(*placement.segments(request))
    placed = np.flatnonzero(blocks >= 0)
    if len(placed) == 0:
        return None
    op_of = np.repeat(np.arange(len(lengths)), lengths)
    ops_placed, first = np.unique(op_of[placed], return_index=True)  # first placed element
    block_key = np.full(len(lengths), len(placement.sizes))
    pos_key = np.zeros(len(lengths), dtype=np.int64)
    block_key[ops_placed] = blocks[placed[first]]
    pos_key[ops_placed] = pos[placed[first]]
    return np.lexsort((pos_key, block_key)).tolist()


def _repeats_together(placement, request):
    """An order of the request's operators in which those that read the same
    elements (one source read by several operators) are next to each other, so
    that the source, read once per operator, is a repeated slice rather than a
    gather; or None if no two operators start at the same element. The other
    operators keep their order."""
    if len(request.per_op) < 2 or not all(request.per_op):
        return None
    starts = [segments[0] for segments in request.per_op]
    first = placement._flat([(base, idx[:1]) for base, idx in starts])
    if len(first) != len(starts) or len(np.unique(first)) == len(first):
        return None
    _, seen, group = np.unique(first, return_index=True, return_inverse=True)
    return np.lexsort((np.arange(len(first)), seen[group])).tolist()


def _transient_blocks(placement, requests_in_order) -> set:
    """The blocks none of whose elements is read before it is written in a step.

    Walks the groups in execution order; within a group its reads (and
    increments, which read) come before its writes. An element whose first
    access is a write ("set" or "update", both overwrite it) is transient; one
    first read, or never touched (a probed constant), must be kept.
    """
    offsets = np.concatenate([[0], np.cumsum(placement.sizes)]).astype(np.int64)
    first = np.zeros(offsets[-1], dtype=np.int8)  # 0 untouched, 1 read first, 2 written first
    for requests in requests_in_order:
        for reading in (True, False):
            for request in requests:
                if (request.mode in ("read", "inc")) != reading:
                    continue
                blocks, pos = placement.locate(*placement.segments(request))
                flat = offsets[blocks] + pos
                untouched = flat[first[flat] == 0]
                first[untouched] = 1 if reading else 2
    return {
        b for b in range(len(placement.sizes)) if (first[offsets[b] : offsets[b + 1]] == 2).all()
    }


def _check_special(requests, special):
    for request in requests:
        for segments in request.per_op:
            for base, _ in segments:
                if base in special:
                    raise UnsupportedError([f"operator accesses {base.name!r} as data"])


def _resolve(placement, request, index_params) -> Resolved:
    segments, flat_positions = placement.segments(request)
    # per operator, where its elements lie in the request's list of elements
    bounds = np.cumsum([0] + [sum(len(idx) for _, idx in segs) for segs in request.per_op])
    if not request.order_free:
        access = placement.resolve(segments, request.mode, index_params, flat_positions)
        every = np.arange(bounds[-1])
        every.flags.writeable = False  # shared by the operators' views
        return Resolved(access, tuple(every[a:b] for a, b in zip(bounds[:-1], bounds[1:])))

    # order-free: unique elements sorted by where they lie (vectorised: a
    # group may hold hundreds of thousands of elements)
    blocks, pos = placement.locate(segments, flat_positions)
    stride = max(placement.sizes) + 1
    all_keys = blocks.astype(np.int64) * stride + pos
    unique_keys, first = np.unique(all_keys, return_index=True)
    bases = [base for base, _ in segments]
    base_ids = np.repeat(np.arange(len(segments)), [len(idx) for _, idx in segments])
    flat = np.concatenate([np.asarray(idx) for _, idx in segments]) if segments else all_keys
    access = placement.resolve(
        _runs(bases, base_ids[first], flat[first]), request.mode, index_params
    )
    positions = np.searchsorted(unique_keys, all_keys)
    return Resolved(access, tuple(positions[a:b] for a, b in zip(bounds[:-1], bounds[1:])))


def _repeated_runs(blocks, pos, runs):
    """``[(lo, hi, n)]``: ``runs`` with each run that ``n - 1`` equal runs
    follow (the same elements read again: one source read by several
    operators) kept once, ``n`` times."""
    if len(runs) < 2:
        return [(lo, hi, 1) for lo, hi in runs]
    lo, hi = np.array(runs).T
    same = (
        (blocks[lo[1:]] == blocks[lo[:-1]])
        & (pos[lo[1:]] == pos[lo[:-1]])
        & (hi[1:] - lo[1:] == hi[:-1] - lo[:-1])
    )
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    counts = np.diff(np.append(starts, len(runs)))
    return list(zip(lo[starts].tolist(), hi[starts].tolist(), counts.tolist()))


def _contiguous_runs(blocks, pos, steps=False):
    """``[(lo, hi)]``: the runs of ``blocks, pos`` on one block at consecutive
    positions (with ``steps``, ``blocks`` must also step by one: value positions)."""
    if len(pos) == 0:
        return []
    same = np.diff(blocks) == (1 if steps else 0)
    return _spans(np.flatnonzero(~same | (np.diff(pos) != 1)) + 1, len(pos))


def _spans(cuts, n) -> list:
    """``[(lo, hi)]``: the parts of ``range(n)`` between the positions ``cuts``."""
    bounds = [0, *cuts.tolist(), n]
    return list(zip(bounds[:-1], bounds[1:]))


def _runs(bases, ids, elements):
    """Segments ``[(base, indices)]`` of elements given by segment id, merging
    neighbouring runs of the same base signal, in order."""
    if len(ids) == 0:
        return []
    segments = []
    for lo, hi in _spans(np.flatnonzero(np.diff(ids)) + 1, len(ids)):
        base = bases[ids[lo]]
        if segments and segments[-1][0] is base:
            segments[-1] = (base, np.concatenate([segments[-1][1], elements[lo:hi]]))
        else:
            segments.append((base, elements[lo:hi]))
    return segments
