"""Nengo's processes other than synapses: noise and signal sources.

Each process type gets a merge key (registered in `synapses.PROCESS_KEYS`,
which `SimProcess`'s key consults) and an op kind with one template.

Deterministic processes are compiled exactly; their values are computed here,
with Nengo's own code where it has any, and selected with the step counter:

* ``PresentInput``: the input table; the row index uses Nengo's float64
  formula ``int((t - dt) / presentation_time + 1e-7)``.
* ``Piecewise``: ``"zero"`` interpolation becomes the first step of each
  piece (Nengo's ``searchsorted(tp, t + dt / 2)`` rule evaluated here) and a
  table of values; the other interpolations are nonzero only between the
  first and last time, so Nengo's interpolator is tabulated per step there.
* ``WhiteSignal`` with its own ``seed``: periodic, so Nengo's code computes
  one whole period here, exactly as ``nengo.Simulator`` does.

Random processes are generated in TF with counter-based (Philox) stateless
draws: the key is the model's ``rng_seed`` (or the process's own ``seed``, so
that, as in Nengo, it does not change with the simulator's seed) and the
counter holds the step and a stream number per group. Runs agree; batch rows
and groups differ; the values follow Nengo's distributions, not its draws:

* ``WhiteNoise``, ``FilteredNoise``, ``BrownNoise`` (and ensemble ``noise``
  made of them): one draw per step from the process's distribution
  (``Gaussian``, ``Uniform``, ``Exponential``), scaled by ``1 / sqrt(dt)``
  when ``scale``, then (``FilteredNoise``) filtered by the synapse with the
  step form Nengo picks.
* ``WhiteSignal`` without a seed: Nengo's spectrum (the same band-limited
  Fourier coefficients, drawn once per run) evaluated at ``step % period``.
"""

from __future__ import annotations

import numpy as np
from nengo.dists import Choice, Exponential, Gaussian, Uniform
from nengo.exceptions import ValidationError
from nengo.processes import FilteredNoise, Piecewise, PresentInput, WhiteNoise, WhiteSignal
from nengo.synapses import LinearFilter
from nengo.utils.numpy import rfftfreq

from . import ir
from .kinds import AccessRequest, OpKind, op_order_values, register, seg
from .synapses import PROCESS_KEYS, _state_order, filter_constants

#: the largest table (values per batch element) a process may precompute
MAX_TABLE = 2**24
#: random counters are ``step * STREAMS + stream``: at most this many streams
STREAMS = 2**24
_MODES = {"update": "update", "set": "set", "inc": "inc"}


def _tag(op) -> str:
    return op.tag or str(op)


def _process_key(*types):
    """Register a merge key function for process types (and plain subclasses)."""

    def decorate(fn):
        def key(op, ctx):
            process = op.process
            base = next(t for t in types if isinstance(process, t))
            for method in ("make_step", "make_state"):
                if getattr(type(process), method) is not getattr(base, method):
                    raise NotImplementedError(
                        f"process {type(process).__name__} overrides {method} ({_tag(op)})"
                    )
            if op.input is not None:
                raise NotImplementedError(f"{type(process).__name__} with an input ({_tag(op)})")
            return fn(op, ctx)

        for cls in types:
            PROCESS_KEYS[cls] = key
        return fn

    return decorate


def _write_mode(ops) -> str:
    return _MODES[ops[0].mode]


def _output_request(ops):
    return AccessRequest("output", _write_mode(ops), tuple(seg(op.output) for op in ops))


# ---- random draws ------------------------------------------------------------


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
    kind, _ = _distribution(op.process.dist, "float64", _tag(op))
    seeded = op.process.seed is not None
    return ("single" if seeded else "merge", op.mode, kind)


def _draw_values(index, ops, out, params, ctx) -> dict:
    """Template values for the random draw of a group: distribution constants
    per element, the gain (``1 / sqrt(dt)`` where ``scale``) and the seed."""
    process = ops[0].process
    kind, _ = _distribution(process.dist, ctx.dtype, _tag(ops[0]))
    per_op = [_distribution(op.process.dist, ctx.dtype, _tag(op))[1] for op in ops]
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
    draw = "normal" if kind == "gaussian" else "uniform"
    return {
        "dist": kind,
        "draw": draw,
        "dist_consts": consts,
        "gain": gain,
        "key": key,
        "key_source": "process seed" if process.seed is not None else "model seed",
        "stream": stream,
        "streams": STREAMS,
        "size": size,
    }


class SourceKind(OpKind):
    """A process with no input: it only writes its output."""

    rank = 4

    def accesses(self, ops, ctx):
        return [_output_request(ops)]


@_process_key(WhiteNoise)
def _white_noise_key(op, ctx):
    return ("white_noise", *_noise_key(op, ctx))


@register
class WhiteNoiseKind(SourceKind):
    """WhiteNoise: ``output = gain * sample(dist)`` each step."""

    name = "white_noise"
    template = "white_noise.py.j2"

    def lower(self, index, ops, acc, params, ctx):
        out = acc["output"]
        values = _draw_values(index, ops, out, params, ctx)
        return ir.Group(
            index,
            self.name,
            self.template,
            f"WhiteNoise[{values['dist']}] x{len(ops)} ({out.access.size} values)",
            tuple(ctx.names(op) for op in ops),
            writes={"output": out.access},
            values=values,
        )


def _filter_form(op, dt):
    """Nengo's step form for the noise filter: (name, (A, B, C, D))."""
    synapse = op.process.synapse
    if not isinstance(synapse, LinearFilter):
        raise NotImplementedError(
            f"FilteredNoise with synapse {type(synapse).__name__} ({_tag(op)})"
        )
    A, B, C, D = synapse._get_ss(dt)
    X = op.state["X"].initial_value
    for cls in (LinearFilter.NoX, LinearFilter.OneX, LinearFilter.NoD, LinearFilter.General):
        if cls.check(A, B, C, D, X):
            return cls.__name__, (A, B, C, D)
    raise NotImplementedError(f"noise filter {synapse} has an unexpected form ({_tag(op)})")


@_process_key(FilteredNoise)  # and BrownNoise, a FilteredNoise
def _filtered_noise_key(op, ctx):
    step, (A, _, _, _) = _filter_form(op, ctx.dt)
    return ("filtered_noise", *_noise_key(op, ctx), step, len(A))


@register
class FilteredNoiseKind(OpKind):
    """FilteredNoise, BrownNoise: white noise through a LinearFilter.

    The filter steps as in `synapses.LinearFilterKind` (Nengo's NoX, OneX,
    NoD or General form), with the noise as its input.
    """

    name = "filtered_noise"
    template = "filtered_noise.py.j2"
    rank = 4

    def accesses(self, ops, ctx):
        requests = [_output_request(ops)]
        step, _ = _filter_form(ops[0], ctx.dt)
        if step != "NoX":
            segments = tuple(seg(op.state["X"], _state_order(op)) for op in ops)
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
        values = _draw_values(index, ops, out, params, ctx)
        values.update(step=step, order=k, flat_size=size * k)
        return ir.Group(
            index,
            self.name,
            self.template,
            f"FilteredNoise[{values['dist']}, {step}, order {k}] x{len(ops)} ({size} values)",
            tuple(ctx.names(op) for op in ops),
            reads=reads,
            writes=writes,
            consts=consts,
            values=values,
        )


# ---- WhiteSignal ---------------------------------------------------------------


def _white_signal_check(op, dt):
    process = op.process
    nyquist = 0.5 / dt
    if process.high > nyquist:  # Nengo's own error, raised by nengo.Simulator too
        raise ValidationError(
            f"High must not exceed the Nyquist frequency for the given dt ({nyquist:0.3f})",
            attr="high",
            obj=process,
        )
    n_coefficients = int(np.ceil(process.period / dt / 2.0))
    if process.seed is not None and 2 * n_coefficients * op.output.size > MAX_TABLE:
        raise NotImplementedError(f"WhiteSignal period too long to tabulate ({_tag(op)})")
    if process.seed is None and process.y0 is not None:
        raise NotImplementedError(
            f"WhiteSignal with y0 and no seed ({_tag(op)}); give the process a seed "
            "(a seeded WhiteSignal is compiled exactly)"
        )


@_process_key(WhiteSignal)
def _white_signal_key(op, ctx):
    _white_signal_check(op, ctx.dt)
    return ("white_signal", "single")


@register
class WhiteSignalKind(SourceKind):
    """WhiteSignal: a band-limited periodic signal.

    With a process seed, one period computed by Nengo's own ``make_step`` is
    stored and indexed by ``step % period`` (exact). Without one, the Fourier
    coefficients Nengo would draw are drawn once per run from the model seed,
    and the inverse real FFT is evaluated at the current step as a sum over
    the coefficients below the cut-off.
    """

    name = "white_signal"
    template = "white_signal.py.j2"

    def lower(self, index, ops, acc, params, ctx):
        (op,) = ops
        process = op.process
        out = acc["output"]
        size = op.output.size
        dt = ctx.dt
        n = int(np.ceil(process.period / dt / 2.0))  # Nengo's n_coefficients
        period = 2 * n
        group = dict(
            index=index,
            kind=self.name,
            template=self.template,
            sources=(ctx.names(op),),
            writes={"output": out.access},
        )
        if process.seed is not None:
            rng = np.random.RandomState(process.seed)
            step_f = process.make_step((0,), (size,), dt, rng, {})
            table = np.array([step_f(s * dt) for s in range(period)]).reshape(period, size)
            values = {"exact": True, "size": size, "period": period}
            values["table"] = params.add("white_signal", table)
            title = f"WhiteSignal (seed {process.seed}, period of {period} steps, exact)"
            return ir.Group(**group, title=title, values=values)

        # Nengo: coefficients c_k = (N(0, s) + i N(0, s)) * sqrt(2n) / correction for
        # the frequencies k / (2n dt) <= high (c_0 = 0, c_n real); the signal is
        # irfft(c)[j] = (1/2n) (c_n (-1)^j + 2 sum_{0<k<n} Re(c_k exp(2 pi i k j / 2n))).
        freqs = rfftfreq(2 * n, d=dt)
        zero = freqs > process.high
        correction = np.sqrt(1.0 - np.sum(zero, dtype=float) / n)
        scale = process.rms * np.sqrt(0.5) * np.sqrt(2 * n) / period
        if correction > 0.0:
            scale /= correction
        ks = np.flatnonzero(~zero)
        ks = ks[ks > 0]
        w_cos = np.where(ks == n, scale, 2 * scale)
        w_sin = np.where(ks == n, 0.0, 2 * scale)
        values = {
            "exact": False,
            "size": size,
            "period": period,
            "n_freqs": len(ks),
            "freqs": params.add("ws_freq", ks, dtype=np.int64),
            "w_cos": params.add("ws_cos", w_cos),
            "w_sin": params.add("ws_sin", w_sin),
            "angle": 2 * np.pi / period,
            "key": "rng_seed",
            "stream": index + 1,
            "streams": STREAMS,
        }
        title = f"WhiteSignal (period of {period} steps, {len(ks)} frequencies, random)"
        return ir.Group(**group, title=title, values=values)


# ---- PresentInput -------------------------------------------------------------


@_process_key(PresentInput)
def _present_input_key(op, ctx):
    return ("present_input", "single")


@register
class PresentInputKind(SourceKind):
    """PresentInput: row ``int((t - dt) / presentation_time + 1e-7) % n`` of
    the inputs, computed in float64 as Nengo computes it."""

    name = "present_input"
    template = "present_input.py.j2"

    def lower(self, index, ops, acc, params, ctx):
        (op,) = ops
        process = op.process
        inputs = np.asarray(process.inputs, dtype=np.float64)
        n = len(inputs)
        table = inputs.reshape(n, -1)
        return ir.Group(
            index,
            self.name,
            self.template,
            f"PresentInput ({n} inputs of {table.shape[1]} values)",
            (ctx.names(op),),
            writes={"output": acc["output"].access},
            values={
                "table": params.add("present", table),
                "n": n,
                "size": table.shape[1],
                "presentation_time": float(process.presentation_time),
                "eps": 1e-7,  # Nengo's guard against rounding down
            },
        )


# ---- Piecewise ----------------------------------------------------------------


def _piecewise_check(op):
    if any(callable(v) for v in op.process.data.values()):
        raise NotImplementedError(f"Piecewise with a callable value ({_tag(op)})")


@_process_key(Piecewise)
def _piecewise_key(op, ctx):
    _piecewise_check(op)
    return ("piecewise", "single")


def _first_step(tk: float, dt: float) -> int:
    """The first step ``s`` at which Nengo's zero-order Piecewise has reached
    time ``tk``: the least ``s`` with ``tk < s * dt + 0.5 * dt`` (float64)."""
    s = int(np.floor((tk - 0.5 * dt) / dt)) - 2
    while not tk < s * dt + 0.5 * dt:
        s += 1
    while tk < (s - 1) * dt + 0.5 * dt:
        s -= 1
    return s


@register
class PiecewiseKind(SourceKind):
    """Piecewise.

    ``"zero"`` interpolation: the value of piece ``sum(step >= first_steps)``
    (piece 0 is zeros). Other interpolations: Nengo's own interpolator,
    evaluated here at every step from just before the first time to just
    after the last, outside which it is zero.
    """

    name = "piecewise"
    template = "piecewise.py.j2"

    def lower(self, index, ops, acc, params, ctx):
        (op,) = ops
        process = op.process
        dt = ctx.dt
        size = op.output.size
        tp, yp = zip(*sorted(process.data.items()))
        group = dict(
            index=index,
            kind=self.name,
            template=self.template,
            sources=(ctx.names(op),),
            writes={"output": acc["output"].access},
        )
        if process.interpolation == "zero":
            limit = 2**62
            steps = [min(max(_first_step(float(tk), dt), -limit), limit) for tk in tp]
            table = np.vstack([np.zeros(size)] + [np.ravel(y) for y in yp])
            values = {
                "zero": True,
                "size": size,
                "steps": params.add("pw_step", steps, dtype=np.int64),
                "table": params.add("pw_value", table),
            }
            title = f"Piecewise (zero, {len(tp)} pieces)"
            return ir.Group(**group, title=title, values=values)

        lo = max(int(np.floor(tp[0] / dt)) - 2, 0)
        hi = max(int(np.ceil(tp[-1] / dt)) + 2, lo)
        if (hi - lo + 1) * size > MAX_TABLE:
            raise NotImplementedError(
                f"Piecewise {process.interpolation} interpolation over {hi - lo + 1} steps is "
                f"too long to tabulate ({_tag(op)})"
            )
        step_f = process.make_step((0,), (size,), dt, None, {})
        # Nengo's step function is vectorised over t: one row per step
        table = np.asarray(step_f(np.arange(lo, hi + 1) * dt), dtype=np.float64)
        table = table.reshape(hi - lo + 1, size)
        assert not table[-1].any() and (lo == 0 or not table[0].any())
        values = {
            "zero": False,
            "size": size,
            "lo": lo,
            "hi": hi,
            "table": params.add("pw_value", table),
        }
        title = f"Piecewise ({process.interpolation}, tabulated over {hi - lo + 1} steps)"
        return ir.Group(**group, title=title, values=values)


# ---- processes that stay Python ------------------------------------------------


class ProcessStep:
    """Nengo's own step function of a process, to serve its hook.

    The compiled module calls it as ``fn(t)`` or ``fn(t, x)``; it needs Nengo
    (the process object), so `nengo_compile.Simulator` serves it, and users of
    a compiled module can pass it in ``node_functions``. ``reset(rng)`` starts
    it over with fresh state, as ``nengo.Simulator.reset`` does.
    """

    def __init__(self, op, dt):
        self.op = op
        self.dt = dt
        self.step = None

    def reset(self, rng=np.random):
        op, process = self.op, self.op.process
        shape_in = op.input.shape if op.input is not None else (0,)
        state = {name: np.array(sig.initial_value) for name, sig in op.state.items()}
        self.step = process.make_step(
            shape_in, op.output.shape, self.dt, process.get_rng(rng), state
        )

    def __call__(self, t, *x):
        if self.step is None:
            self.reset()
        return self.step(t, *x)


@register
class ProcessHookKind(OpKind):
    """A process that cannot be compiled (a custom ``Process``, or a variant of
    a standard one that has no TF form): a named hook, like a Node function."""

    name = "process_hook"
    template = "pyfunc.py.j2"
    rank = 4

    def accesses(self, ops, ctx):
        (op,) = ops
        requests = [_output_request(ops)]
        if op.input is not None and not ctx.is_const(op.input):
            requests.append(AccessRequest("x", "read", (seg(op.input),)))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        (op,) = ops
        hook = ctx.hooks[op]
        consts = {}
        if op.input is not None and "x" not in acc:
            value = np.asarray(op.input.initial_value, dtype=np.float64).reshape(-1)
            consts["x"] = ir.Const(param=params.add("hook_x", value))
        return ir.Group(
            index,
            self.name,
            self.template,
            f"hook {hook.name!r} (process)",
            (ctx.names(op),),
            reads={"x": acc["x"].access} if "x" in acc else {},
            writes={"output": acc["output"].access},
            consts=consts,
            values={"hook": hook, "reason": hook.reason},
        )
