"""Training benchmark: nengo-compile's Keras layer against NengoDL 3.6's ``sim.fit``.

    python benchmarks/training.py                          # small and medium
    python benchmarks/training.py --sizes small --epochs 3
    python benchmarks/training.py --peer-python /work/peer-venv/bin/python

The same Nengo network (same seed, so the same initial parameters) learns the
product of its two inputs from single-step samples (``synapse=None``, as
NengoDL's docs train), LIF neurons trained as their rate (our
``training_neurons="rate"``; NengoDL trains so by default), float32, Adam,
mean squared error, one Keras ``fit`` per framework:

* ours: ``compile_network(net, trainable=True)``, ``model.keras_layer()`` in a
  ``keras.Model`` (Keras 3), ``fit``;
* NengoDL: ``nengo_dl.Simulator(net, minibatch_size=...)``, ``sim.compile``,
  ``sim.fit`` (tf_keras, the Keras 2 API it needs), run by the peer venv of
  ``../shared/peers/nengodl/README.md`` in its own process (Keras 3 and
  tf_keras do not share one).

Each framework runs in a subprocess of this script (``--worker``): a first
``fit`` of one epoch (tracing, XLA compilation, the epoch), then ``--epochs``
more, timed, as optimizer steps per second; the loss is Keras' mean over each
epoch. Each worker runs ``--repeats`` times, the kinds alternating; the best
steps/s of each is reported (every value in brackets, the setup, first epoch
and losses of the first run), and the ratio is ours over NengoDL's best.

Not quite the same neurons in training: our rate swap is
``SoftLIFRate(sigma=0.05)``, NengoDL's default ``LIFRate`` (its
``lif_smoothing`` unset); the losses they reach agree closely (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from peer import DEFAULT_PEER_PYTHON, peer_env, report, spawn_worker  # noqa: E402

#: worker -> what it runs
KINDS = {
    "ours": "nengo-compile, XLA (defaults)",
    "ours_graph": "nengo-compile, no XLA",
    "nengodl": "NengoDL 3.6",
}
#: name -> hidden LIF layers (neurons in each)
SIZES = {"small": (128,), "medium": (512, 512)}


def network(hidden):
    """Two inputs -> LIF layers -> one output, weights from the last layer at zero
    (spikes of amplitude 0.01, as in NengoDL's examples: rates of order 1)."""
    import nengo
    import numpy as np

    LIF = nengo.LIF(amplitude=0.01)
    with nengo.Network(label="product", seed=0) as net:
        x = nengo.Node(lambda t: np.zeros(2), label="x")  # fed
        layer = nengo.Ensemble(hidden[0], 2, neuron_type=LIF, label="layer0")
        nengo.Connection(x, layer, synapse=None)
        for i, n in enumerate(hidden[1:], 1):
            post = nengo.Ensemble(n, 1, neuron_type=LIF, label=f"layer{i}")
            limit = np.sqrt(6 / (layer.n_neurons + n))  # Glorot's uniform
            weights = nengo.dists.Uniform(-limit, limit)
            nengo.Connection(layer.neurons, post.neurons, transform=weights, synapse=None)
            layer = post
        y = nengo.Node(size_in=1, label="y")
        nengo.Connection(layer.neurons, y, transform=np.zeros((1, layer.n_neurons)), synapse=None)
        probe = nengo.Probe(y, label="y")
    return net, x, probe


def data(n, seed):
    import numpy as np

    xy = np.random.default_rng(seed).uniform(-1, 1, size=(n, 1, 2)).astype(np.float32)
    return xy, xy[..., :1] * xy[..., 1:]


def run_ours(args):
    import keras

    sys.path.insert(0, str(ROOT))  # this checkout's nengo_compile
    from nengo_compile import compile_network
    from nengo_compile.write import import_generated, write

    net, _, _ = network(SIZES[args.size])
    start = time.perf_counter()
    compiled = compile_network(net, trainable=True, module_name="train_bench_tf")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train_bench_tf.py"
        write(path, path.with_suffix(".npz"), compiled.source, compiled.params)
        module = import_generated("train_bench_tf", path)
        # xla: the defaults (Model() compiles with XLA, Keras' jit_compile="auto",
        # off on a machine without GPU);
        # graph: neither (Model(jit_compile=False), compile(jit_compile=False))
        xla = args.worker == "ours"
        model = module.Model(training_neurons="rate", jit_compile=xla)
    setup = time.perf_counter() - start
    layer = model.keras_layer()
    inputs = keras.Input((1, 2))
    trainer = keras.Model(inputs, layer(inputs))
    trainer.compile(
        optimizer=keras.optimizers.Adam(args.lr), loss="mse", jit_compile="auto" if xla else False
    )

    def fit(epochs):
        x, y = data(args.samples, 1)
        return trainer.fit(x, y, batch_size=args.batch, epochs=epochs, verbose=0, shuffle=False)

    return _timed(fit, setup, args)


def run_nengodl(args):
    import nengo_dl
    import tensorflow as tf

    net, x_node, probe = network(SIZES[args.size])
    start = time.perf_counter()
    options = dict(minibatch_size=args.batch, unroll_simulation=1, progress_bar=False)
    sim = nengo_dl.Simulator(net, **options)
    sim.compile(optimizer=tf.optimizers.Adam(args.lr), loss={probe: tf.losses.mse})
    setup = time.perf_counter() - start

    def fit(epochs):
        x, y = data(args.samples, 1)
        return sim.fit({x_node: x}, {probe: y}, epochs=epochs, verbose=0, shuffle=False)

    with sim:
        return _timed(fit, setup, args)


def _timed(fit, setup, args):
    start = time.perf_counter()
    first = fit(1).history["loss"]
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    rest = fit(args.epochs).history["loss"]
    seconds = time.perf_counter() - start
    steps = args.epochs * (args.samples // args.batch)
    return {
        "setup_s": setup,
        "first_epoch_s": first_s,
        "steps_per_s": steps / seconds,
        "losses": [float(v) for v in first + rest],
    }


def worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = run_nengodl(args) if args.worker == "nengodl" else run_ours(args)
    report(result)


def spawn(kind, size, args):
    command = [
        *(["--worker", kind, "--size", size]),
        *(["--epochs", str(args.epochs), "--samples", str(args.samples)]),
        *(["--batch", str(args.batch), "--lr", str(args.lr)]),
    ]
    script = Path(__file__).resolve()
    label = f"{kind} {size}"
    if kind == "nengodl":
        return spawn_worker(args.peer_python, script, command, peer_env(args.peer_onednn), label)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")  # oneDNN: TensorFlow's default
    return spawn_worker(sys.executable, script, command, env, label)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: small,medium")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs after the first")
    parser.add_argument("--samples", type=int, default=2048, help="training samples")
    parser.add_argument("--batch", type=int, default=64, help="minibatch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON)
    parser.add_argument(
        "--peer-onednn",
        choices=("default", "0", "1"),
        default="0",
        help="TF_ENABLE_ONEDNN_OPTS for NengoDL (0: its faster setting here)",
    )
    parser.add_argument("--worker", choices=tuple(KINDS), help=argparse.SUPPRESS)
    parser.add_argument("--size", choices=tuple(SIZES), help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.2f}, python {platform.python_version()}; "
        f"{args.samples} samples, batch {args.batch}, 1 + {args.epochs} epochs "
        f"({args.samples // args.batch} steps each), Adam {args.lr}; "
        f"NengoDL TF_ENABLE_ONEDNN_OPTS={args.peer_onednn}",
        flush=True,
    )
    results = {}
    for size in args.sizes.split(","):
        # the workers alternate, so that each sees the load the others see
        tries = [{kind: spawn(kind, size, args) for kind in KINDS} for _ in range(args.repeats)]
        results[size] = runs = {kind: [t[kind] for t in tries] for kind in KINDS}
        print(f"\n== {size}: hidden LIF layers {SIZES[size]}, load {os.getloadavg()[0]:.2f}")
        best = {kind: max(r["steps_per_s"] for r in runs[kind]) for kind in KINDS}
        for kind, (r, *_) in runs.items():
            every = ", ".join(f"{t['steps_per_s']:.0f}" for t in runs[kind])
            print(
                f"{KINDS[kind]:>30}: setup {r['setup_s']:5.2f} s, first epoch"
                f" {r['first_epoch_s']:6.2f} s, best {best[kind]:6.1f} steps/s ({every});"
                f" loss epoch 1 {r['losses'][0]:.4f}, last {r['losses'][-1]:.4f}"
            )
        for kind in ("ours", "ours_graph"):
            print(f"{KINDS[kind]:>30} / NengoDL steps/s: {best[kind] / best['nengodl']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
