"""Neuron types: one template each, registered by type.

A neuron lowering names its template (``templates/neurons/<name>.py.j2``),
the state variables it reads and sets (Nengo's ``state`` names, in Nengo's
order), a function computing its constants from the neuron type and dt, and
optionally a function giving template options (values that select code, such
as whether a wrapped type can be negative; they are part of the merge key).
Constants that differ between merged ensembles become per-neuron vectors.

Lookup is by exact type, not through the MRO: a subclass may change ``step``
(``AdaptiveLIF`` subclasses ``LIF``), so it needs its own template. A subclass
that only inherits a registered type's ``step`` (and its state) runs that
type's template. Types without a template become NumPy stubs
(`nengo_compile.kinds.neuron_stubs`).

The rate-to-spike wrappers (``RegularSpiking``, ``StochasticSpiking``,
``PoissonSpiking``) are built by Nengo as two operators: the base type's
``SimNeurons`` (input current to ``rate_out``) and the wrapper's (``rate_out``
to spikes). The base operator is lowered like any other of its type (merged
with the other ensembles of that type); the wrapper's template renders only
the spiking part, so a wrapper works with any base type the compiler handles.

Float64 modules compute what Nengo's NumPy ``step`` computes, rounding for
rounding: the templates write Nengo's arithmetic in its order with its
constants (computing in Python only what Nengo computes in Python, such as
``amplitude / dt``), and two things stop TensorFlow from rewriting it:

* every constant is read from a parameter (`_held`; a one-element array where
  all neurons share it): TensorFlow's graph optimizer and XLA fold and
  reassociate arithmetic on inline numbers (``(x * 1000) * dt`` becomes
  ``x * 1.0``, ``(J - n) - 1`` becomes ``J - (n + 1)``, ``c + (x + y)``
  becomes ``x + (c + y)``, ``x / c`` becomes ``x * (1 / c)``), but cannot see
  a parameter's value;
* a product that Nengo rounds before adding it to something, or before
  multiplying it again, is written ``x * y + zero``, with ``zero`` the
  parameter -0.0 (adding -0.0 changes no value, not even +0.0): XLA fuses
  ``x * y + c`` into one fma (one rounding instead of Nengo's two), and the
  graph optimizer reorders a chain of products by operand shape
  (``(x * a) * b`` becomes ``x * (a * b)`` for scalars ``a``, ``b``); the
  sum with ``zero`` ends the product there for both.

What remains are the transcendental functions (``exp``, ``expm1``,
``log1p``, ``tanh``): TensorFlow's kernels and XLA's round otherwise than
NumPy's in the last bit for some arguments (README, Known differences).
Float32 modules keep inline numbers, where the optimizers fold ``+ zero``
away: they cannot match Nengo's float64 anyway.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import nengo
import numpy as np
from nengo.builder.neurons import SimNeurons

from .. import ir
from ..ir import AccessRequest
from ..neurons import SoftLIFRate
from .base import OpKind, op_order_values, register, seg
from .neuron_stubs import stub_key


@dataclass(frozen=True)
class NeuronLowering:
    name: str  # the registered type's name
    template: str
    state: tuple
    constants: Callable  # (neuron_type, dt) -> {name: float}
    options: Callable | None = None  # neuron_type -> {name: hashable}
    random: bool = False  # its template draws random numbers
    no_xla: bool = False  # its template has an operation without an XLA kernel
    series: Callable | None = None  # (neuron_types, dt, dtype) -> Series | None


NEURONS: dict = {}


def neuron(cls, template, state=(), options=None, *, random=False, no_xla=False, series=None):
    """Decorator registering the constants function of a neuron type: its
    template is ``templates/neurons/<template>.py.j2``, ``state`` the Nengo
    state names it reads and sets, ``options`` a function giving template
    options; ``random``: the template draws random numbers; ``no_xla``: it
    has an operation without an XLA kernel; ``series``: a function giving the
    lengths of the series its template computes under XLA (`Series`)."""

    def decorate(fn):
        NEURONS[cls] = NeuronLowering(
            cls.__name__,
            f"neurons/{template}.py.j2",
            tuple(state),
            fn,
            options,
            random,
            no_xla,
            series,
        )
        return fn

    return decorate


@dataclass(frozen=True)
class Neurons(ir.Payload):
    """What a neuron template may read besides the group's constants (one
    local each) and state (one local per name in ``state``, plus ``J``):
    ``dt`` (placed as ``dt``, a float literal), ``options`` and the group's
    random ``salt``; ``held``: the value of each constant that is one number
    held as a parameter (float64 modules), for a comment beside it."""

    neuron_template: str
    state: tuple
    dt: float
    options: Mapping
    salt: int
    held: Mapping | None = None
    training: Training | None = None  # a trainable module's spiking types: what trains
    series: Series | None = None  # LIF types under XLA: expm1 and log1p by series


@dataclass(frozen=True)
class Series(ir.Payload):
    """The series a LIF template computes under XLA instead of ``expm1`` and
    ``log1p`` (`_expm1_series`, `_log1p_series` in the runtime): their numbers
    of terms, and ``bound``, the largest ``|x|`` the ``log1p`` series is for
    (the runtime falls back to ``log1p`` past it)."""

    expm1: int
    log1p: int
    bound: float


@dataclass(frozen=True)
class Training(ir.Payload):
    """What a spiking type runs in training (`CompiledModel.forward` with
    ``training=True``): the rate template (``templates/neurons/``) and its
    constants (one local each; they may reuse the spiking constants' names, so
    the template sets them after the spiking step); or, for a type without
    a rate counterpart, ``reason``, which the module raises in training."""

    template: str = ""
    consts: Mapping | None = None
    reason: str = ""


def lowering_for(neuron_type) -> NeuronLowering | None:
    """The lowering of a neuron type: its own, or that of the registered type
    whose ``step`` it inherits unchanged (with the same state); else None."""
    cls = type(neuron_type)
    if cls in NEURONS:
        return NEURONS[cls]
    mro = cls.__mro__
    for k, base in enumerate(mro):
        if base in NEURONS:
            same_chain = mro[k:] == base.__mro__  # so super() calls resolve as for base
            own_step = any("step" in vars(c) for c in mro[:k])
            same_state = set(neuron_type.state) == set(NEURONS[base].state)
            return NEURONS[base] if same_chain and not own_step and same_state else None
    return None


def _options(lowering, neuron_type) -> tuple:
    if lowering.options is None:
        return ()
    return tuple(sorted(lowering.options(neuron_type).items()))


# ---- rate types


@neuron(nengo.RectifiedLinear, "rectified_linear")
def _(n, dt):
    return {"amplitude": n.amplitude}


@neuron(nengo.Sigmoid, "sigmoid")
def _(n, dt):
    return {"inv_tau_ref": 1.0 / n.tau_ref}


@neuron(nengo.Tanh, "tanh")
def _(n, dt):
    return {"inv_tau_ref": 1.0 / n.tau_ref}


@neuron(nengo.LIFRate, "lif_rate")
def _(n, dt):
    return {"one": 1.0, **_lif_rate_constants(n), "zero": -0.0}


def _lif_rate_constants(n):
    return {"tau_rc": n.tau_rc, "tau_ref": n.tau_ref, "amplitude": n.amplitude}


@neuron(nengo.AdaptiveLIFRate, "adaptive_lif_rate", ["adaptation"])
def _(n, dt):
    return {
        "one": 1.0,
        **_lif_rate_constants(n),
        "dt_over_tau_n": dt / n.tau_n,  # Nengo's (dt / self.tau_n)
        "inc_n": n.inc_n,
        "zero": -0.0,
    }


@neuron(SoftLIFRate, "soft_lif_rate")
def _(n, dt):
    return {
        "one": 1.0,
        "sigma": n.sigma,
        "log_sigma": float(np.log(n.sigma)),  # as its step's np.log(sigma)
        "tau_rc": n.tau_rc,
        "tau_ref": n.tau_ref,
        "amplitude": n.amplitude,
        "zero": -0.0,
    }


# ---- spiking types


@neuron(nengo.SpikingRectifiedLinear, "spiking_rectified_linear", ["voltage"])
def _(n, dt):
    return {"dt": dt, "amplitude_over_dt": n.amplitude / dt, "zero": -0.0}


def _lif_constants(n, dt):
    return {
        "dt": dt,
        "one": 1.0,
        "tau_rc": n.tau_rc,
        "tau_ref": n.tau_ref,
        "min_voltage": n.min_voltage,
        "amplitude_over_dt": n.amplitude / dt,  # Nengo's (self.amplitude / dt)
        "zero": -0.0,
    }


#: the most terms a series may have (past it, the template calls expm1 and log1p)
SERIES_TERMS = 24


def _lif_series(neuron_types, dt, dtype) -> Series | None:
    """How many terms the LIF step's series take for the dtype's precision.

    The step computes ``expm1(-delta_t / tau_rc)`` with ``delta_t`` in
    ``[0, dt]`` (clipped), so ``|x| <= r = max(dt / tau_rc)``; and, for the
    spike time, ``log1p(overshoot)`` with ``|overshoot| <= -expm1(-r)``
    wherever the voltage was at most 1 before the step, which every step
    leaves it (a spiking neuron is reset to 0; Nengo keeps ``min_voltage`` at
    most 0). A state set otherwise (an initial voltage above 1) exceeds
    ``bound`` once, and that step takes ``log1p`` itself. Each series gets the
    fewest terms whose first one left out is below a 16th of an ulp of the
    result at the bound. None where a series would need more than
    `SERIES_TERMS` (or its range reaches 0.5: fast membranes)."""
    r = max(dt / n.tau_rc for n in neuron_types)
    bound = -math.expm1(-r) * 1.01  # with room for the arithmetic's rounding
    if bound >= 0.5:
        return None
    tolerance = float(np.finfo(np.dtype(dtype)).eps) / 16
    expm1_terms = next(
        (k for k in range(1, SERIES_TERMS + 1) if r**k / math.factorial(k + 1) <= tolerance), None
    )
    log1p_terms = next(
        (k for k in range(1, SERIES_TERMS + 1) if bound**k / (k + 1) <= tolerance * (1 - bound)),
        None,
    )
    if expm1_terms is None or log1p_terms is None:
        return None
    return Series(expm1_terms, log1p_terms, bound)


@neuron(nengo.LIF, "lif", ["voltage", "refractory_time"], series=_lif_series)
def _(n, dt):
    return _lif_constants(n, dt)


@neuron(
    nengo.AdaptiveLIF,
    "adaptive_lif",
    ["voltage", "refractory_time", "adaptation"],
    series=_lif_series,
)
def _(n, dt):
    return {**_lif_constants(n, dt), "dt_over_tau_n": dt / n.tau_n, "inc_n": n.inc_n}


@neuron(nengo.Izhikevich, "izhikevich", ["voltage", "recovery"])
def _(n, dt):
    return {
        # Nengo's numbers: dV = (0.04 * voltage**2 + 5 * voltage + 140 - recovery + J) * 1000
        "k2": 0.04,
        "k1": 5.0,
        "k0": 140.0,
        "thousand": 1000.0,
        "dt": dt,
        "inv_dt": 1.0 / dt,  # Nengo's (voltage >= 30) / dt
        "tau_recovery": n.tau_recovery,
        "coupling": n.coupling,
        "reset_voltage": n.reset_voltage,
        "reset_recovery": n.reset_recovery,
        "zero": -0.0,
    }


# ---- rate-to-spike wrappers (J is the base type's rate)


def _wrapper_options(n):
    return {"negative": bool(n.negative)}  # from the base type


@neuron(nengo.RegularSpiking, "regular_spiking", ["voltage"])
def _(n, dt):
    return {"dt": dt, "amplitude_over_dt": n.amplitude / dt, "zero": -0.0}


@neuron(nengo.StochasticSpiking, "stochastic_spiking", options=_wrapper_options, random=True)
def _(n, dt):
    return {"dt": dt, "amplitude_over_dt": n.amplitude / dt, "zero": -0.0}


@neuron(nengo.PoissonSpiking, "poisson_spiking", options=_wrapper_options, random=True, no_xla=True)
def _(n, dt):
    return {"dt": dt, "amplitude_over_dt": n.amplitude / dt}


#: the smoothing (``sigma`` of `SoftLIFRate`) of the rate that LIF neurons train
#: with by default (NengoDL's ``lif_smoothing``)
LIF_SMOOTHING = 0.05


def rate_counterpart(n, smoothing: float | None = LIF_SMOOTHING):
    """The rate type that trains in place of the spiking type ``n`` (the
    rate swap: the same ``tau_rc``, ``tau_ref`` and ``amplitude``), a
    wrapper's ``amplitude`` (its rate is ``amplitude * J``), or None."""
    lowering = lowering_for(n)
    name = lowering.name if lowering else ""
    if name == "LIF":
        if smoothing:
            return SoftLIFRate(smoothing, tau_rc=n.tau_rc, tau_ref=n.tau_ref, amplitude=n.amplitude)
        return nengo.LIFRate(tau_rc=n.tau_rc, tau_ref=n.tau_ref, amplitude=n.amplitude)
    if name == "SpikingRectifiedLinear":
        return nengo.RectifiedLinear(amplitude=n.amplitude)
    if name in ("RegularSpiking", "StochasticSpiking", "PoissonSpiking"):
        return float(n.amplitude)
    return None


def _training(ops, out, params, ctx) -> Training | None:
    """The rate step of a spiking group in a trainable module (None: a rate
    type, which trains as it runs)."""
    if not ops[0].neurons.spiking:
        return None
    smoothing = ctx.lif_smoothing
    rates = [rate_counterpart(op.neurons, smoothing) for op in ops]
    if rates[0] is None:
        name = type(ops[0].neurons).__name__
        return Training(reason=f"{name} neurons have no rate counterpart to train with")
    if isinstance(rates[0], float):  # a rate-to-spike wrapper: amplitude * J
        template, per_op = "neurons/scaled_rate.py.j2", [{"amplitude": a} for a in rates]
    else:
        lowering = NEURONS[type(rates[0])]
        template = lowering.template
        per_op = [lowering.constants(r, ctx.dt) for r in rates]
    consts = {}
    for name in per_op[0]:
        values = op_order_values(
            out,
            [np.full(op.output.size, c[name]) for op, c in zip(ops, per_op)],
            out.access.size,
        )
        consts[name] = params.const(f"rate_{name}", values)
    return Training(template=template, consts=consts)


def _held(params, name: str, values) -> ir.Const:
    """A constant read from a parameter (one element where all are equal),
    which the graph optimizer and XLA cannot fold (see the module)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size > 0 and np.all(values == values[0]):
        values = values[:1]
    return ir.Const(param=params.add(name, values))


def _title(neuron_type) -> str:
    name = type(neuron_type).__name__
    base = getattr(neuron_type, "base_type", None)
    return f"{name}({type(base).__name__})" if base is not None else name


@register(SimNeurons)
class NeuronsKind(OpKind):
    """SimNeurons: ``output, *state = neuron_type.step(dt, J, *state)``.

    Its key merges operators of one registered neuron type (and options); a
    type without a lowering is a ``neuron_stub`` (`neuron_stubs`).
    """

    name = "neurons"
    template = "neurons.py.j2"
    rank = 1

    def key(self, op, ctx):
        lowering = lowering_for(op.neurons)
        if lowering is None:
            return stub_key(op)
        return ("neurons", "merge", lowering.name, *_options(lowering, op.neurons))

    def accesses(self, ops, ctx):
        lowering = lowering_for(ops[0].neurons)
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
        lowering = lowering_for(neuron_type)
        out = acc["output"]
        per_op = [lowering.constants(op.neurons, ctx.dt) for op in ops]
        exact = np.dtype(ctx.dtype) == np.float64  # Nengo's roundings (see the module)
        consts, held = {}, {}
        for name in per_op[0]:
            values = op_order_values(
                out,
                [np.full(op.output.size, c[name]) for op, c in zip(ops, per_op)],
                out.access.size,
            )
            if exact:
                consts[name] = _held(params, name, values)
                if values.size and np.all(values == values[0]):
                    held[name] = float(values[0])
            else:
                consts[name] = params.const(name, values)
        series = None
        if lowering.series is not None:
            series = lowering.series([op.neurons for op in ops], ctx.dt, ctx.dtype)
        if series is not None:  # 1.0, held: the division that XLA computes once
            consts["series_one"] = _held(params, "series_one", [1.0])
        reads = {"J": acc["J"].access}
        reads.update({name: acc[name].access for name in lowering.state})
        writes = {"output": out.access}
        writes.update({name: acc[f"{name}_new"].access for name in lowering.state})
        titles = sorted({_title(op.neurons) for op in ops})
        return ir.Group(
            index,
            self.name,
            self.template,
            f"{', '.join(titles)} x{len(ops)} ({out.access.size} neurons)",
            tuple(ctx.names(op) for op in ops),
            reads=reads,
            writes=writes,
            consts=consts,
            values=Neurons(
                neuron_template=lowering.template,
                state=lowering.state,
                dt=ctx.dt,
                options=dict(_options(lowering, neuron_type)),
                salt=index,  # distinguishes this group's random draws
                held=held,
                training=None if ctx.train_sources is None else _training(ops, out, params, ctx),
                series=series,
            ),
            random=lowering.random,
            no_xla=lowering.no_xla,
        )
