"""Training through Keras (``keras_layer``: fit, evaluate, checkpoints), what a
trainable compile refuses, and what ``trainable`` changes in the module."""

from __future__ import annotations

import warnings

import nengo
import numpy as np
import pytest

from nengo_compile import CompileError, compile_network

from .conftest import compile_and_load
from .test_training import SPIKING_TYPES, two_layers

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

N_STEPS = 20


@pytest.fixture(scope="module")
def lif_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras")
    net = two_layers(SPIKING_TYPES["LIF"](), label="keras")
    return compile_and_load(net, folder, dtype="float32", trainable=True)[1]


def data(batch=8):
    x = np.random.RandomState(0).uniform(-1, 1, (batch, N_STEPS, 2)).astype(np.float32)
    return x, np.full((batch, N_STEPS, 1), 0.3, np.float32)


def keras_model(model, jit_compile=False):
    layer = model.keras_layer(probes=["out"])
    inp = keras.Input((N_STEPS, 2))
    fitted = keras.Model(inp, layer(inp))
    fitted.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=jit_compile)
    return fitted


@pytest.mark.parametrize("jit_compile", [False, True])
def test_keras_fit_evaluate_checkpoint(lif_module, jit_compile, tmp_path):
    """``fit`` trains the model's own variables (the rate swap) and lowers the
    loss; ``evaluate`` runs the spikes; a weights checkpoint restores them;
    ``save_params`` then holds the fitted values."""
    model = lif_module.Model(jit_compile=jit_compile)
    untrained = model.trained()
    fitted = keras_model(model)
    assert {id(w.value) for w in fitted.trainable_weights} == {
        id(model.params[k]) for k in lif_module.TRAINABLE
    }
    x, y = data()
    path = tmp_path / "fit.weights.h5"
    checkpoint = keras.callbacks.ModelCheckpoint(str(path), save_weights_only=True)
    history = fitted.fit(
        x, y, epochs=3, batch_size=4, shuffle=False, verbose=0, callbacks=[checkpoint]
    )
    losses = history.history["loss"]
    assert losses[-1] < losses[0], losses
    trained = model.trained()
    assert all(not np.array_equal(trained[k], untrained[k]) for k in trained)

    spiking = model.run(N_STEPS, inputs={"stim": x})["out"]  # training=False: spikes
    expected = float(np.mean((spiking - y) ** 2))
    assert fitted.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-4)
    rates = model.forward(x, training=True)["out"].numpy()
    assert not np.allclose(rates, spiking, atol=1e-3)  # evaluate is not the rate run

    for key in lif_module.TRAINABLE:  # spoil, then restore from the checkpoint
        model.params[key].assign(tf.zeros_like(model.params[key]))
    fitted.load_weights(str(path))
    for key, value in model.trained().items():
        np.testing.assert_array_equal(value, trained[key], err_msg=str(key))

    model.save_params(tmp_path / "fitted.npz")
    loaded = lif_module.Model(params_file=tmp_path / "fitted.npz", jit_compile=jit_compile)
    for key, value in loaded.trained().items():
        np.testing.assert_array_equal(value, trained[key], err_msg=str(key))
    got = loaded.run(N_STEPS, inputs={"stim": x})["out"]
    np.testing.assert_array_equal(got, spiking)


def test_keras_jit_compile(lif_module):
    """Keras's own XLA (``compile(jit_compile=True)``) compiles fit around the
    layer; ``"auto"`` is XLA only where a GPU is (Keras 3 on TensorFlow). (A
    model with ``jit_compile=False`` fits under Keras's XLA too, but XLA then
    takes 25 s to compile the loop's own gradient: not tested here.)"""
    model = lif_module.Model(jit_compile=True)
    fitted = keras_model(model, jit_compile=True)
    assert fitted.jit_compile is True
    x, y = data()
    losses = fitted.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    assert losses[-1] < losses[0], losses
    auto = keras_model(lif_module.Model(jit_compile=True), jit_compile="auto")
    assert auto.jit_compile is bool(tf.config.list_physical_devices("GPU"))


def test_keras_without_xla_kernels_fits_without_jit(tmp_path):
    """A model with a Python hook (outside the gradient path) cannot run with
    XLA: Keras is told (``supports_jit``), warns and fits without."""
    with nengo.Network(seed=5) as net:
        stim = nengo.Node(lambda t: [np.sin(30 * t), 0.0], label="stim")
        ens = nengo.Ensemble(8, 2, neuron_type=nengo.LIFRate(), label="ens")
        hook = nengo.Node(lambda t, x: np.array(sorted(x)), size_in=2, label="hook")
        nengo.Connection(stim, ens, synapse=None)
        nengo.Connection(stim, hook, synapse=None)
        nengo.Probe(ens, synapse=0.01, label="out")
        nengo.Probe(hook, label="sorted")
    with pytest.warns(UserWarning, match="stays a Python hook"):
        compiled, module = compile_and_load(net, tmp_path, dtype="float32", trainable=True)
    model = module.Model(node_functions=compiled.hook_functions)
    assert not model.can_jit_compile
    layer = model.keras_layer(probes=["out"])
    assert layer.supports_jit is False
    inp = keras.Input((N_STEPS, 2))
    fitted = keras.Model(inp, layer(inp))
    with pytest.warns(UserWarning, match="jit_compile"):
        fitted.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=True)
    assert fitted.jit_compile is False
    x, y = data(4)
    losses = fitted.fit(x, y, epochs=3, batch_size=4, verbose=0).history["loss"]
    assert losses[-1] < losses[0], losses


# ---- refusals ----------------------------------------------------------------


def test_learning_rules_are_refused_in_one_line():
    with nengo.Network(seed=1) as net:
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        conn = nengo.Connection(a, b, learning_rule_type=nengo.PES(), label="learned")
        nengo.Connection(b, conn.learning_rule)
    with pytest.raises(CompileError) as info:
        compile_network(net, trainable=True)
    message = str(info.value)
    assert "learning rules" in message and "<Connection learned>" in message and "PES" in message
    assert len(message.splitlines()) == 1
    compile_network(net)  # it compiles without trainable


def hook_between(fn, trainable_a=True):
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(lambda t: [np.sin(10 * t), 0.5], label="stim")
        a = nengo.Ensemble(10, 2, label="a")
        hook = nengo.Node(fn, size_in=2, size_out=2, label="hook")
        b = nengo.Ensemble(10, 2, label="b")
        nengo.Connection(stim, a)
        nengo.Connection(a, hook, synapse=0.005)
        nengo.Connection(hook, b, synapse=0.005)
        nengo.Probe(b, synapse=0.01)
    if not trainable_a:
        from nengo_compile.trainable import configure_trainable

        configure_trainable(net)
        net.config[a].trainable = False
        net.config[a.neurons].trainable = False
        net.config[net.all_connections[1]].trainable = False
    return net


def test_python_hook_in_the_gradient_path_is_refused():
    """A node function left in Python (no gradient) fed by trained parameters
    is refused at compile time, naming it; translated, or fed by nothing that
    trains, it compiles."""
    untranslatable = lambda t, x: np.array(sorted(x))  # noqa: E731
    with pytest.warns(UserWarning, match="stays a Python hook"):
        with pytest.raises(CompileError) as info:
            compile_network(hook_between(untranslatable), trainable=True)
    message = str(info.value)
    assert "<Node 'hook'>" in message and "sorted" in message and "gradient" in message
    assert len(message.splitlines()) == 1
    compiled = compile_network(hook_between(lambda t, x: x**2), trainable=True)
    assert compiled.program.hooks and all(h.translated for h in compiled.program.hooks)
    with pytest.warns(UserWarning, match="stays a Python hook"):
        compile_network(hook_between(untranslatable, trainable_a=False), trainable=True)


class Squared(nengo.neurons.NeuronType):
    """A neuron type without a template (it runs NumPy)."""

    def gain_bias(self, max_rates, intercepts):
        return nengo.LIFRate().gain_bias(max_rates, intercepts)

    def step(self, dt, J, output):
        output[...] = np.maximum(J, 0) ** 2


def test_neuron_type_without_template_is_refused():
    with nengo.Network(seed=2) as net:
        ens = nengo.Ensemble(10, 1, neuron_type=Squared(), label="squared")
        nengo.Probe(ens.neurons)
    with pytest.warns(UserWarning):
        with pytest.raises(CompileError) as info:
            compile_network(net, trainable=True)
    message = str(info.value)
    assert "<Ensemble 'squared'>" in message and "'Squared'" in message
    assert len(message.splitlines()) == 1


def test_training_a_module_compiled_without_trainable_is_refused(lif_module, tmp_path):
    _, module = compile_and_load(two_layers(nengo.LIF()), tmp_path, dtype="float32")
    model = module.Model()
    assert module.TRAINABLE == {} and model.trainable_variables == ()
    with pytest.raises(ValueError, match="without trainable=True"):
        model.forward(n_steps=5, training=True)
    model.forward(n_steps=5)  # inference runs
    with pytest.raises(ValueError, match="training_neurons"):
        lif_module.Model(training_neurons="spikes")


@pytest.mark.parametrize("jit_compile", [False, True])
def test_izhikevich_cannot_train(tmp_path, jit_compile):
    _, module = compile_and_load(
        two_layers(nengo.Izhikevich()), tmp_path, dtype="float32", trainable=True
    )
    model = module.Model(jit_compile=jit_compile)
    with pytest.raises(ValueError, match="Izhikevich"):
        model.forward(n_steps=5, training=True)
    assert model.forward(n_steps=5)["out"].shape == (1, 5, 1)  # inference runs


# ---- what trainable changes in the module -------------------------------------


def test_trainable_modules_are_deterministic_and_others_unchanged():
    """Two trainable compiles give the same source; without trainable, the
    module has no trained values, training branches or trainable variables
    (its source is pinned by the golden files)."""
    net = two_layers(SPIKING_TYPES["LIF"]())
    first = compile_network(net, module_name="m", trainable=True)
    second = compile_network(two_layers(SPIKING_TYPES["LIF"]()), module_name="m", trainable=True)
    assert first.source == second.source
    assert first.params.keys() == second.params.keys()
    for key, value in first.params.items():
        np.testing.assert_array_equal(value, second.params[key])
    plain = compile_network(net, module_name="m")
    assert "\nTRAINABLE = {}\n" in plain.source and "neurons ==" not in plain.source
    assert not plain.program.trainable and not any(k.endswith("_train") for k in plain.params)
    assert "\nTRAINABLE = {}\n" not in first.source and "neurons ==" in first.source


def test_probe_of_a_trained_parameter_warns():
    """A probe of a parameter that trains (here the scaled encoders) reads
    the built values: the compile says so (a known limitation)."""
    from nengo_compile.lower import TrainingWarning

    with nengo.Network(seed=3) as net:
        ens = nengo.Ensemble(5, 1, label="ens")
        nengo.Probe(ens, "scaled_encoders", label="encoders")
        nengo.Probe(ens, synapse=0.01, label="value")
    with pytest.warns(TrainingWarning, match="'encoders' shows the built values"):
        compile_network(net, trainable=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        compile_network(net)
