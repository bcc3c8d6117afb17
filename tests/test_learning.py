"""Learning rules (PES, BCM, Oja, Voja, RLS), compiled and run against nengo.Simulator.

Every probe is compared: the models' outputs, the learned matrices (weights,
decoders, encoders) and the rules' own signals (delta, error, theta, ...).
"""

from __future__ import annotations

import functools

import nengo
import numpy as np
import pytest
from nengo.builder.learning_rules import SimPES
from nengo.builder.signal import Signal

from nengo_compile import UnsupportedError, compile_network
from nengo_compile.analyse import analyse
from nengo_compile.build import build

from .conftest import (
    assert_close_across_kernels,
    assert_ruff_formatted,
    compile_and_load,
    compile_to,
    max_errors,
    reference,
)

N_STEPS = 300

#: float32 modules against Nengo's float64, per probe, relative to the probe's
#: largest magnitude: the mean error over the run, and the largest error (a
#: spike that float32 rounding moves by one step moves a filtered value, or a
#: learned matrix, briefly by up to a spike's worth). Spike trains are compared
#: as counts, as in test_roundtrip.
FLOAT32_MEAN_RTOL = 1e-3
FLOAT32_MAX_RTOL = 0.1
FLOAT32_SPIKE_COUNT_RTOL = 0.02


def sine(t):
    return [np.sin(6 * t), np.cos(5 * t)]


def learning_on_until_200ms(t):
    """Voja's learning signal is 1 + this: learn, then stop."""
    return -float(t >= 0.2)


NODE_FUNCTIONS = {"sine": sine, "learning": learning_on_until_200ms}


def pes(stim=sine, deltas=("conn", "conn3")):
    """A communication channel learned by PES from an error signal. The rules
    of the connections named in ``deltas`` have their delta probed: they keep
    Nengo's form; the others are applied where Nengo's Copy runs."""
    with nengo.Network(seed=1, label="pes") as net:
        stim = nengo.Node(stim, label="sine")
        a = nengo.Ensemble(40, 2, label="a")
        b = nengo.Ensemble(40, 2, label="b")
        c = nengo.Ensemble(30, 1, label="c")
        nengo.Connection(stim, a)
        conn = nengo.Connection(
            a, b, function=lambda x: [0, 0], learning_rule_type=nengo.PES(learning_rate=3e-4)
        )
        error = nengo.Node(size_in=2, label="error")
        nengo.Connection(b, error)
        nengo.Connection(stim, error, transform=-np.eye(2))
        nengo.Connection(error, conn.learning_rule)
        # same shapes, another rate: its DotInc (and its PES, in the same form) merge with conn's
        conn2 = nengo.Connection(
            a, b, transform=0.5, learning_rule_type=nengo.PES(learning_rate=1e-4)
        )
        nengo.Connection(error, conn2.learning_rule, transform=0.5 * np.eye(2))
        # to neurons, no pre filter: the error reaches c's neurons through its encoders
        conn3 = nengo.Connection(
            a[0],
            c.neurons,
            transform=np.linspace(-1, 1, 30)[:, None] * 0.1,
            learning_rule_type=nengo.PES(learning_rate=2e-4, pre_synapse=None),
        )
        nengo.Connection(error[0], conn3.learning_rule)
        nengo.Probe(b, synapse=0.01, label="b")
        nengo.Probe(c, synapse=0.01, label="c")
        nengo.Probe(conn, "weights", label="weights")
        nengo.Probe(conn2, "weights", label="weights2")
        nengo.Probe(conn3, "weights", label="weights3")
        for name, c in (("conn", conn), ("conn2", conn2), ("conn3", conn3)):
            if name in deltas:
                nengo.Probe(c.learning_rule, "delta", label="delta" + name[4:])
        nengo.Probe(conn.learning_rule, "error", label="error")
        nengo.Probe(conn.learning_rule, "activities", label="activities")
    return net


def bcm_oja(probe_deltas=True):
    """BCM and Oja on neuron-to-neuron weights."""
    rng = np.random.RandomState(2)
    with nengo.Network(seed=2, label="bcm oja") as net:
        stim = nengo.Node(sine, label="sine")
        a = nengo.Ensemble(30, 2, label="a")
        b = nengo.Ensemble(20, 1, label="b")
        c = nengo.Ensemble(25, 1, label="c")
        nengo.Connection(stim, a)
        bcm = nengo.Connection(
            a.neurons,
            b.neurons,
            transform=rng.randn(20, 30) * 1e-3,
            learning_rule_type=nengo.BCM(learning_rate=1e-8),
        )
        oja = nengo.Connection(
            a.neurons,
            c.neurons,
            transform=rng.randn(25, 30) * 1e-3,
            learning_rule_type=nengo.Oja(learning_rate=1e-7, beta=2.0),
        )
        nengo.Probe(b.neurons, label="b_spikes")
        nengo.Probe(c.neurons, synapse=0.01, label="c_rates")
        nengo.Probe(bcm, "weights", label="bcm_weights")
        nengo.Probe(oja, "weights", label="oja_weights")
        nengo.Probe(bcm.learning_rule, "theta", label="theta")
        if probe_deltas:
            nengo.Probe(bcm.learning_rule, "delta", label="bcm_delta")
            nengo.Probe(oja.learning_rule, "delta", label="oja_delta")
        nengo.Probe(oja.learning_rule, "post_filtered", label="oja_post")
    return net


def voja(probe_deltas=True):
    """Voja on an ensemble's encoders, with a learning signal; PES-learned
    neuron weights into part of that ensemble (through its changing encoders)."""
    with nengo.Network(seed=3, label="voja") as net:
        stim = nengo.Node(sine, label="sine")
        learning = nengo.Node(learning_on_until_200ms, label="learning")
        a = nengo.Ensemble(30, 2, label="a")
        b = nengo.Ensemble(30, 2, intercepts=nengo.dists.Uniform(0.2, 0.8), label="b")
        nengo.Connection(stim, a)
        conn = nengo.Connection(stim, b, learning_rule_type=nengo.Voja(learning_rate=5e-2))
        nengo.Connection(learning, conn.learning_rule)
        weights = nengo.Connection(
            a[0],
            b[0],
            solver=nengo.solvers.LstsqL2(weights=True),
            learning_rule_type=nengo.PES(learning_rate=1e-4),
        )
        nengo.Connection(stim[1], weights.learning_rule, transform=-0.5)
        nengo.Probe(b, synapse=0.01, label="b")
        nengo.Probe(b, "scaled_encoders", label="encoders")
        if probe_deltas:
            nengo.Probe(conn.learning_rule, "delta", label="delta")
        nengo.Probe(weights, "weights", label="pes_weights")
    return net


def rls():
    """A decoded function learned by RLS."""
    with nengo.Network(seed=4, label="rls") as net:
        stim = nengo.Node(sine, label="sine")
        a = nengo.Ensemble(30, 2, label="a")
        b = nengo.Node(size_in=2, label="b")
        nengo.Connection(stim, a)
        conn = nengo.Connection(
            a, b, function=lambda x: [0, 0], learning_rule_type=nengo.RLS(learning_rate=1e-3)
        )
        error = nengo.Node(size_in=2, label="error")
        nengo.Connection(b, error)
        nengo.Connection(stim, error, transform=-1)
        nengo.Connection(error, conn.learning_rule)
        nengo.Probe(b, synapse=0.01, label="b")
        nengo.Probe(conn, "weights", label="weights")
        nengo.Probe(conn.learning_rule, "delta", label="delta")
        nengo.Probe(conn.learning_rule, "inv_gamma", label="inv_gamma")
    return net


#: model -> (factory, the probe of a learned matrix, the rule kinds it compiles
#: to, their forms: Nengo's (False) or applied where Nengo's Copy runs (True))
MODELS = {
    "pes": (pes, "weights", {"pes"}, {False, True}),
    "bcm_oja": (bcm_oja, "bcm_weights", {"bcm", "oja"}, {False}),
    "bcm_oja_applied": (
        functools.partial(bcm_oja, probe_deltas=False),
        "bcm_weights",
        {"bcm", "oja"},
        {True},
    ),
    "voja": (voja, "encoders", {"voja", "pes"}, {False, True}),
    "voja_applied": (
        functools.partial(voja, probe_deltas=False),
        "encoders",
        {"voja", "pes"},
        {True},
    ),
    "rls": (rls, "weights", {"rls"}, {False}),
}


@pytest.fixture(scope="module")
def references():
    return {}


def _reference(name, cache):
    if name not in cache:
        net = MODELS[name][0]()
        cache[name] = (net, *reference(net, N_STEPS))
    return cache[name]


def _model(module):
    return module.Model(node_functions={k: NODE_FUNCTIONS[k] for k in module.HOOKS})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float64_matches_nengo(name, tmp_path, references):
    net, data, _ = _reference(name, references)
    compiled, module = compile_and_load(net, tmp_path, dtype="float64")
    kinds = {g.kind for g in compiled.program.groups}
    assert MODELS[name][2] | {"learned_matmul"} <= kinds
    rules = [g for g in compiled.program.groups if g.kind in MODELS[name][2]]
    assert {g.values["applied"] for g in rules} == MODELS[name][3]
    outputs = _model(module).run(N_STEPS)
    errors = max_errors(net, module, outputs, data)
    assert max(errors.values()) <= 1e-9, errors
    # the model did learn: the learned matrix moved far more than any error
    learned = outputs[MODELS[name][1]][0]
    assert np.max(np.abs(learned[-1] - learned[0])) > 1e-3 * np.max(np.abs(learned))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float32_within_tolerance(name, tmp_path, references):
    net, data, sim = _reference(name, references)
    _, module = compile_and_load(net, tmp_path, dtype="float32")
    outputs = _model(module).run(N_STEPS)
    for probe, pname, ref in zip(net.all_probes, module.PROBES, data):
        got = outputs[pname][0]
        assert got.dtype == np.float32
        if isinstance(probe.obj, nengo.ensemble.Neurons) and probe.synapse is None:
            counts, ref_counts = got.sum(axis=0) * sim.dt, ref.sum(axis=0) * sim.dt
            tol = np.maximum(FLOAT32_SPIKE_COUNT_RTOL * ref_counts, 1.0)
            assert np.all(np.abs(counts - ref_counts) <= tol), pname
        else:
            scale = float(np.max(np.abs(ref)))
            error = np.abs(got - ref)
            assert np.mean(error) <= FLOAT32_MEAN_RTOL * scale, (pname, np.mean(error), scale)
            assert np.max(error) <= FLOAT32_MAX_RTOL * scale, (pname, np.max(error), scale)


@pytest.mark.parametrize("batch", [1, 3])
def test_xla_matches_nengo(batch, tmp_path, references):
    """With XLA (learned products at batch 1 take another form there), both
    forms of the rules match Nengo in float64."""
    net, data, _ = _reference("pes", references)
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    outputs = module.Model(jit_compile=True).run(N_STEPS, batch_size=batch)
    errors = max_errors(net, module, outputs, data)
    assert max(errors.values()) <= 1e-9, errors


@pytest.mark.parametrize("jit", [True, False])
def test_batch_rows_learn_independently(tmp_path, references, jit):
    """Each batch row learns from its own input; rows with equal inputs agree
    (to rounding: a row's position may pick another kernel path)."""
    net, data, _ = _reference("pes", references)
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    assert module.INPUTS == {"sine": 2}
    t = module.DT * np.arange(1, N_STEPS + 1)
    wave = np.asarray(sine(t)).T
    inputs = np.stack([wave, 0.5 * wave, wave])
    outputs = module.Model(jit_compile=jit).run(N_STEPS, inputs={"sine": inputs})

    def half(t):
        return 0.5 * np.asarray(sine(t))

    half_data, _ = reference(pes(half), N_STEPS)
    for name, ref, ref_half in zip(module.PROBES, data, half_data):
        assert_close_across_kernels(outputs[name][2], outputs[name][0], f"{name} row 2")
        assert np.max(np.abs(outputs[name][0] - ref)) <= 1e-9, name
        assert np.max(np.abs(outputs[name][1] - ref_half)) <= 1e-9, name
    assert not np.allclose(outputs["weights"][0], outputs["weights"][1])


@pytest.mark.parametrize("deltas", [("conn", "conn2", "conn3"), ()])
def test_same_shape_rules_merge(deltas):
    """Two PES rules of equal shapes in the same form (Nengo's, or applied
    where the Copy runs) run as one group, with a per-rule learning rate; their
    learned DotIncs run as one group too."""
    compiled = compile_network(pes(deltas=deltas), dtype="float64")
    groups = compiled.program.groups
    pes_groups = [g for g in groups if g.kind == "pes"]
    assert sorted(len(g.sources) for g in pes_groups) == [1, 2]
    assert {g.values["applied"] for g in pes_groups} == {not deltas}
    merged = next(g for g in pes_groups if len(g.sources) == 2)
    assert not merged.consts["alpha"].is_scalar
    alpha = compiled.params[merged.consts["alpha"].param]
    assert alpha.shape == (2, 1)
    np.testing.assert_allclose(sorted(alpha.ravel()), [-3e-4 * 0.001 / 40, -1e-4 * 0.001 / 40])
    matmuls = [g for g in groups if g.kind == "learned_matmul"]
    assert sorted(len(g.sources) for g in matmuls) == [1, 2]


def test_generated_source_is_formatted_and_deterministic(tmp_path):
    for name, (factory, *_) in sorted(MODELS.items()):
        first, path = compile_to(factory(), tmp_path, name=f"{name}_tf")
        assert compile_network(factory(), module_name=f"{name}_tf").source == first.source
        assert_ruff_formatted(path)


def test_learning_rule_subclass_is_unsupported():
    """An operator subclass may compute something else: it is refused, by name."""

    class SimMyPES(SimPES):
        pass

    built = build(pes())
    ops = [
        SimMyPES(op.pre_filtered, op.error, op.delta, op.learning_rate)
        if type(op) is SimPES
        else op
        for op in built.operators
    ]
    with pytest.raises(UnsupportedError, match="SimMyPES"):
        analyse(ops, built.dt)


def test_constant_rule_operand_is_unsupported():
    """Nengo's builder never gives a rule a constant operand; if one has, it is
    refused by name rather than compiled wrongly."""
    built = build(pes())
    ops = [
        SimPES(op.pre_filtered, Signal(np.ones(op.error.shape)), op.delta, op.learning_rate)
        if type(op) is SimPES
        else op
        for op in built.operators
    ]
    with pytest.raises(UnsupportedError, match="SimPES with a constant 'error' signal"):
        analyse(ops, built.dt)


@pytest.mark.parametrize("jit", [True, False])
def test_applied_matrix_block_is_carried_in_its_shape(tmp_path, jit):
    """An applied PES adds its delta to the whole matrix block in the matrix's
    shape, and the run loop carries that block so (``LOOP_SHAPES``: under XLA
    the update is then a loop over rows, not over the flat block); the state
    that ``run`` returns is flat as always, and ``step`` on it (no loop)
    continues the run as the run itself does."""
    compiled, module = compile_and_load(pes(deltas=()), tmp_path, dtype="float64")
    carried = {
        block: shape
        for g in compiled.program.groups
        if g.kind == "pes"
        for block, shape in g.carry.items()
    }
    # conn and conn2 merged (2 matrices of 2x40), conn3 (30x40, to c's neurons)
    assert sorted(carried.values()) == [(1, 30, 40), (2, 2, 40)]
    assert module.LOOP_SHAPES == carried
    model = module.Model(jit_compile=jit)
    whole, end = model.run(N_STEPS, batch_size=2, return_state=True)
    first, state = model.run(N_STEPS - 1, batch_size=2, return_state=True)
    for name, shape in module.LOOP_SHAPES.items():
        assert state[name].shape == (2, int(np.prod(shape)))
    state, probes = model.step(state)
    for name in module.PROBES:
        np.testing.assert_array_equal(first[name], whole[name][:, :-1], err_msg=name)
        np.testing.assert_allclose(probes[name], whole[name][:, -1], rtol=0, atol=1e-12)
    for name in module.LOOP_SHAPES:
        np.testing.assert_allclose(state[name], end[name], rtol=0, atol=1e-12)
