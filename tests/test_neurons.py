"""Every Nengo neuron type, SoftLIFRate, and NumPy stubs for types without a template."""

from __future__ import annotations

import itertools
import linecache
import subprocess
import sys
import textwrap
import warnings

import nengo
import numpy as np
import pytest

from nengo_compile import compile_network
from nengo_compile.cli import main
from nengo_compile.kinds.neuron_stubs import NotSelfContained, rebuild_step
from nengo_compile.neurons import SoftLIFRate

from .conftest import (
    ROOT,
    assert_close_across_kernels,
    assert_ruff_formatted,
    compile_and_load,
    import_module,
    reference,
)
from .test_generated import BLOCK_NENGO

N_STEPS = 300

#: deterministic types, two parameter sets each where they have parameters (so
#: ensembles with different parameters merge), mixed with LIF in one model
DETERMINISTIC = {
    "alif": nengo.AdaptiveLIF(tau_n=0.1, inc_n=0.05),
    "alif_b": nengo.AdaptiveLIF(tau_n=0.2, inc_n=0.1, tau_rc=0.03, min_voltage=-0.5),
    "alif_rate": nengo.AdaptiveLIFRate(tau_n=0.1, inc_n=0.05),
    "alif_rate_b": nengo.AdaptiveLIFRate(tau_n=0.05, inc_n=0.2, amplitude=0.5),
    "izh": nengo.Izhikevich(),
    "izh_b": nengo.Izhikevich(reset_voltage=-55, reset_recovery=4, coupling=0.25),
    "regular": nengo.RegularSpiking(nengo.LIFRate()),
    "regular_tanh": nengo.RegularSpiking(nengo.Tanh(), amplitude=0.5),
    "regular_relu": nengo.RegularSpiking(nengo.RectifiedLinear(amplitude=0.01)),
    "soft": SoftLIFRate(sigma=0.1),
    "soft_b": SoftLIFRate(sigma=1.0, tau_rc=0.03, amplitude=2.0),
    "lif": nengo.LIF(),
}


def float64_tolerance(label, attr):
    """Where this model (inputs through encoders, run with XLA) is not within
    1e-9 of Nengo, and why: XLA computes the input current ``bias + encoders
    x`` with fused multiply-adds, which differ from Nengo's in the last bit;
    Izhikevich voltages and AdaptiveLIFRate rates near threshold amplify that
    bit. The neuron arithmetic itself is exact: see
    `test_float64_neuron_arithmetic_matches_nengo`. Spike rasters stay identical.
    """
    if label.startswith("izh") and attr in ("voltage", "recovery"):
        return 1e-2
    if label.startswith("alif_rate"):
        return {"output": 1.0, "adaptation": 1e-3}.get(attr, 1e-6)
    return 1e-9


def deterministic_model(types=DETERMINISTIC, seed=20):
    with nengo.Network(seed=seed, label="neuron types 2") as net:
        stim = nengo.Node([0.6], label="stim")
        for name, neuron_type in types.items():
            rates = {} if name.startswith("izh") else {"max_rates": nengo.dists.Uniform(100, 180)}
            ens = nengo.Ensemble(16, 1, neuron_type=neuron_type, label=name, **rates)
            nengo.Connection(stim, ens)
            nengo.Probe(ens.neurons, label=f"{name}_out")
            for state in neuron_type.state:
                nengo.Probe(ens.neurons, state, label=f"{name}_{state[:5]}")
            nengo.Probe(ens, synapse=0.01, label=f"{name}_value")
    return net


@pytest.fixture(scope="module")
def deterministic():
    net = deterministic_model()
    data, sim = reference(net, N_STEPS)
    return net, data, sim


def test_deterministic_types_match_nengo_float64(deterministic, tmp_path):
    net, data, _ = deterministic
    compiled, module = compile_and_load(net, tmp_path, dtype="float64")
    outputs = module.Model().run(N_STEPS)
    for probe, name, ref in zip(net.all_probes, module.PROBES, data):
        got = outputs[name][0]
        neurons = isinstance(probe.obj, nengo.ensemble.Neurons)
        label = probe.obj.ensemble.label if neurons else probe.obj.label
        if neurons and probe.attr == "output" and probe.obj.ensemble.neuron_type.spiking:
            np.testing.assert_array_equal(got, ref, err_msg=name)  # identical spike rasters
        error = np.max(np.abs(got - ref))
        assert error <= float64_tolerance(label, probe.attr), (name, error)

    # one group per type: ensembles with different parameters merged
    titles = [g.title for g in compiled.program.groups if g.kind == "neurons"]
    for kind in ("AdaptiveLIF x2", "AdaptiveLIFRate x2", "Izhikevich x2", "SoftLIFRate x2"):
        assert any(t.startswith(kind) for t in titles), titles
    assert any("RegularSpiking" in t and "x3" in t for t in titles), titles


def test_deterministic_types_float32(deterministic, tmp_path):
    """float32: spike counts within 2% (or one spike), rates and values close."""
    net, data, sim = deterministic
    _, module = compile_and_load(net, tmp_path, dtype="float32")
    outputs = module.Model().run(N_STEPS)
    for probe, name, ref in zip(net.all_probes, module.PROBES, data):
        got = outputs[name][0]
        neurons = isinstance(probe.obj, nengo.ensemble.Neurons)
        label = probe.obj.ensemble.label if neurons else probe.obj.label
        if label.startswith("izh") or probe.attr not in ("output", "decoded_output"):
            continue  # Izhikevich voltages are chaotic in float32: spike counts only
        if probe.attr == "output" and probe.obj.ensemble.neuron_type.spiking:
            counts, ref_counts = got.sum(axis=0) * sim.dt, ref.sum(axis=0) * sim.dt
            assert np.all(np.abs(counts - ref_counts) <= np.maximum(0.02 * ref_counts, 1)), name
        elif probe.attr == "output":  # rates: steep near threshold, so on average
            assert np.mean(np.abs(got - ref)) <= 2e-3 * max(1.0, np.max(np.abs(ref))), name
        else:
            assert np.max(np.abs(got - ref)) <= 0.02, name
    for label in ("izh", "izh_b"):
        name = f"{label}_out"
        index = list(module.PROBES).index(name)
        counts = outputs[name][0].sum() * sim.dt
        ref_counts = data[index].sum() * sim.dt
        assert abs(counts - ref_counts) <= 0.05 * ref_counts + 2, (name, counts, ref_counts)


#: every deterministic type, with parameters and currents that make it spike,
#: stay refractory, adapt, chatter or burst: (type, range of input currents)
EXACT = {
    "relu": (nengo.RectifiedLinear(amplitude=0.7), (-50, 300)),
    "spiking_relu": (nengo.SpikingRectifiedLinear(amplitude=0.5), (-50, 400)),
    "sigmoid": (nengo.Sigmoid(tau_ref=0.003), (-6, 6)),
    "tanh": (nengo.Tanh(tau_ref=0.004), (-3, 3)),
    "lif_rate": (nengo.LIFRate(tau_rc=0.03, amplitude=0.5), (0, 4)),
    "lif": (nengo.LIF(tau_rc=0.03, tau_ref=0.003, min_voltage=-0.5), (-1, 5)),
    "alif": (nengo.AdaptiveLIF(tau_n=0.1, inc_n=0.05), (0, 5)),
    "alif_rate": (nengo.AdaptiveLIFRate(tau_n=0.05, inc_n=0.2, amplitude=0.5), (0.8, 3)),
    "soft": (SoftLIFRate(sigma=0.1), (-1, 4)),
    "izh_rs": (nengo.Izhikevich(), (0, 15)),
    "izh_ch": (nengo.Izhikevich(reset_voltage=-50, reset_recovery=2), (0, 15)),
    "izh_ib": (nengo.Izhikevich(reset_voltage=-55, reset_recovery=4), (0, 15)),
    "izh_fs": (nengo.Izhikevich(tau_recovery=0.1), (0, 15)),
    "regular": (nengo.RegularSpiking(nengo.LIFRate()), (0, 4)),
    "regular_alif_rate": (nengo.RegularSpiking(nengo.AdaptiveLIFRate(inc_n=0.05)), (0.8, 3)),
}
EXACT_STEPS = 1000


@pytest.mark.parametrize("jit", [False, True], ids=["tf", "xla"])
def test_float64_neuron_arithmetic_matches_nengo(jit, tmp_path):
    """Float64, with and without XLA: output and every state of every
    deterministic type within 1e-9 of Nengo over 1000 steps, spikes identical.

    The currents reach the neurons bit for bit (PresentInput into
    ``ens.neurons``, gain 1, bias 0), so this checks the neuron arithmetic
    alone; without the held constants and ``+ zero`` (see
    `nengo_compile.kinds.neurons`), the graph optimizer's rewrites and XLA's
    fused multiply-adds moved Izhikevich voltages by up to 100 mV (a spike
    moved) on such a model. Izhikevich, ReLU and
    SpikingReLU are bit for bit; the others differ where TensorFlow's ``exp``,
    ``expm1``, ``log1p`` and ``tanh`` round otherwise than NumPy's (1e-13).
    """
    rng = np.random.default_rng(7)
    with nengo.Network(seed=7) as net:
        for name, (neuron_type, (low, high)) in EXACT.items():
            currents = rng.uniform(low, high, size=(EXACT_STEPS // 50 + 1, 20))
            stim = nengo.Node(nengo.processes.PresentInput(currents, 0.05))
            ens = nengo.Ensemble(
                20, 1, neuron_type=neuron_type, gain=np.ones(20), bias=np.zeros(20)
            )
            nengo.Connection(stim, ens.neurons, synapse=None)
            nengo.Probe(ens.neurons, "input", label=f"{name}:input")
            for attr in neuron_type.probeable:
                nengo.Probe(ens.neurons, attr, label=f"{name}:{attr}")
    data, _ = reference(net, EXACT_STEPS)
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    outputs = module.Model(jit_compile=jit).run(EXACT_STEPS)
    for probe, name, ref in zip(net.all_probes, module.PROBES, data):
        got = outputs[name][0]
        label = probe.label.split(":")[0]
        if probe.attr == "input" or label in ("relu", "spiking_relu") or label.startswith("izh"):
            np.testing.assert_array_equal(got, ref, err_msg=probe.label)  # bit for bit
        assert np.max(np.abs(got - ref)) <= 1e-9, (probe.label, np.max(np.abs(got - ref)))
        if probe.attr == "output" and probe.obj.ensemble.neuron_type.spiking:
            np.testing.assert_array_equal(got, ref, err_msg=probe.label)
    labels = [probe.label for probe in net.all_probes]
    for name in ("lif", "alif", "izh_ch", "izh_ib", "regular"):  # driven: they spike
        spikes = outputs[list(module.PROBES)[labels.index(f"{name}:output")]][0]
        assert spikes.sum() * 0.001 > 100, name


STOCHASTIC = {
    "stochastic": nengo.StochasticSpiking(nengo.LIFRate()),
    "stochastic_tanh": nengo.StochasticSpiking(nengo.Tanh(tau_ref=0.004)),
    "poisson": nengo.PoissonSpiking(nengo.LIFRate(), amplitude=0.5),
    "poisson_tanh": nengo.PoissonSpiking(nengo.Tanh(tau_ref=0.004)),
}
STOCHASTIC_STEPS = 1000


def stochastic_model():
    with nengo.Network(seed=30, label="stochastic") as net:
        stim = nengo.Node([0.4])
        for name, neuron_type in STOCHASTIC.items():
            ens = nengo.Ensemble(
                40, 1, neuron_type=neuron_type, max_rates=nengo.dists.Uniform(50, 150), label=name
            )
            nengo.Connection(stim, ens)
            nengo.Probe(ens.neurons, label=f"{name}_out")
            nengo.Probe(ens.neurons, "rate_out", label=f"{name}_rate")
    return net


def test_stochastic_types_match_nengo_statistics(tmp_path):
    """Spike counts over 1 s: per population, within 4 standard deviations of
    the expected count (sum of rate * dt) for both simulators; signs agree.

    The draws cannot equal NumPy's; the expected count comes from the base
    type's rates (``rate_out``), which are identical in float64.
    """
    net = stochastic_model()
    data, sim = reference(net, STOCHASTIC_STEPS)
    compiled, module = compile_and_load(net, tmp_path, dtype="float64")
    model = module.Model()
    outputs = model.run(STOCHASTIC_STEPS, batch_size=2)
    dt = sim.dt
    for i, name in enumerate(STOCHASTIC):
        spikes, rate = outputs[f"{name}_out"], outputs[f"{name}_rate"][0]
        np.testing.assert_allclose(rate, data[2 * i + 1], atol=1e-9)
        amplitude = STOCHASTIC[name].amplitude
        expected = np.abs(rate).sum() * dt  # expected number of spikes
        if name.startswith("poisson"):
            variance = expected  # Poisson
        else:
            frac = np.modf(np.abs(rate) * dt)[0]
            variance = np.sum(frac * (1 - frac))
        for counts in (
            spikes[0] * dt / amplitude,
            spikes[1] * dt / amplitude,
            data[2 * i] * dt / amplitude,
        ):
            assert np.allclose(counts, np.round(counts))  # whole spikes
            assert np.all(np.sign(counts) * np.sign(rate) >= 0)  # spikes have the rate's sign
            total = np.abs(counts).sum()
            assert abs(total - expected) <= 4 * np.sqrt(variance) + 1, (name, total, expected)
        assert not np.array_equal(spikes[0], spikes[1])  # batch rows draw differently

    # two runs of one module agree (the same graph and shapes: bit for bit);
    # another seed draws differently; a row draws what it draws in another
    # batch size (float64: the same spikes, see assert_close_across_kernels)
    again = model.run(STOCHASTIC_STEPS, batch_size=2)
    for key in outputs:
        np.testing.assert_array_equal(again[key], outputs[key])
    model.set_seed(123)
    other = model.run(STOCHASTIC_STEPS, batch_size=2)
    assert not np.array_equal(other["poisson_out"], outputs["poisson_out"])
    assert_close_across_kernels(
        module.Model(seed=123).run(50)["stochastic_out"],
        other["stochastic_out"][:1, :50],
        "stochastic_out at batch 1",
    )


# ---- SoftLIFRate


def closed_form(J, sigma, tau_rc=0.02, tau_ref=0.002, amplitude=1.0):
    """The soft LIF rate, written naively (valid where nothing overflows)."""
    j = sigma * np.log1p(np.exp((J - 1) / sigma))
    return amplitude / (tau_ref + tau_rc * np.log1p(1 / j))


def soft_model(sigma, J):
    with nengo.Network(seed=0) as net:
        ens = nengo.Ensemble(len(J), 1, neuron_type=SoftLIFRate(sigma=sigma, amplitude=2.0))
        ens.gain = np.ones(len(J))
        ens.bias = np.asarray(J)
        nengo.Probe(ens.neurons, label="rates")
    return net


def test_soft_lif_rate_closed_form_and_extremes(tmp_path):
    J = np.concatenate([np.linspace(-3, 5, 81), [-1e6, -1e3, 1e3, 1e6]])
    net = soft_model(0.2, J)
    data, _ = reference(net, 2)
    moderate = np.abs(J) < 10
    expected = closed_form(J[moderate], 0.2, amplitude=2.0)
    np.testing.assert_allclose(data[0][-1][moderate], expected, rtol=1e-12)
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-5)):
        _, module = compile_and_load(net, tmp_path, dtype=dtype)
        got = module.Model().run(2)["rates"][0, -1]
        assert np.all(np.isfinite(got)) and np.all(got > 0)
        np.testing.assert_allclose(got, data[0][-1], rtol=rtol)


def test_soft_lif_rate_gradient_is_finite_and_continuous(tmp_path):
    """The compiled rate's TF gradient: finite everywhere (no NaN from an unused
    tf.where branch), continuous at threshold, equal to the closed form's."""
    import tensorflow as tf

    J = 1.0 + np.array([-1e3, -1e-3, -1e-9, 0.0, 1e-9, 1e-3, 1e3])
    _, module = compile_and_load(soft_model(0.05, J), tmp_path, dtype="float64")
    model = module.Model()
    (bias,) = [v for v in model.params.values() if v.shape == J.shape and np.allclose(v.numpy(), J)]
    with tf.GradientTape() as tape:
        tape.watch(bias)
        _, probes = model._step(model.initial_state(1), {}, model._parameters())
        total = tf.reduce_sum(probes["rates"])
    grad = tape.gradient(total, bias).numpy()
    assert np.all(np.isfinite(grad)) and np.all(grad > 0), grad
    near = grad[2:5]  # J = 1 - 1e-9, 1, 1 + 1e-9
    assert np.max(np.abs(near - near[1])) <= 1e-6 * near[1]
    h = 1e-6
    high, low = (closed_form(1 + 1e-3 + d, 0.05, amplitude=2.0) for d in (h, -h))
    assert abs(grad[5] - (high - low) / (2 * h)) <= 1e-4 * grad[5]


def test_soft_lif_rate_converges_to_lif_rate():
    J = np.linspace(-1, 4, 501)
    J = J[np.abs(J - 1) > 0.05]
    lif = np.zeros_like(J)
    nengo.LIFRate().step(0.001, J, lif)
    errors = []
    for sigma in (0.1, 0.01, 0.001, 1e-4):
        out = np.zeros_like(J)
        SoftLIFRate(sigma=sigma).step(0.001, J, out)
        errors.append(np.max(np.abs(out - lif)))
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.1


def test_soft_lif_rate_gain_bias_round_trip():
    neuron_type = SoftLIFRate(sigma=0.3)
    max_rates, intercepts = np.array([100.0, 250.0, 380.0]), np.array([-0.5, 0.0, 0.7])
    gain, bias = neuron_type.gain_bias(max_rates, intercepts)
    rates = neuron_type.rates(np.array([1.0]), gain, bias)[0]
    np.testing.assert_allclose(rates, max_rates, rtol=1e-10)
    np.testing.assert_allclose(gain * intercepts + bias, 1.0, rtol=1e-12)
    np.testing.assert_allclose(
        neuron_type.max_rates_intercepts(gain, bias), (max_rates, intercepts)
    )
    with pytest.raises(nengo.exceptions.ValidationError):
        neuron_type.gain_bias(np.array([600.0]), np.array([0.0]))


# ---- stubs for neuron types without a template

CUSTOM_MODEL = '''
import nengo
import numpy as np

SCALE = 2.0


class Bursty(nengo.neurons.NeuronType):
    """Integrate the squared current; spike and reset to a fixed level."""

    state = {"voltage": nengo.dists.Uniform(0, 1)}
    spiking = True
    threshold = nengo.params.NumberParam("threshold", low=0)
    reset = nengo.params.NumberParam("reset")

    def __init__(self, threshold=1.0, reset=-0.25, initial_state=None):
        super().__init__(initial_state)
        self.threshold = threshold
        self.reset = reset

    def gain_bias(self, max_rates, intercepts):
        return nengo.LIFRate().gain_bias(max_rates, intercepts)

    def step(self, dt, J, output, voltage):
        """A docstring, dropped from the copy."""
        voltage += dt * 100.0 * (np.maximum(J, 0) ** 2 - voltage)
        spiked = voltage > self.threshold
        output[:] = spiked / dt
        voltage[spiked] = self.reset


class Scaled(nengo.RectifiedLinear):
    def step(self, dt, J, output):
        output[...] = SCALE * np.maximum(J, 0)


class MyLIF(nengo.LIF):
    """Inherits LIF's step: runs LIF's template."""


model = nengo.Network(seed=3)
with model:
    stim = nengo.Node(0.5)
    ensembles = [
        nengo.Ensemble(20, 1, neuron_type=Bursty(), label="a"),
        nengo.Ensemble(15, 1, neuron_type=Bursty(threshold=0.8), label="b"),
        nengo.Ensemble(10, 1, neuron_type=Scaled(), label="c"),
        nengo.Ensemble(10, 1, neuron_type=MyLIF(tau_rc=0.03), label="d"),
    ]
    for ens in ensembles:
        nengo.Connection(stim, ens)
        nengo.Probe(ens.neurons, label=ens.label)
    nengo.Probe(ensembles[1].neurons, "voltage", label="b_voltage")
'''


def scaled_step(dt, J, output):
    output[...] = 2.0 * np.maximum(J, 0)


def compile_model_file(folder, text, capsys):
    """Compile a model file with the CLI; returns (module path, stdout, warnings)."""
    model_file = folder / "custom.py"
    model_file.write_text(text)
    out = folder / "custom_tf.py"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main([str(model_file), "-o", str(out), "--dtype", "float64", "--report"])
    assert code == 0
    return out, capsys.readouterr().out, [str(w.message) for w in caught]


def test_custom_types_compile_to_stubs(tmp_path, capsys):
    out, stdout, caught = compile_model_file(tmp_path, CUSTOM_MODEL, capsys)
    messages = [m for m in caught if "has no template" in m]
    assert len(messages) == 2  # once per type (Bursty has two parameter sets)
    assert any("Bursty" in m and "copied" in m for m in messages)
    assert any("Scaled" in m and "'SCALE'" in m and "neuron_steps" in m for m in messages)
    assert "stubs (2)" in stdout and "Bursty (custom.py:" in stdout and "Scaled" in stdout

    module = import_module(out)
    assert set(module.STUBS) == {"Bursty", "Scaled"}  # MyLIF runs LIF's template
    assert module.STUBS["Bursty"][1] and not module.STUBS["Scaled"][1]
    source = out.read_text()
    assert "self." not in source.split("def stub_bursty(")[1].split("# fmt: on")[0]
    assert "A docstring" not in source

    with pytest.raises(NotImplementedError, match="Scaled.*neuron_steps"):
        module.Model()
    with pytest.raises(KeyError, match="Nope"):
        module.Model(neuron_steps={"Scaled": scaled_step, "Nope": scaled_step})
    with pytest.raises(ValueError, match="jit_compile"):
        module.Model(neuron_steps={"Scaled": scaled_step}, jit_compile=True)
    assert not module.Model(neuron_steps={"Scaled": scaled_step}).jit_compile  # stubs: no XLA

    namespace = {}
    exec(compile(CUSTOM_MODEL, "custom.py", "exec"), namespace)
    net = namespace["model"]
    data, _ = reference(net, 200)
    outputs = module.Model(neuron_steps={"Scaled": scaled_step}).run(200, batch_size=2)
    for name, ref in zip(module.PROBES, data):
        for row in outputs[name]:
            assert np.max(np.abs(row - ref)) <= 1e-9, name

    assert_ruff_formatted(out)


TWIN_MODULE = """
import nengo
import numpy as np


class Scaled(nengo.RectifiedLinear):
    def step(self, dt, J, output):
        output[...] = 3.0 * np.maximum(J, 0)
"""

TWIN_MODEL = """
import nengo
import numpy as np

import twin


class Scaled(nengo.RectifiedLinear):
    def step(self, dt, J, output):
        output[...] = 2.0 * np.maximum(J, 0)


model = nengo.Network(seed=4)
with model:
    stim = nengo.Node(0.5)
    for label, neuron_type in (("here", Scaled()), ("there", twin.Scaled())):
        ens = nengo.Ensemble(10, 1, neuron_type=neuron_type, label=label)
        nengo.Connection(stim, ens)
        nengo.Probe(ens.neurons, label=label)
"""


def test_two_types_of_one_name_are_told_apart(tmp_path, capsys, monkeypatch):
    """Two classes named ``Scaled`` (the model's and a neighbour module's) get
    their own stub, ``STUBS`` entry and ``neuron_steps`` key."""
    (tmp_path / "twin.py").write_text(TWIN_MODULE)
    out, _, caught = compile_model_file(tmp_path, TWIN_MODEL, capsys)
    assert len([m for m in caught if "has no template" in m]) == 2
    module = import_module(out)
    assert sorted(module.STUBS) == ["Scaled (custom.py:9)", "Scaled (twin.py:6)"]

    monkeypatch.syspath_prepend(str(tmp_path))
    namespace = {}
    exec(compile(TWIN_MODEL, str(tmp_path / "custom.py"), "exec"), namespace)
    data, _ = reference(namespace["model"], 100)
    outputs = module.Model().run(100)
    for name, ref in zip(module.PROBES, data):
        assert np.max(np.abs(outputs[name][0] - ref)) <= 1e-9, name

    # an implementation given for one of them replaces that one only
    assert np.max(data[1]) > 100
    outputs = module.Model(neuron_steps={"Scaled (twin.py:6)": scaled_step}).run(100)
    assert np.max(np.abs(outputs["here"][0] - data[0])) <= 1e-9
    assert np.max(np.abs(outputs["there"][0] - data[1] * 2 / 3)) <= 1e-9


def test_copied_stub_runs_without_nengo(tmp_path, capsys):
    text = CUSTOM_MODEL.replace("neuron_type=Scaled()", "neuron_type=nengo.RectifiedLinear()")
    out, _, _ = compile_model_file(tmp_path, text, capsys)
    script = BLOCK_NENGO.format(root=str(ROOT), folder=str(tmp_path), module=out.stem)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "b_voltage (2, 50, 15)" in result.stdout


_counter = itertools.count()


def _step_of(body, attributes=""):
    """A RectifiedLinear subclass whose step is ``body`` (source kept in linecache)."""
    namespace = {"nengo": nengo, "np": np}
    source = f"class T(nengo.RectifiedLinear):\n{attributes}    def step(self, dt, J, output):\n"
    source += textwrap.indent(textwrap.dedent(body), " " * 8)
    filename = f"<step {next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace["T"]()


@pytest.mark.parametrize(
    "body, reason",
    [
        ("output[...] = helper(J)\n", "name 'helper'"),
        ("super().step(dt, J, output)\n", "super"),
        ("output[...] = self.rates(J, 1, 0)\n", "not a number"),
        ("output[...] = np.random.rand(*J.shape)\n", "'random'"),
        ("import math\noutput[...] = math.exp(J)\n", "Import"),
        ("output[...] = [x for x in J]\n", "ListComp"),
        ("output[...] = J.__class__\n", "'__class__'"),
        ("self.amplitude = 2\n", "assigns to an attribute"),
    ],
)
def test_steps_that_are_not_self_contained(body, reason):
    neuron_type = _step_of(body)
    with pytest.raises(NotSelfContained, match=reason):
        rebuild_step(neuron_type)


def test_step_rebuilt_with_parameters_as_constants():
    neuron_type = _step_of(
        "x = np.maximum(J, 0) ** 2\noutput[...] = self.amplitude * x - self.offset ** 2\n",
        attributes="    offset = -0.5\n",
    )
    signature, lines = rebuild_step(neuron_type)
    assert signature == "dt, J, output"
    assert lines == ("x = np.maximum(J, 0) ** 2", "output[...] = 1 * x - (-0.5) ** 2")


def test_subclass_that_only_inherits_step_uses_the_template():
    class Quiet(nengo.LIF):
        probeable_extra = True

    with nengo.Network(seed=1) as net:
        ens = nengo.Ensemble(10, 1, neuron_type=Quiet())
        nengo.Probe(ens.neurons)
    compiled = compile_network(net)
    assert not compiled.program.stubs
    assert [g.kind for g in compiled.program.groups].count("neurons") == 1
