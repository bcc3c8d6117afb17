"""float16 models: compiled in float16 (TensorFlow's half kernels), against
``nengo.Simulator`` with Nengo's float16 precision (``rc``), as Nengo's own
``test_dtype[16]`` runs them."""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.rc import rc

from nengo_compile import Simulator


@pytest.fixture
def float16():
    rc["precision"]["bits"] = "16"
    yield
    rc["precision"]["bits"] = "64"


def _net(seed):
    with nengo.Network(seed=seed) as net:
        u = nengo.Node([0.5, -0.4])
        a = nengo.Ensemble(10, 2)
        nengo.Connection(u, a)
        net.p16 = [nengo.Probe(a), nengo.Probe(a, synapse=0.01), nengo.Probe(a.neurons)]
    return net


def _run(simulator, net, steps=1000, **kwargs):
    with simulator(net, progress_bar=False, **kwargs) as sim:
        sim.run_steps(steps)
        dtypes = {v.dtype for v in sim.signals.values()}
        return [sim.data[p] for p in net.p16], dtypes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float16_matches_nengo(float16, seed):
    """Signals and probes are float16 (int16 steps) as in Nengo. Nengo's float16
    NumPy arithmetic and TensorFlow's round alike until a neuron's voltage
    rounds otherwise (measured: the first spike moves at step 71-110 for these
    seeds); every neuron then still spikes as often, and the filtered value
    stays within float16's own error."""
    (ref, ref_dtypes), (ours, dtypes) = (
        _run(nengo.Simulator, _net(seed)),
        _run(Simulator, _net(seed)),
    )
    assert dtypes == ref_dtypes <= {np.dtype(np.float16), np.dtype(np.int16)}
    for x, y in zip(ref, ours):
        assert y.dtype == x.dtype == np.float16
        assert np.array_equal(y[:50], x[:50])
    spikes, ref_spikes = (ours[2] > 0).sum(0), (ref[2] > 0).sum(0)
    assert np.array_equal(spikes, ref_spikes)
    late = slice(500, None)  # measured: means 3e-4 apart at most
    assert np.allclose(ours[1][late].mean(0), ref[1][late].mean(0), atol=0.005)


def test_float16_dtype_argument():
    """``dtype="float16"`` compiles float16 whatever Nengo's precision; the
    built parameters then stay Nengo's (float64), as its builder made them."""
    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(10, 1)
        p = nengo.Probe(a, synapse=0.01)
    with Simulator(net, dtype="float16", progress_bar=False) as sim:
        sim.run_steps(10)
        assert sim.dtype == "float16"
        assert sim.data[p].dtype == np.float16
