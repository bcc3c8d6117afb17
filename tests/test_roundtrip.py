"""Round trips: every corpus model, compiled and run, against nengo.Simulator."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from .conftest import (
    assert_close_across_kernels,
    compile_and_load,
    kernel_atol,
    max_errors,
    reference,
)
from .models import CORPUS, NODE_FUNCTIONS

N_STEPS = 300

#: float32 modules: decoded values and voltages within this of Nengo's float64;
#: spike trains may shift by a step, so spiking outputs are compared as
#: spike counts over the run.
FLOAT32_ATOL = 2e-3
FLOAT32_SPIKE_COUNT_RTOL = 0.02


@pytest.fixture(scope="module")
def references():
    return {}


def _reference(name, cache):
    if name not in cache:
        net = CORPUS[name]()
        cache[name] = (net, *reference(net, N_STEPS))
    return cache[name]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_float64_matches_nengo(name, tmp_path, references):
    net, data, _ = _reference(name, references)
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    model = module.Model(node_functions=NODE_FUNCTIONS if module.HOOKS else None)
    outputs = model.run(N_STEPS)
    errors = max_errors(net, module, outputs, data)
    assert max(errors.values()) <= 1e-9, errors


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_float32_within_tolerance(name, tmp_path, references):
    net, data, sim = _reference(name, references)
    _, module = compile_and_load(net, tmp_path, dtype="float32")
    model = module.Model(node_functions=NODE_FUNCTIONS if module.HOOKS else None)
    outputs = model.run(N_STEPS)
    for probe, pname, ref in zip(net.all_probes, module.PROBES, data):
        got = outputs[pname][0]
        assert got.dtype == np.float32
        if _is_spikes(probe):
            dt = sim.dt
            counts, ref_counts = got.sum(axis=0) * dt, ref.sum(axis=0) * dt
            tol = np.maximum(FLOAT32_SPIKE_COUNT_RTOL * ref_counts, 1.0)
            assert np.all(np.abs(counts - ref_counts) <= tol), pname
        else:
            scale = max(1.0, float(np.max(np.abs(ref))))
            assert np.max(np.abs(got - ref)) <= FLOAT32_ATOL * scale, pname


def _is_spikes(probe):
    import nengo

    obj = probe.obj
    return (
        isinstance(obj, nengo.ensemble.Neurons)
        and probe.attr in ("output", "spikes")
        and obj.ensemble.neuron_type.spiking
        and probe.synapse is None
    )


def test_node_function_served_by_input(tmp_path, references):
    """A source node's function can be replaced by an input array (functions
    kept as hooks: the translated ones are tested in test_translate.py)."""
    net, data, _ = _reference("node_functions", references)
    _, module = compile_and_load(net, tmp_path, dtype="float64", translate=False)
    assert module.INPUTS == {"sine": 1}
    t = module.DT * np.arange(1, N_STEPS + 1)
    model = module.Model(node_functions={"square": NODE_FUNCTIONS["square"]})
    outputs = model.run(N_STEPS, inputs={"sine": np.sin(8 * t).reshape(1, -1, 1)})
    errors = max_errors(net, module, outputs, data)
    assert max(errors.values()) <= 1e-9, errors


def test_missing_hook_is_a_clear_error(tmp_path, references):
    net, _, _ = _reference("node_functions", references)
    _, module = compile_and_load(net, tmp_path, translate=False)
    with pytest.raises(ValueError, match="hook 'sine'.*node_functions"):
        module.Model().run(10)


@pytest.mark.parametrize("jit", [True, False])
def test_step_matches_run_and_batches_agree(tmp_path, references, jit):
    """Streaming with explicit state gives the run's values; batch rows agree.
    Runs of other lengths, ``step`` and other batch sizes are other graphs or
    shapes: the same values to rounding (float64 here), not bit for bit."""
    net, data, _ = _reference("integrator", references)
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    model = module.Model(jit_compile=jit)
    outputs = model.run(50, batch_size=3)
    first, state = model.run(20, batch_size=3, return_state=True)
    rest = model.run(30, state=state)
    for name in module.PROBES:
        assert_close_across_kernels(outputs[name][2], outputs[name][0], f"{name} row 2")
        assert_close_across_kernels(
            np.concatenate([first[name], rest[name]], axis=1), outputs[name], f"{name} resumed"
        )
    state = model.initial_state(batch_size=2)
    for i in range(5):
        state, probes = model.step(state)
        for name in module.PROBES:
            assert_close_across_kernels(
                probes[name].numpy(), outputs[name][:2, i], f"{name} step {i}"
            )


def test_bad_states_and_inputs_are_clear_errors(tmp_path, references):
    """A state or input that does not fit the model is refused with a message
    naming it, before TensorFlow sees it; a state given as NumPy arrays works."""
    import tensorflow as tf

    net, _, _ = _reference("node_functions", references)
    _, module = compile_and_load(net, tmp_path, dtype="float32", translate=False)
    model = module.Model(node_functions={"square": NODE_FUNCTIONS["square"]})
    state = model.initial_state(batch_size=2)
    feed = {"sine": np.zeros((2, 1))}
    block = sorted(module.BLOCKS)[0]
    size = module.BLOCKS[block][0]
    bad = [
        ([1, 2], TypeError, "state must be a dict"),
        (
            {k: v for k, v in state.items() if k != block},
            ValueError,
            re.escape(f"missing ['{block}']"),
        ),
        ({**state, "extra": state[block]}, ValueError, re.escape("unknown ['extra']")),
        (
            {**state, block: np.zeros((2, size + 1))},
            ValueError,
            re.escape(f"'{block}' has shape (2, {size + 1})"),
        ),
        (
            {**state, "step": np.zeros((3,))},
            ValueError,
            re.escape(f"'{block}' has shape (2, {size}); expected (3"),
        ),
        (
            {**state, block: tf.zeros((2, size), tf.float64)},
            ValueError,
            "is float64; expected float32",
        ),
    ]
    for wrong, error, message in bad:
        with pytest.raises(error, match=message):
            model.step(wrong, feed)
        with pytest.raises(error, match=message):
            model.run(3, inputs={"sine": np.zeros((2, 3, 1))}, state=wrong)
    with pytest.raises(
        ValueError, match=re.escape("input 'sine' has shape (2, 2); expected (2, 1)")
    ):
        model.step(state, {"sine": np.zeros((2, 2))})

    as_numpy = {name: np.asarray(value) for name, value in state.items()}
    expected = model.step(state, feed)
    got = model.step(as_numpy, feed)
    for name in module.PROBES:  # the same concrete function on the same shapes: bit for bit
        np.testing.assert_array_equal(got[1][name].numpy(), expected[1][name].numpy())


def test_xla_runs_of_any_length_share_a_compilation(tmp_path, references):
    """With XLA, runs of up to a power of two steps (fed inputs too) share one
    compilation, continue each other, and give the non-XLA model's values (to
    rounding: XLA has its own kernels)."""
    net, data, _ = _reference("node_functions", references)
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    name = sorted(module.INPUTS)[0]
    feed = np.random.RandomState(0).randn(2, 60, module.INPUTS[name])
    expected = module.Model().run(60, inputs={name: feed})
    model = module.Model(jit_compile=True)
    first, state = model.run(33, inputs={name: feed[:, :33]}, return_state=True)
    rest = model.run(27, inputs={name: feed[:, 33:]}, state=state)

    def compiled():  # run's functions (one per shape: capacity, batch, inputs)
        return [key for key in model._flat_functions if key[0] == "_run_loop_graph"]

    assert len(compiled()) == 2  # capacities 64 and 32
    model.run(50, inputs={name: feed[:, :50]})
    assert len(compiled()) == 2
    for probe in module.PROBES:
        got = np.concatenate([first[probe], rest[probe]], axis=1)
        assert_close_across_kernels(got, expected[probe], f"{probe} with XLA")


def test_xla_is_the_default_where_the_model_allows_it(tmp_path, references):
    """``Model()`` compiles with XLA unless Python functions serve it or an
    operation has no XLA kernel (PoissonSpiking's Poisson draws); asking for
    XLA there is an error naming the culprit, not a failure inside XLA."""
    import nengo

    net, data, _ = _reference("integrator", references)
    _, module = compile_and_load(net, tmp_path / "plain", dtype="float64")
    model = module.Model()
    assert model.jit_compile and module.NO_XLA_GROUPS == ()
    errors = max_errors(net, module, model.run(N_STEPS), data)
    assert max(errors.values()) <= 1e-9, errors
    assert not module.Model(jit_compile=False).jit_compile

    net, _, _ = _reference("node_functions", references)
    _, module = compile_and_load(net, tmp_path / "hooks", dtype="float64", translate=False)
    assert module.HOOKS and not module.Model(node_functions=NODE_FUNCTIONS).jit_compile

    with nengo.Network(seed=2) as net:
        ens = nengo.Ensemble(10, 1, neuron_type=nengo.PoissonSpiking(nengo.LIFRate()))
        nengo.Probe(ens.neurons)
    _, module = compile_and_load(net, tmp_path / "poisson", dtype="float32")
    assert len(module.NO_XLA_GROUPS) == 1 and "PoissonSpiking" in module.NO_XLA_GROUPS[0]
    model = module.Model()
    assert not model.jit_compile
    assert model.run(10)[list(module.PROBES)[0]].shape == (1, 10, 10)
    with pytest.raises(ValueError, match="PoissonSpiking.*without an XLA kernel"):
        module.Model(jit_compile=True)
    with pytest.raises(ValueError, match="PoissonSpiking.*without an XLA kernel"):
        model.export_saved_model(tmp_path / "sm", jit_compile=True)
    assert not (tmp_path / "sm").exists()


def test_large_batches_run_in_parts_with_the_same_values(tmp_path, references, monkeypatch):
    """With XLA, a batch of at least 2 x PARALLEL_MIN_ROWS rows runs as equal
    parts on several cores; every row (and the state) is what one run of the
    whole batch gives, to rounding (a part runs kernels for its own shape).
    Models with random processes run whole (their draws depend on the batch)."""
    import nengo

    net, _, _ = _reference("node_functions", references)
    _, module = compile_and_load(net, tmp_path / "fed", dtype="float64")
    name = sorted(module.INPUTS)[0]
    feed = np.random.RandomState(1).randn(32, 40, module.INPUTS[name])
    model = module.Model()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert model._parts(32) == min(cores, 2) and model._parts(31) == 1
    assert module.Model(jit_compile=False)._parts(32) == 1

    first, state = model.run(40, inputs={name: feed}, return_state=True)  # parts in turn
    again = model.run(40, inputs={name: feed})  # parts side by side
    monkeypatch.setattr(module, "PARALLEL_MIN_ROWS", 10**6)
    assert model._parts(32) == 1
    whole, whole_state = model.run(40, inputs={name: feed}, return_state=True)
    for probe in module.PROBES:
        # the same graphs on the same shapes, in turn or side by side: bit for bit
        np.testing.assert_array_equal(again[probe], first[probe])
        # a part is a batch of 16, the whole one of 32: the same values to
        # rounding, row by row; every row has its own input, so a row out of
        # place (or a part's state swapped) is far outside the tolerance
        assert_close_across_kernels(first[probe], whole[probe], f"{probe} in parts")
        atol = kernel_atol(whole[probe])
        for row in (1, 15, 16, 17, 31):
            assert np.max(np.abs(whole[probe][row] - whole[probe][row - 1])) > 1e3 * atol
    for block in state:
        assert_close_across_kernels(
            state[block].numpy(), whole_state[block].numpy(), f"state {block} in parts"
        )

    with nengo.Network(seed=3) as net:
        noise = nengo.Node(nengo.processes.WhiteNoise(), size_out=2)
        nengo.Probe(noise)
    _, module = compile_and_load(net, tmp_path / "noise", dtype="float32")
    assert module.RANDOM_GROUPS and module.Model()._parts(64) == 1


def test_sink_hooks_run_when_served(tmp_path):
    """A Node without output runs its function when one is given; otherwise it
    is skipped (a sink has no effect on the model)."""
    import nengo

    seen = []
    with nengo.Network(seed=1) as net:
        stim = nengo.Node([0.5])
        sink = nengo.Node(lambda t, x: seen.append(float(x[0])), size_in=1, label="sink")
        nengo.Connection(stim, sink, synapse=None)
        nengo.Probe(stim)
    seen.clear()  # Nengo called the function once to find its output size
    _, module = compile_and_load(net, tmp_path, translate=False)
    module.Model().run(3)
    assert seen == []
    module.Model(node_functions={"sink": lambda t, x: seen.append(float(x[0]))}).run(3)
    assert seen == [0.5, 0.5, 0.5]
