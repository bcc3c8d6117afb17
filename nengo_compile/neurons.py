"""Neuron types that nengo-compile adds to Nengo.

`SoftLIFRate` is an ordinary `nengo.neurons.NeuronType`: any Nengo model can
use it, ``nengo.Simulator`` runs it through its NumPy ``step``, and the
compiler lowers it to ``templates/neurons/soft_lif_rate.py.j2``, which computes
the same expressions in the same order.
"""

from __future__ import annotations

import numpy as np
from nengo.exceptions import ValidationError
from nengo.neurons import NeuronType
from nengo.params import NumberParam

__all__ = ["SoftLIFRate"]


class SoftLIFRate(NeuronType):
    """The LIF rate curve, smoothed around its threshold.

    The LIF rate ``amplitude / (tau_ref + tau_rc * log1p(1 / j))`` with
    ``j = J - 1`` is zero below threshold and has an infinite slope at it. The
    soft LIF replaces ``max(j, 0)`` by the softplus
    ``sigma * log1p(exp(j / sigma))``, which gives a rate with a continuous
    first derivative everywhere, so networks can be trained with it and then
    run with `nengo.LIF` (Hunsberger & Eliasmith 2015, arXiv:1510.08829). As
    ``sigma`` goes to zero it becomes `nengo.LIFRate`.

    Parameters
    ----------
    sigma : float
        Smoothing width, in units of input current (larger: smoother).
    tau_rc : float
        Membrane RC time constant, in seconds.
    tau_ref : float
        Absolute refractory period, in seconds.
    amplitude : float
        Scaling factor on the output.
    initial_state : {str: Distribution or array_like}
        Unused (the type has no state); accepted as by every neuron type.

    Notes
    -----
    The rate is computed without overflow for any finite input:
    ``x = (J - 1) / sigma``; the softplus is ``max(x, 0) + log1p(exp(-|x|))``
    (written per side of ``x = 0``, so that its automatic derivative is right there);
    below threshold ``log1p(1 / j)`` is evaluated as
    ``log1p(j) - log(sigma) - log(softplus(x))`` with
    ``log(softplus(x)) = x + log(log1p(e^x) / e^x)``, which stays finite
    where ``e^x`` underflows. Far below threshold the rate decays like
    ``amplitude / (tau_rc * (1 - J) / sigma)`` and never reaches zero, so the
    *intercept* of a soft LIF neuron is where the LIF threshold ``J = 1`` lies.
    """

    negative = False

    sigma = NumberParam("sigma", low=0, low_open=True)
    tau_rc = NumberParam("tau_rc", low=0, low_open=True)
    tau_ref = NumberParam("tau_ref", low=0)
    amplitude = NumberParam("amplitude", low=0, low_open=True)

    def __init__(self, sigma=1.0, tau_rc=0.02, tau_ref=0.002, amplitude=1, initial_state=None):
        super().__init__(initial_state)
        self.sigma = sigma
        self.tau_rc = tau_rc
        self.tau_ref = tau_ref
        self.amplitude = amplitude

    def step(self, dt, J, output):
        """Set ``output`` to the soft LIF rate of the currents ``J``."""
        output[...] = self.amplitude / (self.tau_ref + self.tau_rc * self._log_term(J))

    def _log_term(self, J):
        """``log1p(1 / (sigma * softplus((J - 1) / sigma)))``, finite for finite J.

        The template ``soft_lif_rate.py.j2`` computes the same expressions.
        """
        sigma = self.sigma
        x = (np.asarray(J, dtype=float) - 1.0) / sigma
        above = x > 0.0
        u = np.exp(np.where(above, -x, x))  # exp(-|x|), in [0, 1]: no overflow
        softplus = np.where(above, x, 0.0) + np.log1p(u)
        # above threshold: log1p(1 / j) directly (j >= sigma * log(2))
        j = sigma * np.where(above, softplus, 1.0)
        log_above = np.log1p(1.0 / j)
        # below: log(1 + j) - log(j), with log(softplus(x)) = x + log(log1p(u) / u)
        # log1p(u) / u -> 1 as u -> 0; it rounds to 1 for u <= 1e-17, and is
        # computed only above (the template's derivative stays finite there)
        positive = u > 1e-17
        u_safe = np.where(positive, u, 1.0)
        ratio = np.where(positive, np.log1p(u) / u_safe, 1.0)
        log_below = np.log1p(sigma * softplus) - np.log(sigma) - (x + np.log(ratio))
        return np.where(above, log_above, log_below)

    def rates(self, x, gain, bias):
        """The rates for inputs ``x`` (the step is exact for any ``dt``)."""
        J = self.current(x, gain, bias)
        out = np.zeros_like(J)
        self.step(dt=1.0, J=J, output=out)
        return out

    def gain_bias(self, max_rates, intercepts):
        """Gain and bias from max rates and intercepts, in closed form.

        The intercept is where the LIF threshold ``J = 1`` lies; the rate at
        ``x = 1`` is ``max_rates`` (without ``amplitude``, as for `nengo.LIFRate`).
        We invert the rate curve: ``j = 1 / expm1((1 / r - tau_ref) / tau_rc)``,
        then the softplus: ``x = y + log(-expm1(-y))`` with ``y = j / sigma``.
        """
        max_rates = np.asarray(np.atleast_1d(max_rates), dtype=float)
        intercepts = np.asarray(np.atleast_1d(intercepts), dtype=float)
        threshold_rate = 1.0 / (
            self.tau_ref + self.tau_rc * np.log1p(1.0 / (self.sigma * np.log(2)))
        )
        inv_tau_ref = 1.0 / self.tau_ref if self.tau_ref > 0 else np.inf
        if not np.all((max_rates > threshold_rate) & (max_rates < inv_tau_ref)):
            raise ValidationError(
                f"Max rates must lie between the rate at threshold ({threshold_rate:0.3f}) "
                f"and the inverse refractory period ({inv_tau_ref:0.3f})",
                attr="max_rates",
                obj=self,
            )
        j = 1.0 / np.expm1((1.0 / max_rates - self.tau_ref) / self.tau_rc)
        y = j / self.sigma
        J_top = 1.0 + self.sigma * (y + np.log(-np.expm1(-y)))
        gain = (J_top - 1.0) / (1.0 - intercepts)
        bias = 1.0 - gain * intercepts
        return gain, bias

    def max_rates_intercepts(self, gain, bias):
        """The inverse of `gain_bias`."""
        gain = np.asarray(gain, dtype=float)
        bias = np.asarray(bias, dtype=float)
        intercepts = (1.0 - bias) / gain
        max_rates = 1.0 / (self.tau_ref + self.tau_rc * self._log_term(gain + bias))
        return max_rates, intercepts
