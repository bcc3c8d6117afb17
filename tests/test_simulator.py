"""nengo_compile.Simulator: Nengo's Simulator API, checked against nengo.Simulator."""

from __future__ import annotations

import gc
import sys

import nengo
import numpy as np
import pytest
from nengo.builder.operator import Copy, DotInc, ElementwiseInc, Reset
from nengo.builder.signal import Signal
from nengo.exceptions import (
    BuildError,
    ReadonlyError,
    SimulationError,
    SimulatorClosed,
    ValidationError,
)

from nengo_compile import Simulator

from .conftest import ROOT


def _net(seed=1):
    with nengo.Network(seed=seed, label="sim api") as net:
        stim = nengo.Node(lambda t: [np.sin(8 * t), np.cos(5 * t)], label="stim")
        ens = nengo.Ensemble(40, 2, label="ens")
        out = nengo.Node(size_in=2, label="out")
        nengo.Connection(stim, ens)
        nengo.Connection(ens, out, function=lambda x: x**2, synapse=0.01)
        net.p_out = nengo.Probe(out, synapse=0.005)
        net.p_spikes = nengo.Probe(ens.neurons)
        net.p_sampled = nengo.Probe(ens, synapse=0.01, sample_every=0.003)
    return net


def _probes(net):
    return [net.p_out, net.p_spikes, net.p_sampled]


def _reference(net, steps):
    with nengo.Simulator(net, progress_bar=False) as ref:
        for n in steps:
            ref.run_steps(n)
        return {p: ref.data[p].copy() for p in _probes(net)}, ref.trange()


def test_runs_continue_and_match_nengo():
    """run, run_steps and step continue from the state; data accumulate like Nengo's."""
    net = _net()
    ref, ref_trange = _reference(net, [37, 1, 100])
    with Simulator(net, progress_bar=False) as sim:
        sim.run(0.037)
        sim.step()
        sim.run_steps(100)
        assert sim.n_steps == 138
        assert sim.time == pytest.approx(0.138)
        assert np.array_equal(sim.trange(), ref_trange)
        assert np.allclose(sim.trange(sample_every=0.003), 0.003 * np.arange(1, 47))
        for probe in _probes(net):
            assert sim.data[probe].shape == ref[probe].shape
            assert np.max(np.abs(sim.data[probe] - ref[probe])) <= 1e-9
        # the sampled probe follows the global step count across calls
        assert sim.data[net.p_sampled].shape[0] == len(sim.trange(sample_every=0.003))


def test_built_parameters_and_model():
    net = _net()
    with nengo.Simulator(net, progress_bar=False) as ref, Simulator(net) as sim:
        ens = net.all_ensembles[0]
        assert isinstance(sim.model, nengo.builder.Model)
        assert np.array_equal(sim.data[ens].encoders, ref.data[ens].encoders)
        assert np.array_equal(sim.data[ens].gain, ref.data[ens].gain)
        conn = net.all_connections[1]
        assert np.array_equal(sim.data[conn].weights, ref.data[conn].weights)
        assert sim.dt == ref.dt
        with pytest.raises(ReadonlyError):
            sim.dt = 0.002


def test_reset_and_seeds():
    net = _net(seed=4)
    with Simulator(net, progress_bar=False) as sim:
        assert sim.seed == net.seed + 1  # nengo.Simulator's rule
        sim.run_steps(20)
        first = sim.data[net.p_out].copy()
        sim.reset(seed=9)
        assert sim.seed == 9
        assert sim.n_steps == 0 and sim.time == 0.0
        assert sim.data[net.p_out].shape == (0,)
        sim.run_steps(20)
        assert np.array_equal(sim.data[net.p_out], first)
    with Simulator(net, seed=3, progress_bar=False) as sim:
        assert sim.seed == 3


def test_closed_simulator():
    net = _net()
    sim = Simulator(net, progress_bar=False)
    folder = sim._folder
    assert folder.is_dir()
    with sim:
        sim.run_steps(5)
    assert sim.closed and not folder.exists()
    assert sim.data[net.p_out].shape == (5, 2)  # data survive close
    for call in (sim.step, lambda: sim.run(0.01), lambda: sim.run_steps(1), sim.reset):
        with pytest.raises(SimulatorClosed):
            call()
    with pytest.raises(SimulatorClosed):
        with sim:
            pass


def test_run_time_checks():
    with Simulator(_net(), progress_bar=False) as sim:
        with pytest.raises(ValidationError, match="Must be positive"):
            sim.run(-0.1)
        with pytest.warns(UserWarning, match="0 timesteps"):
            sim.run(0.0001)
        assert sim.n_steps == 0
        with pytest.warns(DeprecationWarning):
            sim.trange(dt=0.001)
        with pytest.raises(ValidationError):
            sim.trange(dt=0.001, sample_every=0.002)


def test_warns_when_deleted_open():
    sim = Simulator(_net(), progress_bar=False)
    with pytest.warns(ResourceWarning, match="deallocated while open"):
        del sim
        gc.collect()


def test_node_functions_are_called():
    """Sink nodes run as hooks, called as Nengo calls them; an error inside one
    reaches the caller unchanged, a bad output becomes Nengo's SimulationError."""
    seen = []

    class Boom(RuntimeError):
        pass

    def sink(t, x):
        seen.append((t, x.copy()))

    def fails(t):
        if t > 0.0025:
            raise Boom("stop")
        return t

    with nengo.Network(seed=2) as net:
        stim = nengo.Node(lambda t: 2 * t)
        nengo.Connection(stim, nengo.Node(sink, size_in=1), synapse=None)
        nengo.Node(fails)
    with nengo.Simulator(net, progress_bar=False) as ref:
        seen.clear()  # Nengo calls node functions once while building
        ref.run_steps(2)
    expected, seen[:] = list(seen), []
    with Simulator(net, progress_bar=False) as sim:
        seen.clear()
        sim.run_steps(2)
        assert [t for t, _ in seen] == [t for t, _ in expected]
        assert np.array_equal([x for _, x in seen], [x for _, x in expected])
        with pytest.raises(Boom, match="stop"):
            sim.run_steps(3)

    with nengo.Network() as net:
        nengo.Connection(nengo.Node(lambda t: None if t > 0.002 else 1.0), nengo.Ensemble(5, 1))
    with Simulator(net, progress_bar=False) as sim:
        with pytest.raises(SimulationError, match="non-finite"):
            sim.run_steps(5)


def test_signals_of_a_learning_rule_without_delta_probe():
    """A PES rule whose delta no probe reads is applied where its Copy runs:
    the learned weights are kept, equal to Nengo's; the delta is not kept."""
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: np.sin(6 * t))
        a = nengo.Ensemble(30, 1)
        b = nengo.Node(size_in=1)
        nengo.Connection(stim, a)
        conn = nengo.Connection(a, b, learning_rule_type=nengo.PES(learning_rate=1e-3))
        nengo.Connection(stim, conn.learning_rule, transform=-1)
        nengo.Connection(b, conn.learning_rule)
        nengo.Probe(b, synapse=0.01)
    with nengo.Simulator(net, progress_bar=False, optimize=False) as ref:
        ref.run_steps(50)
        weights, delta = ref.model.sig[conn]["weights"], ref.model.sig[conn.learning_rule]["delta"]
        expected = np.array(ref.signals[weights])
        with Simulator(None, model=ref.model, progress_bar=False) as sim:
            sim.run_steps(50)
            signals = sim.signals
    assert np.allclose(signals[weights], expected, atol=1e-9, rtol=0)
    assert np.any(expected != ref.model.sig[conn]["weights"].initial_value)  # it learned
    with pytest.raises(KeyError, match="learning rule's delta"):
        signals[delta]


def test_build_errors_are_nengos():
    with nengo.Network() as net:
        nengo.Ensemble(2, 1, encoders=[[0.0], [1.0]])
    with pytest.raises(BuildError, match="NaNs detected"):
        Simulator(net, progress_bar=False)
    with nengo.Network() as net:
        d = nengo.Ensemble(1, 1, neuron_type=nengo.Direct())
        nengo.Connection(d, d, synapse=None)
    with pytest.raises(BuildError, match="cycles"):
        Simulator(net, progress_bar=False)


def test_float32():
    net = _net()
    ref, _ = _reference(net, [100])
    with Simulator(net, dtype="float32", progress_bar=False) as sim:
        sim.run_steps(100)
        got = sim.data[net.p_out]
        assert got.dtype == np.float32
        assert np.max(np.abs(got - ref[net.p_out])) <= 2e-3


def test_progress_bar():
    class Bar(nengo.utils.progress.ProgressBar):
        def __init__(self):
            super().__init__()
            self.updates = []

        def update(self, progress):
            self.updates.append((progress.name_during, progress.n_steps))

        def close(self):
            pass

    bar = Bar()
    with Simulator(_net(), progress_bar=False) as sim:
        sim.run_steps(400, progress_bar=bar)
    assert bar.updates[-1] == ("Simulating", 400)


def test_registered_as_nengo_backend():
    """pyproject.toml declares the entry point Nengo's test_entry_point looks for."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split('[project.entry-points."nengo.backends"]\n', 1)[1].split("\n\n")[0]
    (line,) = section.strip().splitlines()
    module, name = line.split("=")[1].strip().strip('"').split(":")
    assert getattr(sys.modules[module], name) is Simulator


def test_signals_and_prebuilt_model_match_nengo():
    """``signals`` holds the current value of every signal the model keeps
    between steps; looking up one it recomputes every step says so. ``model=``
    with no network compiles a model Nengo built (the reference's own)."""
    net = _net()
    with nengo.Simulator(net, progress_bar=False, optimize=False) as ref:
        ref.run_steps(30)
        expected = {sig: np.array(value) for sig, value in ref.signals.items()}
        with Simulator(None, model=ref.model, progress_bar=False) as sim:
            assert sim.model is ref.model
            sim.run_steps(30)
            signals = sim.signals
    ens = net.ensembles[0]
    kept = {ref.model.sig[ens.neurons][name] for name in ("voltage", "refractory_time")}
    recomputed = ref.model.sig[ens.neurons]["in"]  # bias + encoded input, set every step
    assert kept <= set(signals) < set(expected)
    assert recomputed not in signals
    with pytest.raises(KeyError, match="not kept between steps.*probe it"):
        signals[recomputed]
    for sig in signals:
        assert signals[sig].dtype == expected[sig].dtype, sig
        assert np.allclose(signals[sig], expected[sig], atol=1e-9, rtol=0), sig
    assert sim.signals is None  # closed


def _bare_model(dt):
    """Operators added to a Model by hand (no network), as in Nengo's own
    ``test_signal_init_values``: an accumulator only ever incremented, a
    constant incremented by zero, a reset, a copy and a product."""
    sigs = [Signal([0]), Signal([5.0]), Signal([[0.5, -1.0], [2.0, 0.25]]), Signal([1.0, 3.0])]
    sigs += [Signal([1.0, -2.0])] + [Signal(np.zeros(2)) for _ in range(4)]
    zero, five, mat, vec, acc, out, prod, reset, total = sigs
    model = nengo.builder.Model(dt=dt)
    model.operators += [
        DotInc(zero, zero, five),
        DotInc(mat, vec, acc),
        Reset(reset, 0.5),
        Copy(acc, out),
        ElementwiseInc(reset, out, prod),
        Copy(prod, total, inc=True),
    ]
    return model, sigs


@pytest.mark.parametrize("dt", [0, 0.001])
def test_bare_operator_model_matches_nengo(dt):
    """``model=`` with no network and no ``toplevel``: a Model of operators
    alone (even with ``dt=0``) runs as in ``nengo.Simulator``, signal for signal."""
    (ref_model, ref_sigs), (model, sigs) = _bare_model(dt), _bare_model(dt)
    with (
        nengo.Simulator(None, model=ref_model, progress_bar=False) as ref,
        Simulator(None, model=model, progress_bar=False) as sim,
    ):
        for steps in (0, 1, 6):
            if steps:
                ref.run_steps(steps)
                sim.run_steps(steps)
            assert sim.n_steps == ref.n_steps and sim.time == ref.time
            expected, signals = ref.signals, sim.signals
            # out and reset are set every step before they are read: not kept
            kept = [k for k, sig in enumerate(sigs) if sig in signals]
            assert kept == [0, 1, 2, 3, 4, 6, 8]
            for k in kept:
                assert signals[sigs[k]].dtype == expected[ref_sigs[k]].dtype
                assert np.array_equal(signals[sigs[k]], expected[ref_sigs[k]]), sigs[k]


def _noisy_net(seed=2):
    """A random process (TF's draws, not Nengo's) and no Python hooks."""
    with nengo.Network(seed=seed, label="noisy") as net:
        stim = nengo.Node(nengo.processes.WhiteSignal(1.0, high=10), size_out=2, label="stim")
        ens = nengo.Ensemble(30, 2, label="ens")
        out = nengo.Node(size_in=2, label="out")
        nengo.Connection(stim, ens)
        nengo.Connection(ens, out, function=lambda x: x**2, synapse=0.01)
        net.p_out = nengo.Probe(out, synapse=0.005)
        net.p_spikes = nengo.Probe(ens.neurons)
        net.p_sampled = nengo.Probe(ens, synapse=0.01, sample_every=0.003)
    return net


_STEPS = [30, 1, 40, 7, 100, 1, 9]


def _run_all(sim, steps=_STEPS):
    for n in steps:
        sim.run_steps(n)
    return {p: sim.data[p].copy() for p in sim.model.probes}


def _xla_net(seed=1):
    """No Python hooks, random draws or checked functions: XLA-able."""
    with nengo.Network(seed=seed, label="xla") as net:
        stim = nengo.Node(nengo.processes.PresentInput([[0.5, -0.3], [-0.2, 0.8]], 0.02))
        ens = nengo.Ensemble(40, 2, label="ens")
        out = nengo.Node(size_in=2, label="out")
        nengo.Connection(stim, ens)
        nengo.Connection(ens, out, function=lambda x: x**2, synapse=0.01)  # decoded
        net.p_out = nengo.Probe(out, synapse=0.005)
        net.p_spikes = nengo.Probe(ens.neurons)
        net.p_sampled = nengo.Probe(ens, synapse=0.01, sample_every=0.003)
    return net


def test_switches_to_xla_after_xla_after_steps(monkeypatch):
    """Without XLA for the first XLA_AFTER steps, then XLA for calls of at least
    CHUNKS[0] steps (split at CHUNKS[-1]); the data continue as Nengo's would."""
    import nengo_compile.simulator as simulator

    monkeypatch.setattr(simulator, "XLA_AFTER", 50)
    monkeypatch.setattr(simulator, "CHUNKS", (8, 32))
    net = _xla_net()
    ref, ref_trange = _reference(net, _STEPS)
    calls = []
    with Simulator(net, progress_bar=False) as sim:
        assert sim._xla_allowed
        run = sim._run
        monkeypatch.setattr(sim, "_run", lambda n, xla=False: calls.append((n, xla)) or run(n, xla))
        data = _run_all(sim)
        assert sim._xla is not None and sim._xla.jit_compile
        assert not sim._program.jit_compile
        # split at XLA_AFTER; XLA calls of at most 32 steps; shorter than 8 without
        assert calls == [
            (30, False),
            (1, False),
            (19, False),
            (21, True),
            (7, False),
            (32, True),
            (32, True),
            (32, True),
            (4, False),
            (1, False),
            (9, True),
        ]
        assert np.array_equal(sim.trange(), ref_trange)
        for probe in _probes(net):
            assert data[probe].shape == ref[probe].shape
            assert np.max(np.abs(data[probe] - ref[probe])) <= 1e-9
        # after reset, the same runs (all with XLA where long enough) agree
        sim.reset()
        again = _run_all(sim)
        for probe in _probes(net):
            assert np.max(np.abs(again[probe] - data[probe])) <= 1e-12


def test_random_draws_keep_xla_off(monkeypatch):
    """XLA draws other numbers from the same seeds: a model with random draws
    stays without XLA, so its noise does not change after XLA_AFTER steps."""
    import nengo_compile.simulator as simulator

    net = _noisy_net()
    with Simulator(net, progress_bar=False) as sim:
        assert sim._module.RANDOM_GROUPS
        expected = _run_all(sim)
    monkeypatch.setattr(simulator, "XLA_AFTER", 50)
    monkeypatch.setattr(simulator, "CHUNKS", (8, 32))
    with Simulator(net, progress_bar=False) as sim:
        assert not sim._xla_allowed
        data = _run_all(sim)
        assert sim._xla is None
    for probe in _probes(net):
        assert np.array_equal(data[probe], expected[probe])


def test_checked_functions_keep_xla_off(monkeypatch):
    """XLA drops TF's finiteness checks: a translated function whose output
    Nengo checks keeps XLA off, and a non-finite value still raises."""
    import nengo_compile.simulator as simulator

    monkeypatch.setattr(simulator, "XLA_AFTER", 10)
    monkeypatch.setattr(simulator, "CHUNKS", (8, 32))
    with nengo.Network() as net:
        stim = nengo.Node(lambda t: np.log(0.05 - t) if t > 0 else 1.0)
        nengo.Connection(stim, nengo.Ensemble(5, 1))
    with Simulator(net, progress_bar=False) as sim:
        assert not sim._module.HOOKS  # translated
        assert not sim._xla_allowed
        with pytest.raises(SimulationError, match="non-finite"):
            sim.run_steps(100)


def test_hooks_keep_xla_off(monkeypatch):
    import nengo_compile.simulator as simulator

    monkeypatch.setattr(simulator, "XLA_AFTER", 10)
    seen = []
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: seen.append(t) or 0.5)  # a Python hook
        ens = nengo.Ensemble(10, 1)
        nengo.Connection(stim, ens)
        probe = nengo.Probe(ens, synapse=0.01)
    with Simulator(net, progress_bar=False) as sim:
        sim.run_steps(300)
        assert not sim._xla_allowed and sim._xla is None
        assert np.allclose(seen[-300:], 0.001 * np.arange(1, 301))  # served every step
        assert sim.data[probe].shape == (300, 1)


def test_run_from_is_run_without_checks():
    """CompiledModel.run_from: run(..., return_state=True) from a given state."""
    net = _noisy_net()
    with Simulator(net, progress_bar=False) as sim:
        for jit in (False, True):
            model = sim._module.Model(jit_compile=jit)
            state = model.initial_state()
            expected, expected_state = model.run(20, state=state, return_state=True)
            got, got_state = model.run_from(5, state)
            more, got_state = model.run_from(15, got_state, capacity=16)
            for name, value in expected.items():
                assert np.allclose(np.concatenate([got[name], more[name]], 1), value, atol=1e-12)
            for name, value in expected_state.items():
                assert np.allclose(np.asarray(got_state[name]), np.asarray(value), atol=1e-12)
            if jit:
                with pytest.raises(ValueError, match="capacity 4 is less than n_steps 5"):
                    model.run_from(5, state, capacity=4)
