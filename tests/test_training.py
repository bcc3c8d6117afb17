"""Training: gradients of ``forward`` against central finite differences, the
rate swap and surrogate gradients of spiking neurons against their rate
counterparts, and training steps that carry over to ``save_params`` and
spiking runs (float64 modules compiled with ``trainable=True``)."""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nengo_compile.neurons import SoftLIFRate

from .conftest import compile_and_load

tf = pytest.importorskip("tensorflow")

N_STEPS = 20
#: the relative error of a gradient against central differences, at the scale
#: of that variable's gradient (``|g - fd| <= RTOL * max(|fd|, max |g|)``)
RTOL = 1e-5
#: the central differences' step (float64: truncation ~h^2, rounding ~1e-16 / h)
H = 1e-6
#: elements checked per variable, among those with non-negligible gradient
N_CHECKED = 3

RATE_TYPES = {
    "LIFRate": lambda: nengo.LIFRate(tau_rc=0.03, tau_ref=0.002, amplitude=0.5),
    "SoftLIFRate": lambda: SoftLIFRate(sigma=0.2, tau_rc=0.03, amplitude=0.5),
    "RectifiedLinear": lambda: nengo.RectifiedLinear(amplitude=0.02),
    "Sigmoid": lambda: nengo.Sigmoid(tau_ref=0.002),
    "Tanh": lambda: nengo.Tanh(tau_ref=0.002),
    "AdaptiveLIFRate": lambda: nengo.AdaptiveLIFRate(tau_n=0.01, inc_n=0.5, amplitude=0.5),
}


def gradient_model(neuron_type, max_rates=(100, 200)):
    """An input, two ensembles of ``neuron_type`` (one recurrent) and a
    translated node function in the gradient path, through each synapse kind
    and Copy, DotInc and ElementwiseInc (a scalar transform)."""
    with nengo.Network(seed=7, label="gradients") as net:
        stim = nengo.Node(lambda t: [np.sin(20 * t), np.cos(15 * t)], label="stim")
        tuning = dict(
            neuron_type=neuron_type,
            max_rates=nengo.dists.Uniform(*max_rates),
            intercepts=nengo.dists.Uniform(-0.6, 0.6),
        )
        a = nengo.Ensemble(6, 2, label="a", **tuning)
        b = nengo.Ensemble(5, 1, label="b", **tuning)
        square = nengo.Node(lambda t, x: x**2 - 0.5 * x, size_in=2, label="square")
        nengo.Connection(stim, a, synapse=None)
        nengo.Connection(a, square, synapse=nengo.Lowpass(0.004))
        nengo.Connection(square, b, transform=[[0.8, -0.6]], synapse=nengo.Alpha(0.003))
        nengo.Connection(stim[0], b, transform=1.5, synapse=None)
        nengo.Connection(
            b, b, synapse=nengo.LinearFilter([1.0], [0.003 * 0.004, 0.007, 1.0]), transform=0.5
        )
        nengo.Connection(a, b.neurons, transform=0.2 * np.ones((5, 2)), synapse=0.002)
        nengo.Probe(b, synapse=0.005, label="out")
        nengo.Probe(a.neurons, label="rates")
    return net


def random_inputs(module, batch=2, n_steps=N_STEPS, seed=0):
    rng = np.random.RandomState(seed)
    return {k: rng.uniform(-1, 1, (batch, n_steps, n)) for k, n in module.INPUTS.items()}


def loss_function(model, batch=2, n_steps=N_STEPS, seed=1):
    """A loss of the probes: their sum weighted by fixed random weights."""
    rng = np.random.RandomState(seed)
    weights = {k: rng.randn(batch, n_steps, *shape) for k, shape in model.PROBES.items()}

    def loss(inputs, training=True):
        outputs = model.forward(inputs, n_steps=n_steps, training=training)
        return tf.add_n([tf.reduce_sum(outputs[k] * w) for k, w in weights.items()])

    return loss


def checked_elements(gradient, rng, n=N_CHECKED):
    """Up to ``n`` flat positions of ``gradient`` with non-negligible values
    (at least 1e-3 of the largest), drawn at random."""
    flat = np.abs(gradient.ravel())
    candidates = np.flatnonzero(flat > 1e-3 * flat.max())
    return rng.choice(candidates, min(n, candidates.size), replace=False)


def assert_gradient(what, gradient, differences, scale):
    """``gradient`` at the checked elements against ``differences``, at
    ``scale``, the variable's largest gradient."""
    error = np.abs(gradient - np.asarray(differences))
    bound = RTOL * np.maximum(np.abs(differences), scale)
    assert np.all(error <= bound), (what, gradient, differences, error / np.maximum(scale, 1e-300))


def central_differences(loss, set_value, original, picked):
    """Central differences of ``loss()`` at the flat positions ``picked`` of
    ``original``, each set by ``set_value``; ``original`` is set back."""
    differences = []
    for i in picked:
        values = []
        for sign in (1, -1):
            shifted = original.copy()
            shifted.flat[i] += sign * H
            set_value(shifted)
            values.append(float(loss()))
        differences.append((values[0] - values[1]) / (2 * H))
    set_value(original)
    return differences


def check_gradients(model, inputs, training=True, seed=2):
    """Every trainable variable's gradient (at a few elements of each Nengo
    object's part), and the inputs', against central differences of the loss;
    returns the (object, parameter) parts checked."""
    rng = np.random.RandomState(seed)
    loss = loss_function(model)
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    variables = [model.params[k] for k in model.TRAINABLE]
    with tf.GradientTape() as tape:
        tape.watch(list(tensors.values()))
        value = loss(tensors, training)
    grads = tape.gradient(value, variables + list(tensors.values()))
    assert all(g is not None for g in grads)
    grads = [np.asarray(tf.convert_to_tensor(g)) for g in grads]
    assert np.all(np.isfinite(np.concatenate([g.ravel() for g in grads])))
    checked = []
    for (_, _, parts), var, grad in zip(model.TRAINABLE.values(), variables, grads):
        for obj, role, _, shape, offset in parts:  # each Nengo object's values, at its scale
            part = grad[offset : offset + int(np.prod(shape))]
            assert np.abs(part).max() > 0, (obj, role)
            picked = offset + checked_elements(part, rng)
            fd = central_differences(
                lambda: loss(tensors, training), var.assign, var.numpy(), picked
            )
            assert_gradient((obj, role), grad[picked], fd, np.abs(part).max())
            checked.append((obj, role))
    for (key, x), grad in zip(inputs.items(), grads[len(variables) :]):
        picked = checked_elements(grad, rng)
        fed = dict(inputs)

        def set_input(value, key=key, fed=fed):
            fed[key] = value

        def fed_loss(fed=fed):
            return loss({k: tf.constant(v) for k, v in fed.items()}, training)

        fd = central_differences(fed_loss, set_input, x, picked)
        assert_gradient(key, grad.ravel()[picked], fd, np.abs(grad).max())
    return checked


@pytest.fixture(scope="module")
def gradient_modules(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gradients")
    cache = {}

    def get(name):
        if name not in cache:
            rates = (300, 450) if name == "Sigmoid" else (100, 200)  # its gains are positive
            net = gradient_model(RATE_TYPES[name](), rates)
            _, cache[name] = compile_and_load(net, folder, dtype="float64", trainable=True)
        return cache[name]

    return get


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("neuron_type", sorted(RATE_TYPES))
def test_gradients_match_finite_differences(gradient_modules, neuron_type, jit_compile):
    module = gradient_modules(neuron_type)
    assert module.HOOKS == {}  # the node function is translated: it is differentiated
    roles = {part[1] for _, _, parts in module.TRAINABLE.values() for part in parts}
    assert roles == {"encoders", "bias", "weights"}
    model = module.Model(jit_compile=jit_compile)
    assert model.jit_compile == jit_compile
    checked = check_gradients(model, random_inputs(module))
    assert {role for _, role in checked} == {"encoders", "bias", "weights"}


# ---- spiking neurons in training: the rate swap and surrogate gradients ----------

SPIKING_TYPES = {
    "LIF": lambda: nengo.LIF(tau_rc=0.03, tau_ref=0.0025, amplitude=0.5),
    "SpikingRectifiedLinear": lambda: nengo.SpikingRectifiedLinear(amplitude=0.4),
    "RegularSpiking": lambda: nengo.RegularSpiking(nengo.LIFRate(tau_rc=0.03), amplitude=0.5),
}


def rate_type(n):
    """What ``n`` trains as (the rate swap), as a Nengo neuron type."""
    if isinstance(n, nengo.LIF):
        return SoftLIFRate(sigma=0.05, tau_rc=n.tau_rc, tau_ref=n.tau_ref, amplitude=n.amplitude)
    if isinstance(n, nengo.SpikingRectifiedLinear):
        return nengo.RectifiedLinear(amplitude=n.amplitude)
    base = n.base_type  # RegularSpiking(LIFRate): amplitude * the base rate
    return nengo.LIFRate(base.tau_rc, base.tau_ref, amplitude=base.amplitude * n.amplitude)


def two_layers(neuron_type, label="two layers"):
    with nengo.Network(seed=11, label=label) as net:
        stim = nengo.Node(lambda t: [np.sin(30 * t), np.cos(20 * t)], label="stim")
        a = nengo.Ensemble(8, 2, neuron_type=neuron_type, label="a")
        b = nengo.Ensemble(6, 1, neuron_type=neuron_type, label="b")
        nengo.Connection(stim, a, synapse=None)
        output = nengo.Node(size_in=1, label="output")
        nengo.Connection(a, b, function=lambda x: x[0] * x[1], synapse=0.005)
        nengo.Connection(b, output, synapse=None)
        nengo.Probe(output, synapse=0.01, label="out")
        nengo.Probe(a.neurons, label="a_rates")
        nengo.Probe(b.neurons, label="b_rates")
    return net


def rate_twin(net, neuron_type):
    """``net`` (`two_layers`) with ``neuron_type`` and the parameters Nengo
    built for ``net`` (gains, biases, encoders, decoders as transforms: Nengo
    would solve other decoders for the rate type)."""
    with nengo.Simulator(net, progress_bar=False) as sim:
        built = {e.label: sim.data[e] for e in net.all_ensembles}
        decoders = [sim.data[net.all_connections[i]].weights for i in (1, 2)]
    twin = nengo.Network(seed=net.seed, label="rate twin")
    with twin:
        stim = nengo.Node(net.nodes[0].output, label="stim")
        ens = {
            label: nengo.Ensemble(
                b.gain.size,
                b.encoders.shape[1],
                neuron_type=neuron_type,
                gain=b.gain,
                bias=b.bias,
                encoders=b.encoders,
                label=label,
            )
            for label, b in built.items()
        }
        nengo.Connection(stim, ens["a"], synapse=None)
        output = nengo.Node(size_in=1, label="output")
        nengo.Connection(ens["a"].neurons, ens["b"], transform=decoders[0], synapse=0.005)
        nengo.Connection(ens["b"].neurons, output, transform=decoders[1], synapse=None)
        nengo.Probe(output, synapse=0.01, label="out")
        nengo.Probe(ens["a"].neurons, label="a_rates")
        nengo.Probe(ens["b"].neurons, label="b_rates")
    return twin


@pytest.fixture(scope="module")
def spiking_modules(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spiking")
    cache = {}

    def get(name):
        if name not in cache:
            net = two_layers(SPIKING_TYPES[name]())
            cache[name] = net, compile_and_load(net, folder, dtype="float64", trainable=True)[1]
        return cache[name]

    return get


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("neuron_type", sorted(SPIKING_TYPES))
def test_rate_swap_runs_the_rate_counterpart(spiking_modules, neuron_type, jit_compile):
    """``forward(training=True)`` is Nengo's run of the network with the rate
    types in place of the spiking ones (and the same parameters)."""
    net, module = spiking_modules(neuron_type)
    model = module.Model(jit_compile=jit_compile)
    got = model.forward(n_steps=N_STEPS, training=True)
    twin = rate_twin(net, rate_type(net.all_ensembles[0].neuron_type))
    with nengo.Simulator(twin, progress_bar=False) as sim:
        sim.run_steps(N_STEPS)
    for probe in twin.all_probes:
        want = sim.data[probe]
        np.testing.assert_allclose(
            got[probe.label].numpy()[0], want, rtol=1e-9, atol=1e-9 * np.abs(want).max()
        )
    spikes = model.forward(n_steps=N_STEPS)["a_rates"].numpy()  # inference spikes
    assert set(np.unique(spikes)) <= {0.0} | set(np.unique(spikes[spikes > 0]))
    assert not np.allclose(spikes, got["a_rates"].numpy())


def gradient_descent(model, loss, steps=3, rate=0.01):
    """A few steps of gradient descent on ``loss()``, each variable's largest
    change ``rate`` times its largest value; returns the loss before each step."""
    losses = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            value = loss()
        grads = tape.gradient(value, model.trainable_variables)
        for var, grad in zip(model.trainable_variables, grads):
            grad = tf.convert_to_tensor(grad)
            scale = tf.reduce_max(tf.abs(var)) / tf.reduce_max(tf.abs(grad))
            var.assign_sub(rate * scale * grad)
        losses.append(float(value))
    return losses


def squared_error(model, target=0.3, n_steps=60):
    """The mean squared error of the filtered output ``out`` from
    ``target``, in training."""

    def loss():
        out = model.forward(n_steps=n_steps, training=True)["out"]
        return tf.reduce_mean((out[:, 20:] - target) ** 2)

    return loss


@pytest.mark.parametrize("training_neurons", ["rate", "surrogate"])
def test_trained_parameters_save_load_and_spike(spiking_modules, training_neurons, tmp_path):
    """Trained (as ``training_neurons`` says), saved with ``save_params`` and
    loaded by another model of the module, the parameters give the trained
    model's spiking run; and not the untrained one."""
    _, module = spiking_modules("LIF")
    model = module.Model(jit_compile=False, training_neurons=training_neurons)
    untrained = model.run(N_STEPS)
    before = model.trained()
    losses = gradient_descent(model, squared_error(model))
    assert losses[-1] < losses[0], losses
    after = model.trained()
    assert sorted(after) == sorted(before)
    assert all(not np.array_equal(after[k], before[k]) for k in after)
    expected = model.run(N_STEPS)
    model.save_params(tmp_path / "trained.npz")
    loaded = module.Model(params_file=tmp_path / "trained.npz", jit_compile=False)
    for key, value in loaded.trained().items():
        np.testing.assert_array_equal(value, after[key])
    got = loaded.run(N_STEPS)
    for name in module.PROBES:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert not np.allclose(expected["out"], untrained["out"], rtol=0, atol=1e-6)


def test_surrogate_forward_spikes_exactly(spiking_modules):
    """With surrogate gradients, training runs the spikes (float64: exactly
    the spiking run's values), with and without XLA."""
    _, module = spiking_modules("LIF")
    for jit_compile in (False, True):
        model = module.Model(jit_compile=jit_compile, training_neurons="surrogate")
        spiking = model.forward(n_steps=N_STEPS)
        got = model.forward(n_steps=N_STEPS, training=True)
        for name in module.PROBES:
            np.testing.assert_array_equal(got[name], spiking[name], err_msg=name)
        ran = model.run(N_STEPS)
        for name in module.PROBES:
            np.testing.assert_allclose(got[name].numpy(), ran[name], rtol=0, atol=1e-12)


def single_layer(neuron_type):
    with nengo.Network(seed=13, label="single layer") as net:
        stim = nengo.Node(lambda t: np.sin(40 * t), label="stim")
        ens = nengo.Ensemble(10, 1, neuron_type=neuron_type, label="ens")
        nengo.Connection(stim, ens, synapse=None)
        nengo.Probe(ens.neurons, label="spikes")
    return net


@pytest.mark.parametrize("jit_compile", [False, True])
def test_surrogate_gradient_is_the_rate_derivative(tmp_path, jit_compile):
    """d(sum of weighted spikes)/d(bias) per neuron is the weighted sum over
    steps of the soft LIF rate's derivative at that step's current (central
    differences of `SoftLIFRate.step`)."""
    lif = nengo.LIF(tau_rc=0.02, tau_ref=0.002, amplitude=0.5)
    net = single_layer(lif)
    _, module = compile_and_load(net, tmp_path, dtype="float64", trainable=True)
    model = module.Model(jit_compile=jit_compile, training_neurons="surrogate")
    (variable,) = [v for v, (_, _, parts) in module.TRAINABLE.items() if parts[0][1] == "bias"]
    offset = module.TRAINABLE[variable][2][0][4]
    weights = np.random.RandomState(3).randn(1, N_STEPS, 10)
    with tf.GradientTape() as tape:
        spikes = model.forward(n_steps=N_STEPS, training=True)["spikes"]
        loss = tf.reduce_sum(spikes * weights)
    grad = tape.gradient(loss, model.params[variable]).numpy()[offset : offset + 10]

    with nengo.Simulator(net, progress_bar=False) as sim:
        built = sim.data[net.all_ensembles[0]]
    t = 0.001 * np.arange(1, N_STEPS + 1)
    currents = np.sin(40 * t)[:, None] * built.scaled_encoders[:, 0] + built.bias
    rate = rate_type(lif)
    h = 1e-6

    def rates(J):
        out = np.zeros_like(J)
        rate.step(0.001, J, out)
        return out

    derivative = (rates(currents + h) - rates(currents - h)) / (2 * h)
    want = np.sum(weights[0] * derivative, axis=0)
    np.testing.assert_allclose(grad, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
