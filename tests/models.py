"""A corpus of small Nengo models, each exercising part of the compiler.

Every function returns a seeded network with probes; ``CORPUS`` lists them.
Node functions are plain Python callables: the compiled module serves them
through ``node_functions`` (see ``NODE_FUNCTIONS``).
"""

from __future__ import annotations

import nengo
import numpy as np


def feedforward():
    with nengo.Network(seed=1, label="feedforward") as net:
        stim = nengo.Node([0.5, -0.3], label="stim")
        a = nengo.Ensemble(60, 2, label="a")
        b = nengo.Ensemble(50, 1, label="b")
        nengo.Connection(stim, a)
        nengo.Connection(a, b, function=lambda x: x[0] * x[1], synapse=0.01)
        nengo.Probe(a, synapse=0.02, label="a")
        nengo.Probe(b, synapse=0.02, label="b")
        nengo.Probe(b.neurons, label="b_spikes")
    return net


def integrator():
    with nengo.Network(seed=2, label="integrator") as net:
        stim = nengo.Node(0.8)
        ens = nengo.Ensemble(100, 1, label="integrator")
        tau = 0.1
        nengo.Connection(stim, ens, transform=tau, synapse=tau)
        nengo.Connection(ens, ens, synapse=tau)
        nengo.Probe(ens, synapse=0.01, label="value")
        nengo.Probe(ens.neurons, "voltage", label="voltage")
    return net


def oscillator():
    with nengo.Network(seed=3, label="oscillator") as net:
        kick = nengo.Node([1.0, 0.0])
        osc = nengo.Ensemble(200, 2, label="osc")
        nengo.Connection(kick, osc, transform=0.1)
        nengo.Connection(osc, osc, transform=[[1.0, 1.0], [-1.0, 1.0]], synapse=0.1)
        nengo.Probe(osc, synapse=0.02, label="state")
    return net


def ensemble_array():
    with nengo.Network(seed=4, label="ensemble array") as net:
        stim = nengo.Node([0.2, -0.4, 0.6])
        arr = nengo.networks.EnsembleArray(30, n_ensembles=3, label="arr")
        out = nengo.networks.EnsembleArray(25, n_ensembles=3, label="out")
        nengo.Connection(stim, arr.input)
        nengo.Connection(arr.output, out.input, transform=-1.5)
        nengo.Probe(arr.output, synapse=0.01, label="arr")
        nengo.Probe(out.output, synapse=0.01, label="out")
    return net


def neuron_connections():
    rng = np.random.RandomState(5)
    with nengo.Network(seed=5, label="neurons") as net:
        stim = nengo.Node([0.7])
        a = nengo.Ensemble(40, 1)
        b = nengo.Ensemble(30, 1)
        c = nengo.Ensemble(20, 1)
        nengo.Connection(stim, a)
        nengo.Connection(a.neurons, b.neurons, transform=rng.randn(30, 40) * 1e-3)
        nengo.Connection(a.neurons, c.neurons[::2], transform=rng.randn(10, 40) * 1e-3)
        nengo.Connection(b.neurons[[1, 5, 7]], c.neurons[[0, 3, 3]], transform=0.01)
        nengo.Connection(stim, b.neurons, transform=np.ones((30, 1)))
        nengo.Probe(b.neurons, label="b_spikes")
        nengo.Probe(c.neurons, label="c_spikes")
        nengo.Probe(c.neurons, "input", label="c_input")
    return net


def slicing_and_functions():
    with nengo.Network(seed=6, label="slicing") as net:
        stim = nengo.Node([0.3, -0.5, 0.8])
        a = nengo.Ensemble(80, 3)
        b = nengo.Ensemble(60, 2)
        c = nengo.Ensemble(40, 1)
        nengo.Connection(stim, a)
        nengo.Connection(a[[0, 2]], b, function=lambda x: [x[0] ** 2, -x[1]])
        nengo.Connection(a[1], b[1], transform=0.5)
        nengo.Connection(b, c, function=lambda x: x[0] + x[1], synapse=0.005)
        nengo.Connection(stim[::2], c, transform=[[0.1, -0.1]])
        nengo.Probe(b, synapse=0.02, label="b")
        nengo.Probe(c, synapse=0.02, label="c")
        nengo.Probe(a[1:], synapse=0.02, label="a_tail")
    return net


def transforms():
    with nengo.Network(seed=7, label="transforms") as net:
        stim = nengo.Node([0.5, 0.25, -0.5, 1.0])
        a = nengo.Ensemble(80, 4)
        b = nengo.Ensemble(60, 2)
        c = nengo.Ensemble(50, 2)
        nengo.Connection(stim, a)
        solver = nengo.solvers.LstsqL2(weights=True)
        nengo.Connection(b, c, transform=[[0, 1], [1, 0]], solver=solver)
        nengo.Probe(c, synapse=0.03, label="c")
        nengo.Connection(a, b, transform=nengo.Dense((2, 4), init=np.arange(8).reshape(2, 4) / 8))
        sparse = nengo.Sparse((20, 80), indices=[[0, 1], [5, 3], [19, 79]], init=[0.5, -0.7, 2])
        nengo.Connection(a.neurons, b.neurons[:20], transform=sparse)
        nengo.Connection(stim[0], b[1], transform=-0.2, synapse=None)
        nengo.Probe(b, synapse=0.03, label="b")
        nengo.Probe(b, "input", label="b_input")
    return net


def synapses():
    with nengo.Network(seed=8, label="synapses") as net:
        stim = nengo.Node([0.9])
        a = nengo.Ensemble(50, 1, label="a")
        kinds = {
            "none": None,
            "lowpass": nengo.Lowpass(0.01),
            "alpha": nengo.Alpha(0.005),
            "triangle": nengo.synapses.Triangle(0.01),
            "general": nengo.LinearFilter([1.0], [0.001, 0.05, 1.0]),  # 2nd-order
            "passthrough": nengo.LinearFilter([2.0, 1.0], [1.0, 20.0]),  # has D
            "discrete": nengo.LinearFilter([0.1], [1, -0.9], analog=False),
            "gain": nengo.LinearFilter([0.5], [1.0]),  # no state
        }
        nengo.Connection(stim, a)
        for name, synapse in kinds.items():
            node = nengo.Node(size_in=1, label=name)
            nengo.Connection(a, node, synapse=synapse)
            nengo.Probe(node, label=name)
        nengo.Probe(a, synapse=nengo.Alpha(0.01), label="probe_alpha")
    return net


def probes():
    with nengo.Network(seed=9, label="probes") as net:
        stim = nengo.Node([0.4, -0.2])
        passthrough = nengo.Node(size_in=2, label="passthrough")
        a = nengo.Ensemble(30, 2, label="a")
        nengo.Connection(stim, passthrough)
        conn = nengo.Connection(passthrough, a, synapse=0.01)
        nengo.Probe(stim, label="stim")
        nengo.Probe(passthrough, synapse=0.01, label="passthrough")
        nengo.Probe(a, synapse=None, label="decoded")
        nengo.Probe(a, "input", label="a_input")
        nengo.Probe(a, "scaled_encoders", label="encoders")
        nengo.Probe(a.neurons, "output", synapse=0.005, label="rates")
        nengo.Probe(a.neurons, "refractory_time", label="refractory")
        nengo.Probe(conn, "output", label="conn_output")
        nengo.Probe(conn, "input", label="conn_input")
        nengo.Probe(a, synapse=0.01, sample_every=0.005, label="sampled")
    return net


def neuron_types():
    types = {
        "lif": nengo.LIF(),
        "lif_slow": nengo.LIF(tau_rc=0.05, tau_ref=0.003, min_voltage=-1, amplitude=0.5),
        "lif_rate": nengo.LIFRate(amplitude=2.0),
        "relu": nengo.RectifiedLinear(),
        "spiking_relu": nengo.SpikingRectifiedLinear(amplitude=0.3),
        "sigmoid": nengo.Sigmoid(tau_ref=0.005),
        "tanh": nengo.Tanh(tau_ref=0.004),
    }
    with nengo.Network(seed=10, label="neuron types") as net:
        stim = nengo.Node([0.6])
        for name, neuron_type in types.items():
            max_rates = nengo.dists.Uniform(100, 180)
            ens = nengo.Ensemble(30, 1, neuron_type=neuron_type, max_rates=max_rates, label=name)
            nengo.Connection(stim, ens)
            nengo.Probe(ens.neurons, label=f"{name}_neurons")
            nengo.Probe(ens, synapse=0.01, label=f"{name}_value")
    return net


def mixed_parameters():
    """Ensembles of one type with different parameters merge into one group."""
    with nengo.Network(seed=11, label="mixed") as net:
        stim = nengo.Node([0.3])
        prev = stim
        for i, tau_rc in enumerate([0.01, 0.02, 0.03, 0.04]):
            ens = nengo.Ensemble(25, 1, neuron_type=nengo.LIF(tau_rc=tau_rc), label=f"e{i}")
            nengo.Connection(prev, ens, synapse=0.005 * (i + 1))
            nengo.Probe(ens.neurons, "voltage", label=f"v{i}")
            prev = ens
    return net


def node_functions():
    with nengo.Network(seed=12, label="node functions") as net:
        sine = nengo.Node(lambda t: np.sin(8 * t), label="sine")
        square = nengo.Node(size_in=1, output=lambda t, x: x**2, label="square")
        a = nengo.Ensemble(50, 1, label="a")
        nengo.Connection(sine, a)
        nengo.Connection(a, square, synapse=0.01)
        nengo.Probe(square, label="square")
        nengo.Probe(a, synapse=0.01, label="a")
    return net


class Pulse:
    """A callable object that raises one element of its state, at a position
    computed from t (a store at a computed index: translated)."""

    def __init__(self):
        self.values = np.zeros(3)

    def __call__(self, t):
        self.values[:] = 0.1
        self.values[int(t / 0.02 % 3)] = 0.8
        return self.values


class Router:
    """Sends its input to one of three outputs, chosen by t. (Its state is
    rewritten every step: the round trips simulate a network with Nengo
    before compiling it, and compiled state starts from the object's.)"""

    def __init__(self):
        self.out = np.zeros(3)

    def __call__(self, t, x):
        self.out[:] = 0.0
        self.out[int(t / 0.01) % len(self.out)] = x[0]
        return self.out


def computed_stores():
    with nengo.Network(seed=14, label="computed stores") as net:
        pulse = nengo.Node(Pulse(), label="pulse")
        a = nengo.Ensemble(60, 3, label="a")
        nengo.Connection(pulse, a)
        router = nengo.Node(Router(), size_in=1, label="router")
        nengo.Connection(a[1], router, synapse=0.01)
        nengo.Probe(pulse, label="pulse")
        nengo.Probe(router, label="router")
    return net


def lif_chain(n=4, neurons=20):
    with nengo.Network(seed=13, label="chain") as net:
        stim = nengo.Node([0.5])
        prev = stim
        for i in range(n):
            ens = nengo.Ensemble(neurons, 1, label=f"e{i}")
            nengo.Connection(prev, ens)
            prev = ens
        nengo.Probe(prev, synapse=0.01, label="out")
    return net


#: The Python functions of `node_functions()`, by label.
NODE_FUNCTIONS = {
    "sine": lambda t: np.sin(8 * t),
    "square": lambda t, x: x**2,
}

CORPUS = {
    f.__name__: f
    for f in (
        feedforward,
        integrator,
        oscillator,
        ensemble_array,
        neuron_connections,
        slicing_and_functions,
        transforms,
        synapses,
        probes,
        neuron_types,
        mixed_parameters,
        node_functions,
        computed_stores,
        lif_chain,
    )
}
