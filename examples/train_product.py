"""Train a spiking network to multiply its two inputs, with surrogate gradients.

    python examples/train_product.py               # under a minute on 2 cores
    python examples/train_product.py --updates 50  # shorter

The network: two inputs in [-1, 1] -> 200 LIF neurons -> their product, read
out through a 10 ms synapse by weights that start at zero. It is compiled with
``trainable=True`` and trained in a plain ``tf.GradientTape`` loop over
``model.forward``: with ``Model(training_neurons="surrogate")`` the neurons
spike in training too, and the gradient takes the derivative of their rate
(NengoDL trains with the rate swap only). Each input pair is held for
``STEPS`` steps; the error is taken over the last ``TAIL`` of them.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout
from nengo_compile import compile_network  # noqa: E402
from nengo_compile.write import import_generated, write  # noqa: E402

STEPS, TAIL = 60, 20


def network(n_neurons=200, seed=0):
    with nengo.Network(label="product", seed=seed) as net:
        xy = nengo.Node(lambda t: np.zeros(2), label="xy")  # fed: an input
        ens = nengo.Ensemble(n_neurons, 2, radius=1.5, label="ens")
        product = nengo.Node(size_in=1, label="product")
        nengo.Connection(xy, ens, synapse=None)
        nengo.Connection(ens.neurons, product, transform=np.zeros((1, n_neurons)), synapse=0.01)
        nengo.Probe(product, label="product")
    return net


def pairs(n, rng):
    """``n`` input pairs, each held for STEPS steps, and their products."""
    xy = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    return np.repeat(xy[:, None, :], STEPS, axis=1), xy[:, :1] * xy[:, 1:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=100, help="optimizer steps")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="train_product_"))
    compiled = compile_network(network(), trainable=True, module_name="product_tf")
    write(folder / "product_tf.py", folder / "product_tf.npz", compiled.source, compiled.params)
    module = import_generated("product_tf", folder / "product_tf.py")
    model = module.Model(training_neurons="surrogate")

    rng = np.random.default_rng(0)
    test_inputs, test_targets = pairs(256, rng)

    def loss(inputs, targets, training):
        out = model.forward({"xy": inputs}, training=training)["product"]
        return tf.reduce_mean((out[:, -TAIL:] - targets[:, None, :]) ** 2)

    def spiking_error():  # training=False: spiking, no gradient
        return float(loss(test_inputs, test_targets, training=False))

    before = spiking_error()
    print(f"before training: spiking test error (MSE) {before:.4f}")
    optimizer = keras.optimizers.Adam(2e-4)
    variables = model.trainable_variables
    for update in range(1, args.updates + 1):
        inputs, targets = pairs(args.batch, rng)
        with tf.GradientTape() as tape:
            value = loss(inputs, targets, training=True)  # spikes; surrogate gradient
        optimizer.apply_gradients(zip(tape.gradient(value, variables), variables))
        if update % 50 == 0 or update == args.updates:
            print(f"update {update}: training loss {float(value):.4f}")
    after = spiking_error()
    print(f"after {args.updates} updates: spiking test error (MSE) {after:.4f}")
    model.save_params(folder / "product_trained.npz")  # Model(params_file=...) loads it
    print(f"trained parameters: {folder / 'product_trained.npz'}")
    return before, after


if __name__ == "__main__":
    main()
