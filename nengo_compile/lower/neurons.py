"""Neuron types: one template each, registered by exact type.

A neuron lowering names its template (``templates/neurons/<name>.py.j2``),
the state variables it reads and sets (Nengo's ``state`` names, in Nengo's
order) and a function computing its constants from the neuron type and dt.
Constants that differ between merged ensembles become per-neuron vectors.

Lookup is by exact type, not through the MRO: a subclass may change ``step``
(``AdaptiveLIF`` subclasses ``LIF``), so it needs its own template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import nengo
import numpy as np
from nengo.builder.neurons import SimNeurons

from ..analyse import merge_key
from . import ir
from .kinds import AccessRequest, OpKind, op_order_values, register, seg


@dataclass(frozen=True)
class NeuronLowering:
    template: str
    state: tuple
    constants: Callable  # (neuron_type, dt) -> {name: float}


NEURONS: dict = {}


def neuron(cls, template, state=()):
    """Decorator registering the constants function of a neuron type."""

    def decorate(fn):
        NEURONS[cls] = NeuronLowering(f"neurons/{template}.py.j2", tuple(state), fn)
        return fn

    return decorate


@merge_key.register(SimNeurons)
def _(op, ctx):
    neuron_type = op.neurons
    if type(neuron_type) not in NEURONS:
        raise NotImplementedError(
            f"neuron type {type(neuron_type).__name__} ({op.tag or op}) has no template yet"
        )
    return ("neurons", "merge", type(neuron_type).__name__)


@neuron(nengo.RectifiedLinear, "rectified_linear")
def _(n, dt):
    return {"amplitude": n.amplitude}


@neuron(nengo.SpikingRectifiedLinear, "spiking_rectified_linear", ["voltage"])
def _(n, dt):
    return {"amplitude_over_dt": n.amplitude / dt}


@neuron(nengo.Sigmoid, "sigmoid")
def _(n, dt):
    return {"inv_tau_ref": 1.0 / n.tau_ref}


@neuron(nengo.Tanh, "tanh")
def _(n, dt):
    return {"inv_tau_ref": 1.0 / n.tau_ref}


@neuron(nengo.LIFRate, "lif_rate")
def _(n, dt):
    return {"tau_rc": n.tau_rc, "tau_ref": n.tau_ref, "amplitude": n.amplitude}


@neuron(nengo.LIF, "lif", ["voltage", "refractory_time"])
def _(n, dt):
    return {
        "tau_rc": n.tau_rc,
        "tau_ref": n.tau_ref,
        "min_voltage": n.min_voltage,
        "amplitude_over_dt": n.amplitude / dt,
    }


@register
class NeuronsKind(OpKind):
    """SimNeurons: ``output, *state = neuron_type.step(dt, J, *state)``."""

    name = "neurons"
    template = "neurons.py.j2"
    rank = 1

    def accesses(self, ops, ctx):
        lowering = NEURONS[type(ops[0].neurons)]
        requests = [
            AccessRequest("J", "read", tuple(seg(op.J) for op in ops)),
            AccessRequest("output", "set", tuple(seg(op.output) for op in ops)),
        ]
        for name in lowering.state:  # read the old state, set the new one
            segments = tuple(seg(op.state[name]) for op in ops)
            requests.append(AccessRequest(name, "read", segments))
            requests.append(AccessRequest(f"{name}_new", "set", segments))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        neuron_type = ops[0].neurons
        lowering = NEURONS[type(neuron_type)]
        out = acc["output"]
        per_op = [lowering.constants(op.neurons, ctx.dt) for op in ops]
        consts = {
            name: params.const(
                name,
                op_order_values(
                    out,
                    [np.full(op.output.size, c[name]) for op, c in zip(ops, per_op)],
                    out.access.size,
                ),
            )
            for name in per_op[0]
        }
        reads = {"J": acc["J"].access}
        reads.update({name: acc[name].access for name in lowering.state})
        writes = {"output": out.access}
        writes.update({name: acc[f"{name}_new"].access for name in lowering.state})
        return ir.Group(
            index,
            self.name,
            self.template,
            f"{type(neuron_type).__name__} x{len(ops)} ({out.access.size} neurons)",
            tuple(ctx.names(op) for op in ops),
            reads=reads,
            writes=writes,
            consts=consts,
            values={
                "neuron_template": lowering.template,
                "state": lowering.state,
                "dt": ctx.dt,
            },
        )
