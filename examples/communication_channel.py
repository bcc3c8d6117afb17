"""A communication channel: a sine wave passed through two LIF ensembles.

Compile it with::

    nengo-compile examples/communication_channel.py -o build/channel_tf.py

The input is a function of time, which the compiler translates to TensorFlow;
the compiled module computes it unless it is fed through the input named
``stimulus`` (shape ``[batch, n_steps, 1]``), as ``examples/run_channel.py`` does.
"""

import nengo
import numpy as np

model = nengo.Network(label="communication channel", seed=0)
with model:
    stimulus = nengo.Node(lambda t: np.sin(2 * np.pi * t), label="stimulus")
    a = nengo.Ensemble(100, dimensions=1, label="a")
    b = nengo.Ensemble(100, dimensions=1, label="b")
    nengo.Connection(stimulus, a)
    nengo.Connection(a, b, synapse=0.01)
    nengo.Probe(a, synapse=0.01, label="a")
    nengo.Probe(b, synapse=0.01, label="b")
    nengo.Probe(b.neurons, label="b_spikes")

if __name__ == "__main__":
    with nengo.Simulator(model) as sim:
        sim.run(1.0)
