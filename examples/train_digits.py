"""Train a spiking network to classify scikit-learn's 8x8 digits, then run it spiking.

    python examples/train_digits.py              # under a minute on 2 cores
    python examples/train_digits.py --epochs 2   # shorter

The network: 64 pixels -> 256 LIF neurons -> 10 class scores. It is compiled
with ``trainable=True``, trained through its Keras layer with ``fit`` on one
step per image, the LIF neurons swapped for their differentiable rate
counterpart (``Model(training_neurons="rate")``, as NengoDL trains), and then
run spiking: each image shown for ``--steps`` steps, the class read from the
mean output.
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
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout
from nengo_compile import compile_network  # noqa: E402
from nengo_compile.write import import_generated, write  # noqa: E402


def glorot(n_in, n_out):
    """Random initial weights (Glorot's uniform)."""
    limit = np.sqrt(6 / (n_in + n_out))
    return nengo.dists.Uniform(-limit, limit)


def network(n_hidden=256, seed=0):
    with nengo.Network(label="digits", seed=seed) as net:
        pixels = nengo.Node(lambda t: np.zeros(64), label="pixels")  # fed: an input
        hidden = nengo.Ensemble(
            n_hidden,
            1,
            neuron_type=nengo.LIF(amplitude=0.01),
            max_rates=nengo.dists.Choice([100]),
            intercepts=nengo.dists.Choice([0]),
            label="hidden",
        )
        scores = nengo.Node(size_in=10, label="scores")
        nengo.Connection(pixels, hidden.neurons, transform=glorot(64, n_hidden), synapse=None)
        nengo.Connection(hidden.neurons, scores, transform=glorot(n_hidden, 10), synapse=None)
        nengo.Probe(scores, label="scores")
    return net


def accuracy(scores, labels):
    return float(np.mean(np.argmax(scores, axis=-1) == labels))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100, help="spiking steps per test image")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)  # fit's shuffling
    digits = load_digits()
    images = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=0
    )

    folder = Path(tempfile.mkdtemp(prefix="train_digits_"))
    compiled = compile_network(network(), trainable=True, module_name="digits_tf")
    write(folder / "digits_tf.py", folder / "digits_tf.npz", compiled.source, compiled.params)
    module = import_generated("digits_tf", folder / "digits_tf.py")
    model = module.Model(training_neurons="rate")

    # Keras: images as one step each ([batch, 1, 64]) -> class scores [batch, 1, 10]
    layer = model.keras_layer(inputs=["pixels"], probes=["scores"])
    x = keras.Input((1, 64), batch_size=None)
    classifier = keras.Model(x, layer(x))
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    train = x_train[:, None, :], y_train[:, None]
    test = x_test[:, None, :], y_test[:, None]

    def rate_loss(inputs, labels):  # loss and accuracy with the rate neurons
        scores = model.forward(inputs, training=True)["scores"].numpy()
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, scores)
        return float(loss), accuracy(scores[:, 0], labels[:, 0])

    def spiking_accuracy():  # each image held for args.steps steps, the mean score
        shown = np.repeat(x_test[:, None, :], args.steps, axis=1)
        scores = model.run(args.steps, inputs={"pixels": shown})["scores"]
        return accuracy(scores.mean(axis=1), y_test)

    before, _ = rate_loss(*train)
    print(f"before training: loss {before:.3f}, spiking test accuracy {spiking_accuracy():.1%}")
    classifier.fit(*train, batch_size=32, epochs=args.epochs, verbose=0)
    after, _ = rate_loss(*train)
    test_loss, rate_accuracy = rate_loss(*test)
    print(f"after {args.epochs} epochs: loss {after:.3f} (test {test_loss:.3f})")
    print(f"rate test accuracy {rate_accuracy:.1%}")
    print(f"spiking test accuracy ({args.steps} steps per image) {spiking_accuracy():.1%}")
    model.save_params(folder / "digits_trained.npz")  # Model(params_file=...) loads it
    print(f"trained parameters: {folder / 'digits_trained.npz'}")
    return before, after


if __name__ == "__main__":
    main()
