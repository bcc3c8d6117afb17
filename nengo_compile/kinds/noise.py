"""Random processes: WhiteNoise, FilteredNoise and BrownNoise (and
ensemble ``noise`` made of them).

Random processes are generated in TF with counter-based (Philox) stateless
draws: the key is the model's ``rng_seed`` (or the process's own ``seed``, so
that, as in Nengo, it does not change with the simulator's seed) and the
counter holds the step and a stream number per group. Runs agree; batch rows
and groups differ; the values follow Nengo's distributions, not its draws:
one draw per step from the process's distribution (``Gaussian``, ``Uniform``,
``Exponential``), scaled by ``1 / sqrt(dt)`` when ``scale``, then
(``FilteredNoise``) filtered by the synapse with the step form Nengo picks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from nengo.dists import Choice, Exponential, Gaussian, Uniform
from nengo.processes import FilteredNoise, WhiteNoise
from nengo.synapses import LinearFilter

from .. import ir
from ..ir import AccessRequest
from .base import op_order_values, register, seg, tag
from .process import STREAMS, ProcessKind, SourceKind, output_request
from .synapses import FilterStep, filter_constants, state_order


def _distribution(dist, dtype, where) -> tuple:
    """``(kind, constants)``: how to turn one uniform or normal draw into a
    sample of ``dist`` (an inverse CDF, or an affine map of a normal)."""
    if type(dist) is Gaussian:
        return "gaussian", {"loc": dist.mean, "scale": dist.std}
    if type(dist) is Uniform and dist.integer:
        width = float(dist.high - dist.low)
        if width < 1:
            raise NotImplementedError(f"Uniform integer distribution with high <= low ({where})")
        return "uniform_int", {"low": dist.low, "width": width, "top": width - 1}
    if type(dist) is Uniform:
        return "uniform", {"low": dist.low, "width": dist.high - dist.low}
    if type(dist) is Choice:
        options = np.unique(np.asarray(dist.options, dtype=np.float64), axis=0)
        weights = None if dist.p is None else np.asarray(dist.p)
        if len(options) == 1 and (weights is None or np.count_nonzero(weights) >= 1):
            return "constant", {"value": options[0]}  # every draw is the one option
        raise NotImplementedError(
            f"Choice distribution with several options ({where}); a single option compiles"
        )
    if type(dist) is Exponential:
        consts = {"shift": dist.shift, "scale": dist.scale}
        if not np.isfinite(dist.high):
            return "exponential", consts
        # Nengo clips to the largest value below `high` in its own precision
        high = np.nextafter(np.dtype(dtype).type(dist.high), np.dtype(dtype).type(-np.inf))
        return "exponential_clipped", {**consts, "high": float(high)}
    raise NotImplementedError(
        f"distribution {dist} ({where}); compiled distributions: Gaussian, Uniform, Exponential"
    )


#: distributions that are an affine map of the draw: the constants of that map
AFFINE = {"gaussian": ("loc", "scale"), "uniform": ("low", "width")}


def _noise_key(op, ctx) -> tuple:
    """The part of a noise process's key that its draws depend on."""
    kind, _ = _distribution(op.process.dist, "float64", tag(op))
    seeded = op.process.seed is not None
    return ("single" if seeded else "merge", op.mode, kind)


@dataclass(frozen=True)
class RandomDraw(ir.Payload):
    """One Philox draw per step (``templates/ops/_random.py.j2``): the raw
    op (a normal or uniform draw), its key (code) and stream, and how the
    draw becomes a sample of the distribution ``dist`` (its constants, a
    gain or None)."""

    dist: str
    op: str
    dist_consts: Mapping  # name -> ir.Const
    gain: ir.Const | None
    key: str
    key_source: str
    stream: int
    streams: int
    size: int


@dataclass(frozen=True)
class FilteredNoisePayload(ir.Payload):
    """A draw, filtered (`synapses.FilterStep`)."""

    draw: RandomDraw
    filter: FilterStep


def _draw_values(index, ops, out, params, ctx) -> RandomDraw:
    """The random draw of a group: distribution constants
    per element, the gain (``1 / sqrt(dt)`` where ``scale``) and the seed."""
    process = ops[0].process
    kind, _ = _distribution(process.dist, ctx.dtype, tag(ops[0]))
    per_op = [_distribution(op.process.dist, ctx.dtype, tag(op))[1] for op in ops]
    size = out.access.size

    def per_element(values):  # a scalar per op, or a vector as long as its output
        return op_order_values(
            out,
            [
                np.broadcast_to(np.asarray(v, dtype=np.float64), op.output.size)
                for op, v in zip(ops, values)
            ],
            size,
        )

    gains = [1.0 / np.sqrt(ctx.dt) if op.process.scale else 1.0 for op in ops]
    if kind in AFFINE:  # fold the gain into the affine map of the draw
        per_op = [{name: g * c[name] for name in AFFINE[kind]} for g, c in zip(gains, per_op)]
        gains = [1.0] * len(ops)
    consts = {
        name: params.const(name, per_element([c[name] for c in per_op])) for name in per_op[0]
    }
    gain = None if all(g == 1.0 for g in gains) else params.const("gain", per_element(gains))
    if process.seed is not None:  # its own seed: independent of the model's seed
        key, stream = f"tf.constant({int(process.seed)}, tf.int64)", 0
    else:
        key, stream = "rng_seed", index + 1
    if stream >= STREAMS:
        raise NotImplementedError(f"too many random groups ({index})")
    return RandomDraw(
        dist=kind,
        op="StatelessRandomNormalV2" if kind == "gaussian" else "StatelessRandomUniformV2",
        dist_consts=consts,
        gain=gain,
        key=key,
        key_source="process seed" if process.seed is not None else "model seed",
        stream=stream,
        streams=STREAMS,
        size=size,
    )


@register(WhiteNoise)
class WhiteNoiseKind(SourceKind):
    """WhiteNoise: ``output = gain * sample(dist)`` each step."""

    name = "white_noise"
    template = "white_noise.py.j2"

    def process_key(self, op, ctx):
        return ("white_noise", *_noise_key(op, ctx))

    def lower(self, index, ops, acc, params, ctx):
        out = acc["output"]
        values = _draw_values(index, ops, out, params, ctx)
        return ir.Group(
            index,
            self.name,
            self.template,
            f"WhiteNoise[{values.dist}] x{len(ops)} ({out.access.size} values)",
            tuple(ctx.names(op) for op in ops),
            writes={"output": out.access},
            values=values,
            random=True,
        )


def _filter_form(op, dt):
    """Nengo's step form for the noise filter: (name, (A, B, C, D))."""
    synapse = op.process.synapse
    if not isinstance(synapse, LinearFilter):
        raise NotImplementedError(
            f"FilteredNoise with synapse {type(synapse).__name__} ({tag(op)})"
        )
    A, B, C, D = synapse._get_ss(dt)
    X = op.state["X"].initial_value
    for cls in (LinearFilter.NoX, LinearFilter.OneX, LinearFilter.NoD, LinearFilter.General):
        if cls.check(A, B, C, D, X):
            return cls.__name__, (A, B, C, D)
    raise NotImplementedError(f"noise filter {synapse} has an unexpected form ({tag(op)})")


@register(FilteredNoise)  # and BrownNoise, a FilteredNoise
class FilteredNoiseKind(ProcessKind):
    """FilteredNoise, BrownNoise: white noise through a LinearFilter.

    The filter steps as in `synapses.LinearFilterKind` (Nengo's NoX, OneX,
    NoD or General form), with the noise as its input.
    """

    name = "filtered_noise"
    template = "filtered_noise.py.j2"

    def process_key(self, op, ctx):
        step, (A, _, _, _) = _filter_form(op, ctx.dt)
        return ("filtered_noise", *_noise_key(op, ctx), step, len(A))

    def accesses(self, ops, ctx):
        requests = [output_request(ops)]
        step, _ = _filter_form(ops[0], ctx.dt)
        if step != "NoX":
            segments = tuple(seg(op.state["X"], state_order(op)) for op in ops)
            requests.append(AccessRequest("X", "read", segments))
            requests.append(AccessRequest("X_new", "set", segments))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        out = acc["output"]
        size = out.access.size
        step, _ = _filter_form(ops[0], ctx.dt)
        mats = [_filter_form(op, ctx.dt)[1] for op in ops]
        k = len(mats[0][0])

        consts = filter_constants(step, mats, ops, out, params)
        writes = {"output": out.access}
        reads = {}
        if step != "NoX":
            reads["X"] = acc["X"].access
            writes["X"] = acc["X_new"].access
        draw = _draw_values(index, ops, out, params, ctx)
        return ir.Group(
            index,
            self.name,
            self.template,
            f"FilteredNoise[{draw.dist}, {step}, order {k}] x{len(ops)} ({size} values)",
            tuple(ctx.names(op) for op in ops),
            reads=reads,
            writes=writes,
            consts=consts,
            values=FilteredNoisePayload(draw, FilterStep(step, size, k, size * k, True)),
            random=True,
        )
