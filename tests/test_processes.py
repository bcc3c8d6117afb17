"""Nengo's processes compiled to TF: exact where Nengo's values can be computed
at compile time, statistically faithful where they are random draws.

Random processes that draw every step cannot reproduce Nengo's draws (Nengo
uses NumPy's Mersenne Twister, the compiled module counter-based Philox draws),
so they are compared with nengo.Simulator runs of the same network through their
statistics:
means, spreads, distributions (two-sample Kolmogorov-Smirnov), correlation in
time and spectra. An unseeded WhiteSignal draws its whole period at the start,
so under the default seed it is Nengo's own period, compared within 1e-9. All
seeds are fixed, so these tests are deterministic.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.dists import Choice, Exponential, Gaussian, Uniform
from nengo.processes import (
    BrownNoise,
    FilteredNoise,
    Piecewise,
    PresentInput,
    WhiteNoise,
    WhiteSignal,
)
from scipy import stats

from nengo_compile import compile_network

from .conftest import (
    assert_close_across_kernels,
    assert_ruff_formatted,
    compile_and_load,
    kernel_atol,
    max_errors,
    reference,
)

DT = 0.001


def deterministic_processes():
    """Every deterministic process, on Nodes, with awkward times."""
    with nengo.Network(seed=21, label="deterministic processes") as net:
        sources = {
            "present": PresentInput([[1, 2], [3, 4], [5, 6]], presentation_time=0.0033),
            "present_grid": PresentInput(np.arange(12.0).reshape(4, 3), presentation_time=0.01),
            "present_1d": PresentInput([0.5, -0.5, 2.0], presentation_time=0.004),
            "pw_zero": Piecewise({0: 1, 0.0505: [2], 0.1: -1, 0.2355: 0.25, -1: 3}),
            "pw_late": Piecewise({0.05: [1, -2], 0.12: [0.5, 0.5]}),
            "white_signal": WhiteSignal(0.1, high=40, seed=4),
            "white_signal_y0": WhiteSignal(0.13, high=25, rms=0.3, y0=0.2, seed=5),
        }
        data = {0: [1, 0], 0.05: [2, 1], 0.1: [-1, 3], 0.153: [0, 1], 0.2: [0.5, -0.5]}
        for kind in ("linear", "nearest", "slinear", "quadratic", "cubic"):
            sources[f"pw_{kind}"] = Piecewise(data, interpolation=kind)
        sources["pw_late_linear"] = Piecewise({0.1: 1.0, 0.15: 3.0}, interpolation="linear")
        sources["pw_past"] = Piecewise({-0.5: 1.0, -0.2: 3.0}, interpolation="linear")
        size = {"white_signal": 2, "white_signal_y0": 3}
        for label, process in sources.items():
            node = nengo.Node(process, size_out=size.get(label), label=label)
            nengo.Probe(node, label=label)
        # deterministic ensemble noise: increments the neurons' input exactly
        noisy = nengo.Ensemble(20, 1, noise=WhiteSignal(0.1, high=20, rms=2.0, seed=7))
        nengo.Probe(noisy.neurons, "input", label="noisy_input")
        # LinearFilter processes on Nodes with an input (compiled as synapses)
        stim = nengo.Node(PresentInput([[1.0], [-0.5]], 0.03), label="stim")
        for label, synapse in [
            ("lowpass", nengo.Lowpass(0.02)),
            ("alpha", nengo.Alpha(0.01)),
            ("passthrough", nengo.LinearFilter([2.0, 1.0], [1.0, 20.0])),
        ]:
            node = nengo.Node(synapse, size_in=1, label=label)
            nengo.Connection(stim, node, synapse=None)
            nengo.Probe(node, label=label)
    return net


@pytest.fixture(scope="module")
def deterministic():
    net = deterministic_processes()
    data, _ = reference(net, 400)
    return net, data


def test_deterministic_processes_match_nengo_float64(deterministic, tmp_path):
    net, data = deterministic
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    for jit in (True, False):
        outputs = module.Model(jit_compile=jit).run(400, batch_size=2)
        errors = max_errors(net, module, outputs, data)
        assert max(errors.values()) <= 1e-9, (jit, errors)
        for name in module.PROBES:  # no randomness: every batch row is the same, to rounding
            assert_close_across_kernels(outputs[name][1], outputs[name][0], (name, jit))
    assert np.ptp(outputs["white_signal"][0]) > 0.1  # not trivially zero


def test_deterministic_processes_float32(deterministic, tmp_path):
    net, data = deterministic
    _, module = compile_and_load(net, tmp_path, dtype="float32")
    outputs = module.Model().run(400)
    for name, ref in zip(module.PROBES, data):
        scale = max(1.0, float(np.max(np.abs(ref))))
        assert np.max(np.abs(outputs[name][0] - ref)) <= 1e-6 * scale, name


def test_deterministic_processes_stream_in_chunks(deterministic, tmp_path):
    """Selection by the step counter continues across runs with state."""
    net, data = deterministic
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    model = module.Model()
    first, state = model.run(150, return_state=True)
    second = model.run(250, state=state)
    for name, ref in zip(module.PROBES, data):
        joined = np.concatenate([first[name][0], second[name][0]])
        assert np.max(np.abs(joined - ref)) <= 1e-9, name


# ---- random processes ----------------------------------------------------------

N_STEPS = 2000
BATCH = 4
DISTS = {
    "gaussian": (WhiteNoise(Gaussian(0.5, 2.0), scale=False), 4),
    "gaussian_scaled": (WhiteNoise(), 4),  # Nengo's default: N(0, 1) / sqrt(dt)
    "uniform": (WhiteNoise(Uniform(-1, 3), scale=False), 4),
    "uniform_int": (WhiteNoise(Uniform(0, 5, integer=True), scale=False), 4),
    "exponential": (WhiteNoise(Exponential(0.2, shift=0.1, high=0.5), scale=False), 4),
}
FILTERS = {
    "lowpass": FilteredNoise(nengo.Lowpass(0.01), scale=False),
    "alpha": FilteredNoise(nengo.Alpha(0.005), Uniform(-1, 1)),
    "passthrough": FilteredNoise(nengo.LinearFilter([2.0, 1.0], [1.0, 20.0]), scale=False),
    "gain": FilteredNoise(nengo.LinearFilter([0.5], [1.0]), scale=False),
}


def random_processes():
    with nengo.Network(seed=22, label="random processes") as net:
        for label, (process, size) in DISTS.items():
            nengo.Probe(nengo.Node(process, size_out=size, label=label), label=label)
        for label, process in FILTERS.items():
            nengo.Probe(nengo.Node(process, size_out=16, label=label), label=label)
        nengo.Probe(nengo.Node(BrownNoise(), size_out=64, label="brown"), label="brown")
        signal = WhiteSignal(0.5, high=12, rms=0.4)
        nengo.Probe(nengo.Node(signal, size_out=16, label="signal"), label="signal")
        seeded = WhiteNoise(Gaussian(0, 1), scale=False, seed=9)
        nengo.Probe(nengo.Node(seeded, size_out=2, label="seeded"), label="seeded")
    return net


@pytest.fixture(scope="module")
def random_runs(tmp_path_factory):
    net = random_processes()
    data, _ = reference(net, N_STEPS)
    folder = tmp_path_factory.mktemp("random")
    _, module = compile_and_load(net, folder, dtype="float64")
    model = module.Model()
    outputs = model.run(N_STEPS, batch_size=BATCH)
    return net, dict(zip(module.PROBES, data)), module, model, outputs


def _samples(values):
    return np.asarray(values).reshape(-1)


@pytest.mark.parametrize("name", sorted(DISTS))
def test_white_noise_distribution_matches_nengo(name, random_runs):
    _, ref, _, _, outputs = random_runs
    ours, theirs = _samples(outputs[name]), _samples(ref[name])
    assert ours.size == N_STEPS * BATCH * 4
    # the same distribution: two-sample KS test, and matching moments
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    for moment in (np.mean, np.std):
        spread = np.std(theirs) * 5 * np.sqrt(1 / ours.size + 1 / theirs.size)
        assert abs(moment(ours) - moment(theirs)) <= spread + 0.02 * abs(moment(theirs))
    # white: no correlation between successive steps
    series = outputs[name][0] - np.mean(ours)
    lag1 = np.sum(series[1:] * series[:-1]) / np.sum(series**2)
    assert abs(lag1) < 5 / np.sqrt(series.size)


def test_white_noise_values_follow_nengo_conventions(random_runs):
    """Nengo's scale convention (divide by sqrt(dt)) and the supports of the
    discrete and clipped distributions."""
    _, _, _, _, outputs = random_runs
    assert np.std(outputs["gaussian_scaled"]) == pytest.approx(1 / np.sqrt(DT), rel=0.03)
    assert np.std(outputs["gaussian"]) == pytest.approx(2.0, rel=0.03)
    assert set(np.unique(outputs["uniform_int"])) == {0, 1, 2, 3, 4}
    exponential = outputs["exponential"]
    assert exponential.min() >= 0.1 and exponential.max() < 0.5
    assert np.mean(exponential == np.nextafter(0.5, 0)) == pytest.approx(np.exp(-2), abs=0.02)
    uniform = outputs["uniform"]
    assert uniform.min() >= -1 and uniform.max() < 3


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filtered_noise_matches_nengo(name, random_runs):
    """Steady-state spread and correlation in time (the filter's signature),
    against the filter's impulse response, for the compiled module and Nengo."""
    _, ref, _, _, outputs = random_runs
    process = FILTERS[name]
    impulse = np.zeros(400)
    impulse[0] = 1.0
    h = process.synapse.filt(impulse, dt=DT, y0=0)
    variance = process.dist.sample(200000, rng=np.random.RandomState(0)).var()
    if process.scale:
        variance /= DT
    ours, theirs = outputs[name][:, 200:], ref[name][200:]
    assert np.std(ours) == pytest.approx(np.sqrt(variance * np.sum(h**2)), rel=0.05)
    assert np.std(theirs) == pytest.approx(np.sqrt(variance * np.sum(h**2)), rel=0.1)
    for lag in (1, 5, 20):
        expected = np.sum(h[lag:] * h[:-lag]) / np.sum(h**2)
        assert _autocorr(ours, lag) == pytest.approx(expected, abs=0.04)
        assert _autocorr(theirs[None], lag) == pytest.approx(expected, abs=0.08)


def _autocorr(x, lag):
    """Mean autocorrelation at ``lag`` steps of [rows, steps, dims] series."""
    x = x - x.mean(axis=1, keepdims=True)
    return float(np.sum(x[:, lag:] * x[:, :-lag]) / np.sum(x * x))


def test_brown_noise_variance_grows_linearly(random_runs):
    """BrownNoise integrates N(0, 1/dt) noise: variance t, as in Nengo."""
    _, ref, _, _, outputs = random_runs
    for t in (0.5, 1.0, 2.0):
        step = int(round(t / DT)) - 1
        ours = outputs["brown"][:, step].reshape(-1)  # 4 x 64 paths
        theirs = ref["brown"][step]  # 64 paths
        assert np.var(ours) == pytest.approx(t, rel=0.25)
        assert np.var(theirs) == pytest.approx(t, rel=0.5)


def test_unseeded_white_signal_spectrum(random_runs):
    """Under a seed other than the default (whose period is Nengo's own, below),
    periodic, band-limited below ``high`` and with Nengo's rms."""
    _, ref, _, model, _ = random_runs
    period = 500  # steps
    model.set_seed(1234)
    try:
        ours = model.run(N_STEPS, batch_size=BATCH)["signal"]
    finally:
        model.set_seed(None)
    assert not np.array_equal(ours[0], ours[1])  # Philox draws: rows differ
    np.testing.assert_allclose(ours[:, period:], ours[:, :-period], atol=1e-12)
    freqs = np.fft.rfftfreq(period, DT)
    for signal in (ours.transpose(0, 2, 1).reshape(-1, N_STEPS), ref["signal"].T):
        power = np.abs(np.fft.rfft(signal[:, :period], axis=1)) ** 2
        assert np.all(power[:, freqs > 12] <= 1e-18 * power.sum(axis=1, keepdims=True))
        assert np.mean(power[:, (freqs > 0) & (freqs <= 12)] > 0) > 0.99
    rms_ours = np.sqrt(np.mean(ours[:, :period] ** 2))
    rms_theirs = np.sqrt(np.mean(ref["signal"][:period] ** 2))
    assert rms_ours == pytest.approx(0.4, rel=0.15)
    assert rms_theirs == pytest.approx(0.4, rel=0.2)


def test_runs_agree_and_rows_differ(random_runs):
    _, _, module, model, outputs = random_runs
    again = model.run(N_STEPS, batch_size=BATCH)
    fresh = module.Model().run(N_STEPS, batch_size=BATCH)
    for name in module.PROBES:
        # the same graph on the same shapes in this process: bit for bit
        np.testing.assert_array_equal(again[name], outputs[name])
        np.testing.assert_array_equal(fresh[name], outputs[name])
        if name != "signal":  # the unseeded WhiteSignal: Nengo's own period
            assert not np.array_equal(outputs[name][0], outputs[name][1]), name
    # streaming in chunks continues the same draws (runs of other lengths are
    # other XLA compilations: the same values to rounding)
    first, state = model.run(300, batch_size=BATCH, return_state=True)
    second = model.run(200, state=state)
    for name in module.PROBES:
        joined = np.concatenate([first[name], second[name]], axis=1)
        assert_close_across_kernels(joined, outputs[name][:, :500], f"{name} in chunks")


def test_model_seed_changes_unseeded_processes_only(random_runs):
    """As in Nengo, the simulator's seed changes unseeded processes; a process
    with its own seed always draws the same values."""
    _, _, module, _, outputs = random_runs
    model = module.Model(seed=1234)
    other = model.run(100, batch_size=BATCH)
    for name in module.PROBES:
        want = outputs[name][:, :100]
        same = np.max(np.abs(other[name] - want)) <= kernel_atol(want)
        assert same == (name == "seeded"), name
    model.set_seed(None)  # back to the default, SEED + 1
    again = model.run(100, batch_size=BATCH)
    for name in module.PROBES:
        assert_close_across_kernels(again[name], outputs[name][:, :100], name)


def test_seeded_noise_is_independent_of_network(tmp_path):
    """A seeded process draws the same values wherever it is."""
    outs = []
    for seed in (1, 2):
        with nengo.Network(seed=seed) as net:
            other = nengo.Node(WhiteNoise(scale=False), size_out=3)  # unseeded
            node = nengo.Node(WhiteNoise(Uniform(0, 1), seed=3), size_out=3)
            nengo.Probe(other, label="other")
            nengo.Probe(node, label="seeded")
        _, module = compile_and_load(net, tmp_path)
        outs.append(module.Model().run(50))
    assert_close_across_kernels(outs[1]["seeded"], outs[0]["seeded"], "seeded")
    assert np.max(np.abs(outs[1]["other"] - outs[0]["other"])) > 1e3 * kernel_atol(outs[0]["other"])


def test_jit_compiled_noise_is_deterministic(tmp_path):
    with nengo.Network(seed=3) as net:
        node = nengo.Node(FilteredNoise(nengo.Lowpass(0.005)), size_out=3)
        nengo.Probe(node)
        nengo.Probe(nengo.Node(WhiteSignal(0.2, high=20), size_out=2))
    _, module = compile_and_load(net, tmp_path)
    model = module.Model(jit_compile=True)
    first, second = model.run(300, batch_size=2), model.run(300, batch_size=2)
    for name in module.PROBES:
        np.testing.assert_array_equal(first[name], second[name])
        assert np.std(first[name]) > 0


# ---- ensemble noise ---------------------------------------------------------------


def ensemble_noise():
    with nengo.Network(seed=23, label="ensemble noise") as net:
        white = nengo.Ensemble(40, 1, noise=WhiteNoise(Gaussian(0.2, 0.5), scale=False))
        filtered = nengo.Ensemble(30, 1, noise=FilteredNoise(nengo.Lowpass(0.005)))
        plain = nengo.Ensemble(20, 1)
        for label, ens in [("white", white), ("filtered", filtered), ("plain", plain)]:
            nengo.Probe(ens.neurons, "input", label=f"{label}_input")
            nengo.Probe(ens.neurons, label=f"{label}_spikes")
    return net


def test_ensemble_noise_matches_nengo(tmp_path):
    net = ensemble_noise()
    n_steps = 1000
    data, sim = reference(net, n_steps)
    ref = dict(zip([p.label for p in net.all_probes], data))
    _, module = compile_and_load(net, tmp_path, dtype="float32")
    outputs = module.Model().run(n_steps, batch_size=BATCH)
    for label, ens in [("white", net.ensembles[0]), ("filtered", net.ensembles[1])]:
        bias = sim.data[ens].bias
        ours = outputs[f"{label}_input"][:, 100:] - bias  # the noise alone (no input)
        theirs = ref[f"{label}_input"][100:] - bias
        assert np.std(ours) == pytest.approx(np.std(theirs), rel=0.08)
        spread = np.std(theirs) * 5 / np.sqrt(theirs.size)
        assert abs(np.mean(ours) - np.mean(theirs)) <= 2 * spread
        assert _autocorr(ours, 3) == pytest.approx(_autocorr(theirs[None], 3), abs=0.06)
        # noise changes firing: total spike counts agree within their spread
        counts = outputs[f"{label}_spikes"].sum(axis=(1, 2)) * DT
        assert abs(counts.mean() - ref[f"{label}_spikes"].sum() * DT) <= 0.1 * counts.mean() + 5
    # an ensemble without noise is still exact
    plain = outputs["plain_input"][0]
    assert np.max(np.abs(plain - ref["plain_input"])) <= 1e-4


# ---- generated code and errors --------------------------------------------------------


def test_generated_source_is_formatted_and_deterministic(tmp_path):
    first = compile_network(random_processes(), module_name="procs").source
    second = compile_network(random_processes(), module_name="procs").source
    assert first == second
    merged = compile_network(ensemble_noise(), module_name="noise")
    kinds = [g.kind for g in merged.program.groups]
    assert kinds.count("white_noise") == 1 and kinds.count("filtered_noise") == 1
    for index, source in enumerate((first, merged.source, _deterministic_source())):
        path = tmp_path / f"procs{index}.py"
        path.write_text(source)
        assert_ruff_formatted(path)
        assert "numpy_function" not in source.split("class Model(CompiledModel)")[1]


def _deterministic_source():
    return compile_network(deterministic_processes(), module_name="det").source


def test_processes_without_tf_form_stay_python_hooks():
    """Processes with no TF form become named hooks (one warning each, with the
    reason), served by Nengo's own step in nengo_compile.Simulator."""
    from nengo_compile import Simulator
    from nengo_compile.lower import TranslationWarning

    class Custom(nengo.Process):
        def make_step(self, shape_in, shape_out, dt, rng, state):
            return lambda t: np.full(shape_out, np.sin(10 * t))

    with nengo.Network(seed=1) as net:
        nodes = [
            nengo.Node(WhiteNoise(Choice([[1.0], [2.0]])), size_out=1, label="choice"),
            nengo.Node(Piecewise({0: lambda t: [t], 0.05: [1.0]}), label="callable"),
            nengo.Node(WhiteSignal(1.0, high=5, y0=0.0), label="y0"),
            nengo.Node(Custom(default_size_in=0, default_size_out=1), label="custom"),
        ]
        ens = nengo.Ensemble(10, 1, noise=WhiteNoise(nengo.dists.UniformHypersphere()))
        nodes.append(nengo.Node(FilteredNoise(nengo.synapses.Triangle(0.01)), size_out=2))
        probes = [nengo.Probe(node) for node in nodes]
        nengo.Probe(ens.neurons)
    with pytest.warns(TranslationWarning) as record:
        compiled = compile_network(net)
    hooks = [h for h in compiled.program.hooks if not h.translated]
    assert len(hooks) == 5 and len(record) == 5  # not the unseeded WhiteSignal with y0
    reasons = "\n".join(h.reason for h in hooks)
    for text in ("Choice", "callable", "Custom", "UniformHypersphere", "Triangle"):
        assert text in reasons
    with nengo.Simulator(net, progress_bar=False) as ref, Simulator(net, progress_bar=False) as sim:
        ref.run_steps(100)
        sim.run_steps(100)
    for probe in (probes[1], probes[3]):  # deterministic: Nengo's own step, exactly
        np.testing.assert_allclose(sim.data[probe], ref.data[probe], atol=1e-12)
    # compiled: the period Nengo draws for it (after the unseeded Choice noise's draw)
    np.testing.assert_allclose(sim.data[probes[2]], ref.data[probes[2]], atol=1e-12)


# ---- unseeded WhiteSignals: the periods nengo.Simulator draws ---------------------


def unseeded_signals(seed=5):
    """Unseeded WhiteSignals after processes that take their generators from
    nengo.Simulator's before them in its step order (per-step noise; a seeded
    WhiteSignal, which takes none), feeding an ensemble."""
    with nengo.Network(seed=seed, label="unseeded signals") as net:
        sources = {
            "noise": (WhiteNoise(), 2),
            "filtered": (FilteredNoise(nengo.Lowpass(0.01)), 1),
            "seeded": (WhiteSignal(0.3, high=10, seed=2), 1),
            "first": (WhiteSignal(0.5, high=12), 2),
            "second": (WhiteSignal(0.25, high=20, rms=0.3), 3),
            "y0": (WhiteSignal(0.2, high=15, y0=0.1), 1),
        }
        nodes = {}
        for label, (process, size) in sources.items():
            nodes[label] = nengo.Node(process, size_out=size, label=label)
            nengo.Probe(nodes[label], label=label)
        ens = nengo.Ensemble(40, 2, label="ens")
        nengo.Connection(nodes["first"], ens)
        nengo.Connection(nodes["second"][:2], ens, transform=0.5, synapse=0.01)
        nengo.Probe(ens, synapse=0.01, label="decoded")
        nengo.Probe(ens.neurons, label="spikes")
    return net


#: the probes of `unseeded_signals` that do not depend on per-step noise
EXACT = ("seeded", "first", "second", "y0", "decoded", "spikes")


@pytest.mark.parametrize(
    "net_seed, seed",
    [(5, None), (None, 11), (5, 8)],
    ids=["network-seed", "compile-seed-unseeded-network", "compile-seed-over-network-seed"],
)
def test_unseeded_white_signals_match_nengo_float64(net_seed, seed, tmp_path):
    """``compile_network(net, seed=N)`` is ``net.seed = N; nengo.Simulator(net)``,
    whose simulator seed N + 1 draws each unseeded WhiteSignal's period."""
    net = unseeded_signals(net_seed)
    n_steps = 700  # more than a period of each
    data, _ = reference(net, n_steps, seed=seed)
    ref = dict(zip([p.label for p in net.all_probes], data))
    compiled, module = compile_and_load(net, tmp_path, dtype="float64", seed=seed)
    assert module.SEED == (net_seed if seed is None else seed)
    assert not [h for h in compiled.program.hooks if not h.translated]
    model = module.Model()
    outputs = model.run(n_steps, batch_size=2)
    errors = max_errors(net, module, outputs, data)
    assert max(errors[name] for name in EXACT) <= 1e-9, errors
    for name in EXACT:
        assert_close_across_kernels(outputs[name][1], outputs[name][0], name)
    for name in ("first", "second", "y0"):
        assert np.ptp(ref[name]) > 0.2, name  # not trivially zero
    # another seed: the unseeded WhiteSignals without y0 draw other signals (Philox)
    model.set_seed(1234)
    other = model.run(n_steps, batch_size=2)
    for name in ("first", "second"):
        assert np.max(np.abs(other[name][0] - ref[name])) > 0.05, name
        assert not np.array_equal(other[name][0], other[name][1]), name
    for name in ("seeded", "y0"):  # its own seed; y0: the default seed's period, kept
        assert np.max(np.abs(other[name][0] - ref[name])) <= 1e-9, name


def test_unseeded_white_signals_in_nengo_compile_simulator():
    """nengo_compile.Simulator compiles with the network's seed and runs under
    network.seed + 1 by default: Nengo's own periods."""
    from nengo_compile import Simulator

    net = unseeded_signals(7)
    probes = {p.label: p for p in net.all_probes}
    with nengo.Simulator(net, progress_bar=False) as ref, Simulator(net, progress_bar=False) as sim:
        ref.run_steps(600)
        sim.run_steps(600)
        for name in EXACT:
            np.testing.assert_allclose(sim.data[probes[name]], ref.data[probes[name]], atol=1e-9)
        sim.reset(seed=ref.seed + 1)  # another seed: another signal
        sim.run_steps(100)
        first = probes["first"]
        assert np.max(np.abs(sim.data[first] - ref.data[first][:100])) > 0.05


def test_unseeded_ensemble_noise_signal_matches_unoptimized_nengo(tmp_path):
    """A WhiteSignal as ensemble noise follows other operators in the step order
    (the connection's synapse among them); Nengo's optimizer can reorder those
    from one process to the next, so its place is Nengo's without the optimizer."""
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(WhiteSignal(0.4, high=8), label="stim")
        ens = nengo.Ensemble(30, 1, noise=WhiteSignal(0.2, high=30, rms=0.5), label="ens")
        nengo.Connection(stim, ens)
        nengo.Probe(ens.neurons, "input", label="input")
        nengo.Probe(ens, synapse=0.01, label="decoded")
    n_steps = 500
    with nengo.Simulator(net, optimize=False, progress_bar=False) as sim:
        sim.run_steps(n_steps)
        data = [sim.data[p] for p in net.all_probes]
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    errors = max_errors(net, module, module.Model().run(n_steps), data)
    assert max(errors.values()) <= 1e-9, errors


def test_unseeded_white_signal_sources_are_deterministic(tmp_path, monkeypatch):
    """Byte-identical outputs for one model and seed; formatted; and a period too
    long to tabulate keeps only the Philox form (with y0: a hook)."""
    from nengo_compile.kinds import signals

    # without the cache: the stages themselves are deterministic, and MAX_TABLE
    # (patched below) is the compiler's own, which the model key does not read
    first = compile_network(unseeded_signals(), module_name="signals", cache=False)
    second = compile_network(unseeded_signals(), module_name="signals", cache=False)
    assert first.source == second.source
    assert first.params.keys() == second.params.keys()
    for name, value in first.params.items():
        np.testing.assert_array_equal(second.params[name], value)
    monkeypatch.setattr(signals, "MAX_TABLE", 100)
    with pytest.warns(UserWarning, match="y0"):
        untabulated = compile_network(unseeded_signals(), module_name="signals", cache=False)
    titles = [g.title for g in untabulated.program.groups if g.kind == "white_signal"]
    assert sum("random" in title and "seed" not in title for title in titles) == 2, titles
    for index, source in enumerate((first.source, untabulated.source)):
        path = tmp_path / f"signals{index}.py"
        path.write_text(source)
        assert_ruff_formatted(path)
