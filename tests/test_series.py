"""expm1 and log1p by series under XLA (LIF types): as exact as the functions
on the arguments they are for, the functions themselves past them, and a LIF
model from a state outside them still as Nengo runs it."""

from __future__ import annotations

import nengo
import numpy as np
import pytest
import tensorflow as tf

from nengo_compile.kinds.neurons import _lif_series
from nengo_compile.runtime.ops import _expm1_series, _log1p_series

from .conftest import compile_and_load, reference

#: (tau_rc, dt) pairs: Nengo's default, a slow membrane, a fast one
CASES = [(0.02, 0.001), (0.05, 0.001), (0.004, 0.001)]


def _ulps(got, want, dtype):
    """Distance in units in the last place of ``want`` (in ``dtype``)."""
    want = want.astype(dtype)
    return np.max(np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want)))


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("tau_rc, dt", CASES)
def test_series_are_as_exact_as_the_functions(tau_rc, dt, dtype, jit):
    """Within 2 ulp of NumPy's expm1 and log1p (computed in float64) over the
    whole range each series is for, with the lengths the compiler picks."""
    series = _lif_series([nengo.LIF(tau_rc=tau_rc)], dt, dtype)
    assert series is not None
    r = dt / tau_rc
    x_exp = np.linspace(-r, 0, 20001)[:-1]  # expm1(-delta_t / tau_rc), delta_t in (0, dt]
    x_log = np.linspace(-series.bound, series.bound, 20001)
    x_log = x_log[x_log != 0]
    one = tf.constant([1.0], dtype)

    @tf.function(jit_compile=jit, autograph=False)
    def both(a, b):
        return _expm1_series(a, series.expm1, one), _log1p_series(b, series.log1p, series.bound)

    got_exp, got_log = both(tf.constant(x_exp[None], dtype), tf.constant(x_log[None], dtype))
    assert _ulps(got_exp.numpy()[0], np.expm1(x_exp.astype(dtype)), dtype) <= 2
    assert _ulps(got_log.numpy()[0], np.log1p(x_log.astype(dtype)), dtype) <= 2


@pytest.mark.parametrize("jit", [True, False])
def test_log1p_series_falls_back_past_its_bound(jit):
    """One argument past the bound: every value is log1p's (the series would
    be far off at 0.9 and diverge at -0.9 and 3)."""
    series = _lif_series([nengo.LIF()], 0.001, "float64")
    x = np.array([[0.01, -0.02, 0.9, -0.9, 3.0]])

    @tf.function(jit_compile=jit, autograph=False)
    def log1p(x):
        return _log1p_series(x, series.log1p, series.bound)

    assert _ulps(log1p(tf.constant(x)).numpy(), np.log1p(x), np.float64) <= 2


def test_lengths_follow_the_range_and_precision():
    default = _lif_series([nengo.LIF()], 0.001, "float64")
    assert default.bound == pytest.approx(-np.expm1(-0.05) * 1.01)
    # a merged group takes its fastest membrane's range
    assert _lif_series([nengo.LIF(tau_rc=0.05), nengo.LIF()], 0.001, "float64") == default
    short = _lif_series([nengo.LIF()], 0.001, "float32")
    assert short.expm1 < default.expm1 and short.log1p < default.log1p
    # no series where one would be too long: the module calls the functions
    assert _lif_series([nengo.LIF(tau_rc=0.001)], 0.001, "float64") is None
    assert _lif_series([nengo.LIF(tau_rc=0.001)], 0.0001, "float64") is not None


def test_lif_from_voltages_above_threshold_matches_nengo(tmp_path):
    """Initial voltages up to 1.5 put the first step's spike times past the
    log1p series' bound: with XLA, float64, the module still matches Nengo
    (spikes identical, states within 1e-9), and the series ran in the other
    steps (the module's LIF group computes by series). Currents of 2-4 keep
    Nengo's own log1p finite."""
    lif = nengo.LIF(initial_state={"voltage": nengo.dists.Uniform(0, 1.5)})
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(0.8)
        ens = nengo.Ensemble(40, 1, neuron_type=lif, gain=np.ones(40), bias=np.linspace(2, 4, 40))
        nengo.Connection(stim, ens)
        probes = [nengo.Probe(ens.neurons, attr) for attr in ("output", *lif.state)]
    data, _ = reference(net, 300)
    compiled, module = compile_and_load(net, tmp_path, dtype="float64")
    assert "_log1p_series(overshoot" in compiled.source
    outputs = module.Model(jit_compile=True).run(300)
    for probe, name, ref in zip(probes, module.PROBES, data):
        got = outputs[name][0]
        if probe.attr == "output":
            np.testing.assert_array_equal(got, ref)
            assert got[0].sum() > 0  # voltages above 1 spiked at once
        assert np.max(np.abs(got - ref)) <= 1e-9, probe.attr
