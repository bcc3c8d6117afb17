"""Deterministic signal sources: WhiteSignal, PresentInput, Piecewise.

Deterministic processes are compiled exactly; their values are computed here,
with Nengo's own code where it has any, and selected with the step counter:

* ``PresentInput``: the input table; the row index uses Nengo's float64
  formula ``int((t - dt) / presentation_time + 1e-7)``.
* ``Piecewise``: ``"zero"`` interpolation becomes the first step of each
  piece (Nengo's ``searchsorted(tp, t + dt / 2)`` rule evaluated here) and a
  table of values; the other interpolations are nonzero only between the
  first and last time, so Nengo's interpolator is tabulated per step there.
* ``WhiteSignal``: periodic, and its whole period is drawn once, in
  ``make_step``, so Nengo's code computes that period here, exactly as
  ``nengo.Simulator`` does, and the step counter indexes it. With its own
  ``seed`` the period is always the same. Without one, ``nengo.Simulator``
  draws it from the generator its rule gives the process (`SimulatorRngs`:
  the simulator seed, the step order, the unseeded processes before it); the
  period is that of the default simulator seed ``SEED + 1``. Under another
  seed (``Model(seed=...)``) the module draws Nengo's spectrum instead (the
  same band-limited Fourier coefficients, Philox draws, once per run)
  evaluated at ``step % period``; with ``y0`` (whose shift needs the whole
  period) the default seed's period is kept.

  Exact for ``nengo.Simulator(optimize=False)``, and for the default
  ``optimize=True`` where the WhiteSignal is a Node's (its operator then has
  no predecessor, and Nengo's toposort takes every such operator first, in
  build order, which the optimizer keeps). Nengo's optimizer iterates sets of
  operators, so where other operators precede it (a WhiteSignal as ensemble
  ``noise``), its place in Nengo's own step order, and so its period, can
  change from one Python process to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from nengo.exceptions import ValidationError
from nengo.processes import Piecewise, PresentInput, WhiteSignal
from nengo.utils.numpy import rfftfreq

from .. import ir
from .base import register, tag
from .process import MAX_TABLE, STREAMS, SourceKind


@dataclass(frozen=True)
class ExactSignal(ir.Payload):
    """One period of a WhiteSignal, tabulated: row ``step % period``."""

    size: int
    period: int
    table: str
    exact: ClassVar[bool] = True


@dataclass(frozen=True)
class RandomSignal(ir.Payload):
    """An unseeded WhiteSignal: Fourier coefficients drawn once per run (key
    code and stream), evaluated at ``step % period``; where ``table`` is
    given, under the seed ``exact_seed`` Nengo's own period instead."""

    size: int
    period: int
    n_freqs: int
    freqs: str
    w_cos: str
    w_sin: str
    angle: float
    key: str
    stream: int
    streams: int
    table: str | None = None
    exact_seed: int | None = None
    exact: ClassVar[bool] = False


@dataclass(frozen=True)
class Presented(ir.Payload):
    """PresentInput's table and Nengo's index formula's constants."""

    table: str
    n: int
    size: int
    presentation_time: float
    eps: float


@dataclass(frozen=True)
class ZeroPieces(ir.Payload):
    """Zero-order Piecewise: the first step of each piece, and its values."""

    size: int
    steps: str
    table: str
    zero: ClassVar[bool] = True


@dataclass(frozen=True)
class TabulatedPieces(ir.Payload):
    """Piecewise tabulated per step from ``lo`` to ``hi`` (zero outside)."""

    size: int
    lo: int
    hi: int
    table: str
    zero: ClassVar[bool] = False


def _white_signal_check(op, dt):
    process = op.process
    nyquist = 0.5 / dt
    if process.high > nyquist:  # Nengo's own error, raised by nengo.Simulator too
        raise ValidationError(
            f"High must not exceed the Nyquist frequency for the given dt ({nyquist:0.3f})",
            attr="high",
            obj=process,
        )
    if _tabulate(op, dt) is None:
        raise NotImplementedError(f"WhiteSignal period too long to tabulate ({tag(op)})")


def _tabulate(op, dt) -> bool | None:
    """Whether the WhiteSignal's period is tabulated (None: it must be, and
    is too long)."""
    process = op.process
    n_coefficients = int(np.ceil(process.period / dt / 2.0))
    fits = 2 * n_coefficients * op.output.size <= MAX_TABLE
    if process.seed is not None or process.y0 is not None:
        return True if fits else None
    return fits


def _period(op, dt, rng):
    """One period of the WhiteSignal, from Nengo's own ``make_step`` with ``rng``."""
    size = op.output.size
    n = int(np.ceil(op.process.period / dt / 2.0))
    step_f = op.process.make_step((0,), (size,), dt, rng, {})
    return np.array([step_f(s * dt) for s in range(2 * n)]).reshape(2 * n, size)


@register(WhiteSignal)
class WhiteSignalKind(SourceKind):
    """WhiteSignal: a band-limited periodic signal.

    One period computed by Nengo's own ``make_step`` is stored and indexed
    by ``step % period`` (exact): with the process's seed, or without one with
    the generator ``nengo.Simulator`` gives the process under the default
    seed (``ctx.simulator_rngs``). Without a seed and with ``y0=None``, another
    seed draws the Fourier coefficients Nengo would draw, once per run, from
    the model seed, and evaluates the inverse real FFT at the current step as
    a sum over the coefficients below the cut-off.
    """

    name = "white_signal"
    template = "white_signal.py.j2"

    def process_key(self, op, ctx):
        _white_signal_check(op, ctx.dt)
        return ("white_signal", "single")

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
            table = _period(op, dt, np.random.RandomState(process.seed))
            values = ExactSignal(size, period, params.add("white_signal", table))
            title = f"WhiteSignal (seed {process.seed}, period of {period} steps, exact)"
            return ir.Group(**group, title=title, values=values)

        rngs = ctx.simulator_rngs
        rng = rngs.rng(op) if rngs is not None and _tabulate(op, dt) else None
        if process.y0 is not None:
            if rng is None:
                raise NotImplementedError(
                    f"WhiteSignal with y0 and no seed ({tag(op)}) without a simulator seed"
                )
            # the shift to y0 needs the whole period: the default seed's is kept
            table = _period(op, dt, rng)
            values = ExactSignal(size, period, params.add("white_signal", table))
            title = (
                f"WhiteSignal (no seed, y0; period of {period} steps drawn as by "
                f"nengo.Simulator(seed={rngs.seed}), for every seed)"
            )
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
        values = RandomSignal(
            size=size,
            period=period,
            n_freqs=len(ks),
            freqs=params.add("ws_freq", ks, dtype=np.int64),
            w_cos=params.add("ws_cos", w_cos),
            w_sin=params.add("ws_sin", w_sin),
            angle=2 * np.pi / period,
            key="rng_seed",
            stream=index + 1,
            streams=STREAMS,
        )
        title = f"WhiteSignal (period of {period} steps, {len(ks)} frequencies, random)"
        if rng is not None:
            table = params.add("white_signal", _period(op, dt, rng))
            values = replace(values, table=table, exact_seed=rngs.seed)
            title = (
                f"WhiteSignal (no seed; seed {rngs.seed}: period of {period} steps as "
                f"nengo.Simulator draws it; other seeds: {len(ks)} frequencies, random)"
            )
        return ir.Group(**group, title=title, values=values, random=True)


# ---- PresentInput -------------------------------------------------------------


@register(PresentInput)
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
            values=Presented(
                table=params.add("present", table),
                n=n,
                size=table.shape[1],
                presentation_time=float(process.presentation_time),
                eps=1e-7,  # Nengo's guard against rounding down
            ),
        )


# ---- Piecewise ----------------------------------------------------------------


def _piecewise_check(op):
    if any(callable(v) for v in op.process.data.values()):
        raise NotImplementedError(f"Piecewise with a callable value ({tag(op)})")


def _first_step(tk: float, dt: float) -> int:
    """The first step ``s`` at which Nengo's zero-order Piecewise has reached
    time ``tk``: the least ``s`` with ``tk < s * dt + 0.5 * dt`` (float64)."""
    s = int(np.floor((tk - 0.5 * dt) / dt)) - 2
    while not tk < s * dt + 0.5 * dt:
        s += 1
    while tk < (s - 1) * dt + 0.5 * dt:
        s -= 1
    return s


@register(Piecewise)
class PiecewiseKind(SourceKind):
    """Piecewise.

    ``"zero"`` interpolation: the value of piece ``sum(step >= first_steps)``
    (piece 0 is zeros). Other interpolations: Nengo's own interpolator,
    evaluated here at every step from just before the first time to just
    after the last, outside which it is zero.
    """

    name = "piecewise"
    template = "piecewise.py.j2"

    def process_key(self, op, ctx):
        _piecewise_check(op)
        return ("piecewise", "single")

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
            values = ZeroPieces(
                size=size,
                steps=params.add("pw_step", steps, dtype=np.int64),
                table=params.add("pw_value", table),
            )
            title = f"Piecewise (zero, {len(tp)} pieces)"
            return ir.Group(**group, title=title, values=values)

        lo = max(int(np.floor(tp[0] / dt)) - 2, 0)
        hi = max(int(np.ceil(tp[-1] / dt)) + 2, lo)
        if (hi - lo + 1) * size > MAX_TABLE:
            raise NotImplementedError(
                f"Piecewise {process.interpolation} interpolation over {hi - lo + 1} steps is "
                f"too long to tabulate ({tag(op)})"
            )
        step_f = process.make_step((0,), (size,), dt, None, {})
        # Nengo's step function is vectorised over t: one row per step
        table = np.asarray(step_f(np.arange(lo, hi + 1) * dt), dtype=np.float64)
        table = table.reshape(hi - lo + 1, size)
        assert not table[-1].any() and (lo == 0 or not table[0].any())
        values = TabulatedPieces(size, lo, hi, params.add("pw_value", table))
        title = f"Piecewise ({process.interpolation}, tabulated over {hi - lo + 1} steps)"
        return ir.Group(**group, title=title, values=values)
