"""Analysis and planning, without TensorFlow: merge groups and layout quality."""

from __future__ import annotations

import warnings

import nengo
import numpy as np
import pytest

from nengo_compile.analyse import analyse
from nengo_compile.build import build
from nengo_compile.pipeline import compile_network

from .models import CORPUS, lif_chain


@pytest.mark.parametrize("n", [1, 3, 8])
def test_lif_chain_merges_into_constant_number_of_groups(n):
    """However long the chain, each op kind runs as one group, with no gathers."""
    compiled = compile_network(lif_chain(n), dtype="float64")
    stats = compiled.stats
    assert stats.ops_before == 5 + 8 * n  # Nengo's operator count for this chain
    assert stats.groups_after == 8
    assert stats.reads.get("gather", 0) == 0
    assert stats.writes.get("gather", 0) == 0
    kinds = [g.kind for g in compiled.program.groups]
    assert kinds.count("neurons") == 1
    assert kinds.count("linear_filter") == 1


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_schedule_respects_dependencies(name):
    """Every operator runs after all the operators it depends on."""
    built = build(CORPUS[name]())
    analysis = analyse(built.operators, built.dt)
    position = {op: i for i, group in enumerate(analysis.groups) for op in group.ops}
    for pre, post in analysis.graph.edges:
        if pre in position and post in position:
            assert position[pre] < position[post], (pre, post)
    scheduled = sum(len(g.ops) for g in analysis.groups)
    skipped = sum(type(op).__name__ == "SimProbe" for op in built.operators)
    assert scheduled + skipped == len(built.operators)


def test_groups_hold_one_kind_of_operator():
    built = build(CORPUS["neuron_types"]())
    analysis = analyse(built.operators, built.dt)
    for group in analysis.groups:
        assert len({type(op) for op in group.ops}) == 1
        if group.kind == "neurons":
            assert len({type(op.neurons) for op in group.ops}) == 1


def test_signals_written_before_read_are_not_kept():
    """An ensemble's input current, its spikes and the decoded sums are set
    every step before anything reads them: their blocks are transient (not in
    the state). Voltages, refractory times and synapse outputs are read before
    they are written: kept."""
    from .models import integrator

    compiled = compile_network(integrator(), dtype="float64")
    transient = {
        base.name: layout.transient for layout in compiled.layout for base, _ in layout.segments
    }
    recomputed = ["neuron_in", "neuron_out", "signal"]
    kept = ["voltage", "refractory_time", "Lowpass(tau=0.1)"]
    for suffix in recomputed + kept:
        (value,) = {v for name, v in transient.items() if name.endswith(suffix)}
        assert value == (suffix in recomputed), suffix
    blocks = {b.name: b for b in compiled.program.blocks}
    assert all(not b.initial for b in blocks.values() if b.transient)
    state = compiled.stats
    assert state.transient_size == sum(b.size for b in blocks.values() if b.transient)
    assert 0 < state.transient_blocks < state.blocks


def test_state_layout_covers_written_signals_once():
    compiled = compile_network(CORPUS["synapses"](), dtype="float64")
    sizes = [b.size for b in compiled.program.blocks]
    assert sum(sizes) == compiled.stats.state_size
    assert all(size > 0 for size in sizes)


class RandomNeurons(nengo.RectifiedLinear):
    """A custom neuron type with a random generator in its state (not compilable)."""

    def make_state(self, n_neurons, rng=None, dtype=None):
        return {"rng": rng}

    def rates(self, x, gain, bias):
        return nengo.RectifiedLinear().rates(x, gain, bias)

    def step(self, dt, J, output, rng):
        output[...] = rng.poisson(J.clip(0, None) * dt) / dt


def test_unsupported_features_are_listed_together():
    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(10, 1, neuron_type=RandomNeurons())
        b = nengo.Ensemble(10, 1)
        nengo.Connection(a, b)
        conv3d = nengo.Convolution(2, (4, 4, 4, 1), kernel_size=(2, 2, 2), strides=(1, 1, 1))
        x = nengo.Node(np.ones(conv3d.size_in))
        y = nengo.Node(size_in=conv3d.size_out)
        nengo.Connection(x, y, transform=conv3d)
    from nengo_compile import UnsupportedError

    with pytest.raises(UnsupportedError) as info:
        compile_network(net)
    text = str(info.value)
    assert "RandomNeurons" in text and "3 spatial dimensions" in text


def _benchmark_networks():
    """benchmarks/networks.py (not a package: loaded from its file)."""
    import importlib.util

    from .conftest import ROOT

    spec = importlib.util.spec_from_file_location(
        "benchmark_networks", ROOT / "benchmarks" / "networks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name, args, n_groups, blocks",
    [
        # encoders (1-D inputs) and decoders (2 outputs) of 24 product ensembles
        ("cconv", (4, 32), 18, [(24, 1, 16), (24, 16, 2)]),
        # encoders (4-D) and decoders of 6 ensembles: their 3 connections of 4-D
        # each decode equal (all-ones) columns, computed once per ensemble
        ("random_network", (4, 8, nengo.LIF, 6, 2), 8, [(6, 4, 32), (6, 32, 1)]),
    ],
)
def test_benchmark_networks_merge_into_blocks(name, args, n_groups, blocks):
    """Small versions of the benchmark networks: a constant number of groups,
    encoders and decoders of equal ensembles as batched dense blocks, no read
    served by a gather (one source filtered for several ensembles is a repeated
    slice), and one scatter-add (Copy increments of several sources into each
    ensemble input: many to one, whatever the layout)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = getattr(_benchmark_networks(), name)(*args)
    compiled = compile_network(net)
    stats = compiled.stats
    assert stats.groups_after == n_groups
    assert stats.reads.get("gather", 0) == 0
    assert stats.writes.get("gather", 0) == 1
    found = [
        b["blocks"]
        for g in compiled.program.groups
        if g.template == "matmul.py.j2"
        for b in g.values.get("buckets", ())
    ]
    assert found == blocks


def test_pes_network_reads_and_writes_without_gathers():
    """The PES benchmark's copies read the stimulus for two targets, the
    decoded values and the error: a few slices, not a gather."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = _benchmark_networks().pes(4, 16)
    stats = compile_network(net).stats
    assert stats.reads.get("gather", 0) == 0 and stats.writes.get("gather", 0) == 0


SMALL_BENCHMARKS = {
    "cconv": (4, 16),
    "random_network": (4, 8, nengo.LIF, 6, 2),
    "pes": (4, 16),
    "basal_ganglia": (4, 20),
}


@pytest.mark.parametrize("name", sorted(CORPUS) + sorted(SMALL_BENCHMARKS))
def test_dependency_graph_has_nengos_edges(name):
    """Our dependency graph is Nengo's (`operator_dependency_graph`), edge for
    edge: the corpus (slices, index lists, learning rules, processes) and small
    benchmark networks (EnsembleArrays' sliced inputs, PES)."""
    from nengo.utils.simulator import operator_dependency_graph

    from nengo_compile.analyse import dependency_graph

    if name in CORPUS:
        net = CORPUS[name]()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = getattr(_benchmark_networks(), name)(*SMALL_BENCHMARKS[name])
    operators = build(net).operators
    nengos = operator_dependency_graph(operators)
    graph = dependency_graph(operators)
    assert set(graph.edges) == {(a, b) for a, after in nengos.items() for b in after}
    assert list(graph.nodes) == list(operators)
