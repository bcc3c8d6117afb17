"""Training as the README and the examples use it: the ``trainable`` config
through ``nengo_compile.configure_trainable``, and gradients of a model whose
batch size is unknown when it is traced (Keras ``fit``), with XLA."""

from __future__ import annotations

import nengo
import numpy as np
import tensorflow as tf

import nengo_compile

from .conftest import compile_and_load


def _net():
    with nengo.Network(seed=3) as net:
        x = nengo.Node(lambda t: [0.0, 0.0], label="x")
        ens = nengo.Ensemble(12, 2, neuron_type=nengo.LIFRate())
        out = nengo.Node(size_in=1)
        nengo.Connection(x, ens, synapse=None)
        nengo.Connection(ens, out, function=lambda v: v[0] * v[1], synapse=0.005)
        nengo.Probe(out, label="out")
    return net


def test_xla_gradient_with_unknown_batch_matches_graph(tmp_path):
    """The biases (filled to ``[batch, n]`` every step) and every other
    variable get the gradient that the run without XLA gives; XLA used to
    fail to compile the gradient of that fill inside the loop."""
    _, module = compile_and_load(_net(), tmp_path, trainable=True, dtype="float64")
    inputs = np.random.default_rng(0).uniform(-1, 1, (3, 8, 2))
    grads = {}
    for jit in (True, False):
        model = module.Model(jit_compile=jit)
        assert model.jit_compile is jit

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 2], tf.float64)])
        def gradient(x, model=model):
            with tf.GradientTape() as tape:
                out = model.forward({"x": x}, training=True)["out"]
                loss = tf.reduce_sum(out**2)
            return tape.gradient(loss, model.trainable_variables)

        grads[jit] = {
            v.name: g.numpy() for v, g in zip(model.trainable_variables, gradient(inputs))
        }
    assert len(grads[True]) >= 2  # the encoders, biases and decoders train
    for name, value in grads[False].items():
        assert np.any(value != 0), name
        np.testing.assert_allclose(grads[True][name], value, rtol=1e-9, atol=1e-12, err_msg=name)


def _parts(module):
    return {(key, role) for _, _, parts in module.TRAINABLE.values() for key, role, *_ in parts}


def test_configure_trainable_from_the_package(tmp_path):
    """``nengo_compile.configure_trainable`` adds NengoDL's ``trainable``
    setting; an ensemble's neurons set to False keep their biases fixed, its
    encoders and the connection weights still train."""
    net = _net()
    nengo_compile.configure_trainable(net)
    net.config[net.ensembles[0].neurons].trainable = False
    _, module = compile_and_load(net, tmp_path, trainable=True, dtype="float64")
    assert _parts(module) == {("ensembles[0]", "encoders"), ("connections[1]", "weights")}
    _, module = compile_and_load(_net(), tmp_path, trainable=True, dtype="float64")
    assert ("ensembles[0]", "bias") in _parts(module)


def test_keras_compiles_a_module_without_xla_without_xla(tmp_path):
    """Keras' ``jit_compile=True`` around a module without XLA recompiled the
    whole training step at every call (0.3 steps/s): the layer says it does
    not support XLA then, and Keras falls back (with its warning)."""
    import warnings

    import keras

    _, module = compile_and_load(_net(), tmp_path, trainable=True)
    for jit in (False, True):
        layer = module.Model(jit_compile=jit).keras_layer()
        assert layer.supports_jit is jit
        x = keras.Input((1, 2))
        trainer = keras.Model(x, layer(x))
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            trainer.compile(optimizer="sgd", loss="mse", jit_compile=True)
        assert trainer.jit_compile is jit
        data = np.random.default_rng(0).uniform(-1, 1, (4, 1, 2)).astype(np.float32)
        history = trainer.fit(data, data[..., :1], batch_size=2, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
