"""`nengo_compile.freeze`: a trained module's values written back into the
Nengo network, so that ``nengo.Simulator`` runs the trained model (float64:
within 1e-9); and the ``trainable`` config rules (`nengo_compile.trainable`)
as the compiled module's ``TRAINABLE`` table has them."""

from __future__ import annotations

import subprocess
import sys

import nengo
import numpy as np
import pytest

import nengo_compile
from nengo_compile.freezing import FullWeights
from nengo_compile.trainable import configure_trainable

from .conftest import compile_and_load

N_STEPS = 60
#: float64: the module and Nengo compute the same values in other orders
ATOL = 1e-9


def _network(seed=3, n_c=12):
    """Rate neurons, decoded connections with functions, transforms and
    slices, neuron-to-neuron (sliced), a full-weight solver, Node inputs (one
    sliced, with a matrix transform), probes on decoded output and neurons."""
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: [np.sin(8 * t), np.cos(5 * t), t], label="stim")
        a = nengo.Ensemble(20, 2, neuron_type=nengo.LIFRate(), label="a")
        b = nengo.Ensemble(15, 1, neuron_type=nengo.RectifiedLinear(), label="b")
        c = nengo.Ensemble(n_c, 3, neuron_type=nengo.LIFRate(), label="c")
        nengo.Connection(stim[:2], a, transform=[[1.0, 0.5], [0.2, -0.8]], label="stim_a")
        nengo.Connection(a, b, function=lambda x: x[0] * x[1], transform=2.0, label="a_b")
        nengo.Connection(a[1], c[1:], transform=[[1.0], [-0.5]], label="a_c")
        nengo.Connection(stim[2], c[0], synapse=None, label="stim_c")
        nengo.Connection(b.neurons, c.neurons[:5], transform=np.full((5, 15), 0.002), label="b_c")
        nengo.Connection(
            c, b, function=lambda x: x[2], solver=nengo.solvers.LstsqL2(weights=True), label="c_b"
        )
        nengo.Probe(c, synapse=0.01, label="c_out")
        nengo.Probe(a[1], synapse=0.005, label="a1_out")
        nengo.Probe(b.neurons, label="b_rates")
    return net


def _perturb(model, scale=0.2, seed=0):
    """Move every trainable variable by ``scale`` of its spread, at random."""
    rng = np.random.RandomState(seed)
    for var in model.trainable_variables:
        value = var.numpy()
        var.assign(value + scale * np.std(value) * rng.standard_normal(value.shape))


def _nengo_run(net, n_steps=N_STEPS):
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(n_steps)
        return [np.asarray(sim.data[p]) for p in net.all_probes]


def _assert_runs_trained(net, model, n_steps=N_STEPS):
    outputs = model.run(n_steps)
    for name, probe, data in zip(model.PROBES, net.all_probes, _nengo_run(net, n_steps)):
        error = np.max(np.abs(outputs[name][0] - data))
        assert error <= ATOL, (name, probe, error)
    return outputs


def test_frozen_network_runs_trained_module(tmp_path):
    net = _network()
    _, module = compile_and_load(net, tmp_path, dtype="float64", trainable=True)
    model = module.Model(jit_compile=False)  # (XLA: tested elsewhere; slow to compile)
    trained = {key for key, _ in model.trained()}
    assert trained == {*(f"ensembles[{i}]" for i in range(3)), "connections[0]"} | {
        f"connections[{i}]" for i in (1, 2, 4, 5)
    }
    before = _nengo_run(net)
    _perturb(model)
    nengo_compile.freeze(net, model)
    outputs = _assert_runs_trained(net, model)
    # the perturbation changed what runs (the comparison above is not vacuous)
    changed = [np.max(np.abs(outputs[name][0] - b)) for name, b in zip(model.PROBES, before)]
    assert min(changed) > 1e-3, changed
    a, b, c = net.all_ensembles
    assert a.normalize_encoders is False and isinstance(a.encoders, np.ndarray)
    a_b, c_b = net.all_connections[1], net.all_connections[5]
    assert isinstance(a_b.solver, nengo.solvers.NoSolver) and not a_b.solver.weights
    assert isinstance(c_b.solver, FullWeights)
    # the probes on decoded output keep their decoders (a's and c's changed)
    assert all(isinstance(p.solver, nengo.solvers.NoSolver) for p in net.all_probes[:2])


def test_freeze_after_gradient_steps_and_seed(tmp_path):
    """An unseeded network compiled with seed=5, trained by a few steps of
    gradient descent: freeze sets net.seed = 5 and Nengo runs the result."""
    tf = pytest.importorskip("tensorflow")
    net = _network(seed=None)
    _, module = compile_and_load(net, tmp_path, dtype="float64", trainable=True, seed=5)
    model = module.Model(jit_compile=False)
    optimizer = tf.keras.optimizers.SGD(learning_rate=1e-3)
    for _ in range(3):
        with tf.GradientTape() as tape:
            out = model.forward(n_steps=20, training=True)
            loss = tf.reduce_mean((out[next(iter(model.PROBES))] - 0.5) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    nengo_compile.freeze(net, model)
    assert net.seed == 5
    _assert_runs_trained(net, model)


def test_untrainable_objects_unchanged(tmp_path):
    net = _network()
    configure_trainable(net)
    b = net.all_ensembles[1]
    stim_a, a_b = net.all_connections[:2]
    net.config[b].trainable = False
    net.config[stim_a].trainable = False
    net.config[a_b].trainable = False  # from a, which trains: keeps its weights
    encoders, transform = b.encoders, stim_a.transform
    compiled, module = compile_and_load(net, tmp_path, dtype="float64", trainable=True)
    model = module.Model(jit_compile=False)  # (XLA: tested elsewhere; slow to compile)
    keys = {key for key, _ in model.trained()}
    assert "ensembles[1]" not in keys and keys.isdisjoint({"connections[0]", "connections[1]"})
    built = compiled.model.sig[a_b]["weights"].initial_value
    _perturb(model, seed=1)
    nengo_compile.freeze(net, model)
    assert b.encoders is encoders and b.gain is None and b.bias is None
    assert b.normalize_encoders is True
    assert stim_a.transform is transform
    assert isinstance(a_b.solver, nengo.solvers.NoSolver)
    np.testing.assert_array_equal(a_b.solver.values.T, built)
    _assert_runs_trained(net, model)


def test_mismatched_network_refused(tmp_path):
    net = _network()
    _, module = compile_and_load(net, tmp_path, dtype="float64", trainable=True)
    model = module.Model(jit_compile=False)  # (XLA: tested elsewhere; slow to compile)
    _perturb(model)

    other = _network(n_c=13)  # c: another shape
    with pytest.raises(ValueError, match=r"ensembles\[2\].*<Ensemble 'c'>.*shape \(13"):
        nengo_compile.freeze(other, model)
    # refused before changing anything
    assert other.all_ensembles[0].gain is None
    assert not isinstance(other.all_connections[1].solver, nengo.solvers.NoSolver)

    with nengo.Network(seed=3) as small:
        nengo.Ensemble(20, 2, neuron_type=nengo.LIFRate(), label="a")
    with pytest.raises(ValueError, match=r"has 1 ensembles.*trains ensembles\[[12]\]"):
        nengo_compile.freeze(small, model)

    relabelled = _network()
    relabelled.all_ensembles[1].label = "bb"
    with pytest.raises(ValueError, match=r"all_ensembles\[1\] is <Ensemble 'bb'>"):
        nengo_compile.freeze(relabelled, model)

    # the same script run again (a fresh network, as in another process) matches
    again = _network()
    nengo_compile.freeze(again, model)
    _assert_runs_trained(again, model)

    with nengo.Network() as plain:
        nengo.Ensemble(5, 1)
    _, untrained = compile_and_load(plain, tmp_path, dtype="float64")
    with pytest.raises(ValueError, match="without trainable=True"):
        nengo_compile.freeze(plain, untrained.Model())


def test_trainable_config_rules_in_table(tmp_path):
    """Object setting beats network setting beats class default; the
    Neurons' setting controls the biases alone; subnetworks' objects are
    found by their index in ``all_ensembles`` / ``all_connections``."""
    with nengo.Network(seed=1) as net:
        configure_trainable(net)
        net.config[nengo.Ensemble].trainable = False  # class default
        stim = nengo.Node(lambda t: np.sin(10 * t), label="stim")

        def ens(label):
            e = nengo.Ensemble(8, 1, neuron_type=nengo.LIFRate(), label=label)
            nengo.Connection(stim, e, label=f"to_{label}")
            return e

        default, own = ens("default"), ens("own")
        net.config[own].trainable = True  # object beats class default
        with nengo.Network(label="on") as on:
            in_on = ens("in_on")  # network beats class default
        with nengo.Network(label="off") as off:
            own_in_off, in_off = ens("own_in_off"), ens("in_off")
        net.config[on].trainable = True
        net.config[off].trainable = False
        net.config[own_in_off].trainable = True  # object beats network
        bias_only, encoders_only = ens("bias_only"), ens("encoders_only")
        net.config[bias_only.neurons].trainable = True
        net.config[encoders_only].trainable = True
        net.config[encoders_only.neurons].trainable = False
        kept = nengo.Connection(own, in_on, label="kept")
        dropped = nengo.Connection(in_on, own, label="dropped")
        net.config[dropped].trainable = False
        nengo.Probe(own, synapse=0.01)
        nengo.Probe(in_on, synapse=0.01)
        nengo.Probe(bias_only.neurons)
    _, module = compile_and_load(net, tmp_path, dtype="float64", trainable=True)
    model = module.Model(jit_compile=False)  # (XLA: tested elsewhere; slow to compile)
    ensembles, connections = net.all_ensembles, net.all_connections

    def key(obj):
        if isinstance(obj, nengo.Ensemble):
            return f"ensembles[{ensembles.index(obj)}]"
        return f"connections[{connections.index(obj)}]"

    expected = {(key(e), role) for e in (own, in_on, own_in_off) for role in ("encoders", "bias")}
    expected |= {(key(bias_only), "bias"), (key(encoders_only), "encoders")}
    expected |= {(key(c), "weights") for c in connections if c is not dropped and c.pre is not stim}
    assert kept in connections and default in ensembles and in_off in ensembles
    parts = {(k, role) for _, _, ps in module.Model.TRAINABLE.values() for k, role, *_ in ps}
    assert parts == expected
    labels = {k: label for _, _, ps in module.Model.TRAINABLE.values() for k, _, label, *_ in ps}
    for k, label in labels.items():
        index = int(k.split("[")[1][:-1])
        objects = ensembles if k.startswith("ensembles") else connections
        assert label == str(objects[index])
    _perturb(model, scale=0.1, seed=2)
    nengo_compile.freeze(net, model)
    assert default.gain is None and in_off.gain is None  # untrained: unchanged
    _assert_runs_trained(net, model)


def test_freeze_is_lazy():
    """``import nengo_compile`` imports neither Nengo nor TensorFlow; asking
    for ``freeze`` imports Nengo (its module is ``freezing``), not TensorFlow."""
    code = (
        "import sys, nengo_compile\n"
        "assert 'nengo' not in sys.modules and 'tensorflow' not in sys.modules\n"
        "from nengo_compile import freeze\n"
        "assert callable(freeze)\n"
        "import nengo_compile.freezing\n"
        "assert nengo_compile.freeze is freeze\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
