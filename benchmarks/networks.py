"""The benchmark networks, written from their published descriptions.

NengoDL's ``benchmarks.py`` describes five networks that Nengo backends are
compared on; these are our own versions of them, with the sizes of issue 7:

* ``integrator``: one 32-D integrator of 64 neurons per dimension (an ensemble
  with a recurrent connection, tau 0.1, and its input scaled by tau, as Nengo
  2's ``nengo.networks.Integrator`` built it), fed by a constant node;
* ``cconv``: ``nengo.networks.CircularConvolution`` of two 32-D constant
  vectors, 64 neurons per dimension;
* ``random``: 20 ensembles of 16 dimensions x 32 neurons per dimension, each fed
  by the input node, decoded into the output node and connected to 5 randomly
  picked ensembles (all decoders fixed to ones, so no solver runs);
* ``pes``: a 32-D ensemble (64 neurons per dimension) whose decoded connection
  to a second ensemble learns with PES from the error ``input - post``;
* ``basal_ganglia``: ``nengo.networks.BasalGanglia`` of 64 actions, 150 neurons
  per ensemble (48,000 neurons, the "~50k").

Every ensemble gets gain 1 or -1 and a bias in [-1, 1] (the benchmarks'
convention, so building does not depend on tuning curves), and every network
has one probe on its output. All are seeded.
"""

from __future__ import annotations

import random

import nengo
import numpy as np

LIF = nengo.LIF
RELU = nengo.RectifiedLinear


def _configure(net, neuron_type):
    net.config[nengo.Ensemble].neuron_type = neuron_type
    net.config[nengo.Ensemble].gain = nengo.dists.Choice([1, -1])
    net.config[nengo.Ensemble].bias = nengo.dists.Uniform(-1, 1)


def integrator(dimensions=32, neurons_per_d=64, neuron_type=LIF, seed=0, tau=0.1):
    with nengo.Network(label="integrator", seed=seed) as net:
        _configure(net, neuron_type())
        stim = nengo.Node(np.zeros(dimensions), label="stim")
        ens = nengo.Ensemble(neurons_per_d * dimensions, dimensions, label="integrator")
        nengo.Connection(stim, ens, transform=tau, synapse=tau)
        nengo.Connection(ens, ens, synapse=tau)
        nengo.Probe(ens, label="value")
    return net


def cconv(dimensions=32, neurons_per_d=64, neuron_type=LIF, seed=0):
    with nengo.Network(label="cconv", seed=seed) as net:
        _configure(net, neuron_type())
        a = nengo.Node(np.zeros(dimensions), label="a")
        b = nengo.Node(np.ones(dimensions), label="b")
        conv = nengo.networks.CircularConvolution(neurons_per_d, dimensions)
        nengo.Connection(a, conv.input_a)
        nengo.Connection(b, conv.input_b)
        nengo.Probe(conv.output, label="output")
    return net


def random_network(
    dimensions=16,
    neurons_per_d=32,
    neuron_type=LIF,
    n_ensembles=20,
    connections_per_ensemble=5,
    seed=0,
):
    picker = random.Random(seed)
    n_neurons = neurons_per_d * dimensions
    ones = nengo.solvers.NoSolver(np.ones((n_neurons, dimensions)))
    with nengo.Network(label="random", seed=seed) as net:
        _configure(net, neuron_type())
        stim = nengo.Node(np.zeros(dimensions), label="stim")
        out = nengo.Node(size_in=dimensions, label="out")
        ensembles = [nengo.Ensemble(n_neurons, dimensions) for _ in range(n_ensembles)]
        for ens in ensembles:
            # every ensemble is fed and read, so none is left without a use
            nengo.Connection(stim, ens)
            nengo.Connection(ens, out, solver=ones)
            for post in picker.sample(ensembles, connections_per_ensemble):
                nengo.Connection(ens, post, solver=ones)
        nengo.Probe(out, label="output")
    return net


def pes(dimensions=32, neurons_per_d=64, neuron_type=LIF, seed=0):
    with nengo.Network(label="pes", seed=seed) as net:
        _configure(net, neuron_type())
        stim = nengo.Node(np.ones(dimensions), label="stim")
        pre = nengo.Ensemble(neurons_per_d * dimensions, dimensions, label="pre")
        post = nengo.Ensemble(neurons_per_d * dimensions, dimensions, label="post")
        error = nengo.Node(size_in=dimensions, label="error")
        nengo.Connection(stim, pre)
        nengo.Connection(post, error, transform=-1)
        nengo.Connection(stim, error)
        learned = nengo.Connection(pre, post, learning_rule_type=nengo.PES())
        nengo.Connection(error, learned.learning_rule)
        nengo.Probe(post, label="post")
    return net


def basal_ganglia(dimensions=64, neurons_per_ensemble=150, neuron_type=RELU, seed=0):
    with nengo.Network(label="basal_ganglia", seed=seed) as net:
        _configure(net, neuron_type())
        stim = nengo.Node(np.ones(dimensions), label="stim")
        net.bg = nengo.networks.BasalGanglia(dimensions, neurons_per_ensemble)
        nengo.Connection(stim, net.bg.input)
        nengo.Probe(net.bg.output, label="output")
    return net


#: name -> (function, description)
NETWORKS = {
    "integrator_lif": (lambda: integrator(neuron_type=LIF), "integrator 32D x 64 n/d, LIF"),
    "integrator_relu": (lambda: integrator(neuron_type=RELU), "integrator 32D x 64 n/d, ReLU"),
    "cconv": (lambda: cconv(), "circular convolution 32D x 64 n/d, LIF"),
    "random": (lambda: random_network(), "random: 20 ens 16D x 32 n/d, 5 conn, LIF"),
    "pes": (lambda: pes(), "PES 32D x 64 n/d, LIF"),
    "basal_ganglia": (lambda: basal_ganglia(), "basal ganglia 64 actions, 48k ReLU"),
}


def chain_of_ensemble_arrays(n_arrays, n_ensembles=10, neurons=10, seed=0):
    """For compile-time scaling: ``n_arrays`` EnsembleArrays of ``n_ensembles``
    1-D ensembles in a chain (about ``30 * n_arrays * n_ensembles`` operators)."""
    with nengo.Network(label="scaling", seed=seed) as net:
        stim = nengo.Node(np.zeros(n_ensembles), label="stim")
        prev = stim
        for _ in range(n_arrays):
            arr = nengo.networks.EnsembleArray(neurons, n_ensembles)
            nengo.Connection(prev, arr.input)
            prev = arr.output
        nengo.Probe(prev, synapse=0.01, label="out")
    return net
