"""A process of tests/test_distribute.py: runs or trains a generated module over a
``tf.distribute`` strategy and writes what it got to an ``.npz`` file.

``python distribute_worker.py MODE MODULE OUT``; MODE is

- ``mirrored``: two logical CPU devices, ``MirroredStrategy``; writes the probes
  of a batch run over the two replicas (``two_<probe>``) and on one device
  (``one_<probe>``), from the same model;
- ``train``: two logical CPU devices; one Keras ``fit`` step (SGD) of the
  model's ``keras_layer()`` on a global batch, under ``MirroredStrategy`` and
  on one device: ``<how>_loss`` and ``<how>_<variable>`` for how in two, one;
- ``worker``: a worker of ``MultiWorkerMirroredStrategy`` (``TF_CONFIG`` set
  by the test); writes the probes of the distributed run (``two_<probe>``).

Inputs come from ``inputs(module)``, the same in every process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np

BATCH, STEPS = 5, 12


def inputs(module, batch=BATCH, steps=STEPS) -> dict:
    rng = np.random.RandomState(7)
    dtype = module.DTYPE.as_numpy_dtype
    shapes = {k: (batch, steps, n) for k, n in module.INPUTS.items()}
    return {k: rng.uniform(-1, 1, shape).astype(dtype) for k, shape in shapes.items()}


def load(path):
    spec = importlib.util.spec_from_file_location("distributed_tf", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(mode, path, out):
    import tensorflow as tf

    if mode in ("mirrored", "train"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        devices = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, devices)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    module = load(path)
    results = {}
    if mode == "train":
        results.update(train(module, strategy, "two"))
        results.update(train(module, None, "one"))
    else:
        with strategy.scope():  # with XLA, the variables must be on every replica
            model = module.Model()
        feed = inputs(module)
        for name, value in model.run(STEPS, feed, strategy=strategy).items():
            results[f"two_{name}"] = value
        if mode == "mirrored":
            for name, value in model.run(STEPS, feed).items():
                results[f"one_{name}"] = value
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    np.savez(out.replace(".npz", f"{task.get('index', '')}.npz"), **results)


def train(module, strategy, how) -> dict:
    """One SGD step of Keras ``fit`` on a batch of 4 (under ``strategy``),
    the model with XLA (its default) and Keras's ``jit_compile`` at its
    default ("auto"; ``True`` fails under MirroredStrategy: XLA compiling the
    whole train step reads a variable of one replica's device from another)."""
    import keras

    def build():
        model = module.Model()
        assert model.jit_compile
        layer = model.keras_layer()
        x = keras.Input((STEPS, module.INPUTS[next(iter(module.INPUTS))]))
        net = keras.Model(x, layer(x))
        net.compile(optimizer=keras.optimizers.SGD(2.0), loss="mse")
        return model, net

    if strategy is None:
        model, net = build()
    else:
        with strategy.scope():
            model, net = build()
    x = next(iter(inputs(module, batch=4).values()))
    y = 0.5 + np.zeros((4, STEPS, net.output.shape[-1]), x.dtype)
    history = net.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    results = {f"{how}_loss": np.asarray(history.history["loss"][0])}
    for key in module.TRAINABLE:
        results[f"{how}_{key}"] = np.asarray(model.params[key])
    return results


if __name__ == "__main__":
    main(*sys.argv[1:4])
