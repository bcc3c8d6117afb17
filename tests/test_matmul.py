"""The forms of merged matrix products (dense, blocks, sparse), with and
without XLA, against nengo.Simulator."""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nengo_compile import compile_network

from .conftest import (
    assert_close_across_kernels,
    assert_spikes_close_across_kernels,
    compile_and_load,
    max_errors,
    reference,
)
from .models import CORPUS

N_STEPS = 100


def products(thick=False):
    """Encoders and decoders of equal ensembles (block forms, thin and wide),
    a large, nearly empty neuron-to-neuron matrix (sparse) and dense ones;
    ``thick``: and an ensemble array whose encoders are thin blocks (exports
    once branched on the batch size there, inside the loop, and tf2onnx then
    wrote a model onnxruntime refused)."""
    rng = np.random.RandomState(3)
    with nengo.Network(seed=14, label="products") as net:
        stim = nengo.Node([0.5, -0.3, 0.2, 0.7, -0.1])
        thin = nengo.networks.EnsembleArray(20, n_ensembles=4, ens_dimensions=2, label="thin")
        nengo.Connection(stim[:4], thin.input[::2])
        if thick:
            array = nengo.networks.EnsembleArray(80, n_ensembles=2, ens_dimensions=2)
            nengo.Connection(stim[1:5], array.input)
            nengo.Probe(array.output, synapse=0.01, label="thick")
        wide = [nengo.Ensemble(12, 5, label=f"wide{i}") for i in range(3)]
        for i, ens in enumerate(wide):
            nengo.Connection(stim, ens, transform=0.5 + 0.2 * i)
            nengo.Connection(ens, thin.input[i : i + 5 : 2], function=lambda x: x[:3] ** 2)
        big_a = nengo.Ensemble(300, 1, label="big_a")
        big_b = nengo.Ensemble(300, 1, label="big_b")
        nengo.Connection(stim[0], big_a)
        indices = rng.randint(0, 300, size=(40, 2))
        sparse = nengo.Sparse((300, 300), indices=indices, init=rng.randn(40) * 0.05)
        nengo.Connection(big_a.neurons, big_b.neurons, transform=sparse)
        nengo.Connection(big_a, wide[0][0], synapse=0.01)
        nengo.Probe(thin.output, synapse=0.01, label="thin")
        for ens in wide:
            nengo.Probe(ens, synapse=0.01, label=ens.label)
        nengo.Probe(big_b.neurons, label="big_b_spikes")
    return net


@pytest.fixture(scope="module")
def compiled_products(tmp_path_factory):
    net = products()
    data, _ = reference(net, N_STEPS)
    compiled, module = compile_and_load(net, tmp_path_factory.mktemp("products"), dtype="float64")
    return net, data, compiled, module


def test_products_take_every_form(compiled_products):
    _, _, compiled, _ = compiled_products
    groups = [g for g in compiled.program.groups if g.template == "matmul.py.j2"]
    forms = {g.values["form"] for g in groups}
    assert forms == {"blocks", "sparse", "dense"}, forms
    buckets = [b for g in groups for b in g.values.get("buckets", ())]
    assert {b["broadcast"] for b in buckets} == {True, False}  # thin and wide blocks


def thin_blocks():
    """Thin decoders (two outputs) of few and of many inputs: 8 blocks of 20x2
    and 8 of 80x2."""
    with nengo.Network(seed=16, label="thin") as net:
        stim = nengo.Node([0.5, -0.3, 0.2, 0.7])
        small = nengo.networks.EnsembleArray(20, n_ensembles=8, ens_dimensions=2, label="small")
        large = nengo.networks.EnsembleArray(80, n_ensembles=8, ens_dimensions=2, label="large")
        nengo.Connection(stim, small.input[::4])
        nengo.Connection(stim, large.input[1::4])
        nengo.Connection(small.output, large.input, transform=0.5)
        nengo.Probe(small.output, synapse=0.01, label="small")
        nengo.Probe(large.output, synapse=0.01, label="large")
    return net


@pytest.mark.parametrize("jit", [False, True])
def test_thin_blocks_match_nengo(tmp_path, jit):
    """Both of ``_thin_blocks``' ways at both batch sizes: under XLA, blocks of
    at most THIN_SUMMED_INPUTS inputs are multiplied and summed at any batch
    size, larger ones are a batched product from SMALL_BATCH on (without XLA,
    every thin block is)."""
    net = thin_blocks()
    data, _ = reference(net, N_STEPS)
    compiled, module = compile_and_load(net, tmp_path, dtype="float64")
    buckets = [b["blocks"] for g in compiled.program.groups for b in g.values.get("buckets", ())]
    inputs = [n_in for _, n_in, n_out in buckets if n_out <= 4]
    assert min(inputs) <= module.THIN_SUMMED_INPUTS < max(inputs), buckets
    for batch in (2, module.SMALL_BATCH + 1):
        outputs = module.Model(jit_compile=jit).run(N_STEPS, batch_size=batch)
        errors = max_errors(net, module, outputs, data)
        assert max(errors.values()) <= 1e-9, (batch, errors)


def repeated_functions():
    """Equal ensembles, each decoding one function for two targets: blocks with
    equal columns."""
    with nengo.Network(seed=15, label="repeated") as net:
        stim = nengo.Node(lambda t: [np.sin(5 * t), np.cos(3 * t), 0.3, -0.2])
        out_a = nengo.Node(size_in=24, label="out_a")
        out_b = nengo.Node(size_in=24, label="out_b")
        for i in range(6):
            ens = nengo.Ensemble(40, 4, label=f"ens{i}")
            nengo.Connection(stim, ens, transform=0.4 + 0.1 * i)
            nengo.Connection(ens, out_a[4 * i : 4 * i + 4], function=np.square)
            nengo.Connection(ens, out_b[4 * i : 4 * i + 4], function=np.square, synapse=0.02)
        nengo.Probe(out_a, synapse=0.01, label="out_a")
        nengo.Probe(out_b, label="out_b")
    return net


@pytest.mark.parametrize("jit", [False, True])
def test_equal_block_columns_are_computed_once(tmp_path, jit):
    """Each ensemble's two connections decode the same columns: the block
    product computes them once (6 blocks of 40x4, not 40x8) and matches Nengo
    for one batch element and for a batched product."""
    net = repeated_functions()
    data, _ = reference(net, N_STEPS)
    compiled, module = compile_and_load(net, tmp_path, dtype="float64")
    blocks = [g for g in compiled.program.groups if g.values.get("form") == "blocks"]
    (decoders,) = [g for g in blocks if g.values["shape"] == (240, 48)]
    assert [b["blocks"] for b in decoders.values["buckets"]] == [(6, 40, 4)]
    for batch in (1, module.SMALL_BATCH):
        outputs = module.Model(jit_compile=jit).run(N_STEPS, batch_size=batch)
        errors = max_errors(net, module, outputs, data)
        assert max(errors.values()) <= 1e-9, (batch, errors)


def test_equal_decoders_are_computed_once():
    """The integrator's probe decodes what its recurrent connection decodes:
    one product serves both (the round trips check the values)."""
    compiled = compile_network(CORPUS["integrator"](), dtype="float64")
    (group,) = [g for g in compiled.program.groups if "columns" in g.values]
    assert compiled.params[group.consts["matrix"].param].shape == (100, 1)
    assert group.values["shape"] == (100, 2)


@pytest.mark.parametrize("jit", [False, True])
def test_products_match_nengo(compiled_products, jit):
    """Batches below and from SMALL_BATCH (thin blocks multiplied and summed, or
    a batched product), then a batch size only known when it runs (one model
    called with a second batch size retraces with an unknown one: tf.cond)."""
    net, data, _, module = compiled_products
    model = module.Model(jit_compile=jit)
    for batch in (2, module.SMALL_BATCH + 1):
        outputs = model.run(N_STEPS, batch_size=batch)
        errors = max_errors(net, module, outputs, data)
        assert max(errors.values()) <= 1e-9, (batch, errors)
        for name in module.PROBES:  # the last row: another position, maybe another path
            assert_close_across_kernels(outputs[name][-1], outputs[name][0], (name, batch))
    for batch in (module.SMALL_BATCH + 1, 2):
        outputs = module.Model(jit_compile=jit).run(N_STEPS, batch_size=batch)
        assert max(max_errors(net, module, outputs, data).values()) <= 1e-9, batch


@pytest.mark.parametrize("thick", [False, True])
def test_products_export_to_tflite_and_onnx(tmp_path, thick):
    """The block and sparse forms use only ops that TFLite and ONNX hold
    (the sparse form as a gather and a segment sum, not tf.sparse)."""
    onnxruntime = pytest.importorskip("onnxruntime")
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    pytest.importorskip("tf2onnx")
    net = products(thick)
    float32_module = compile_and_load(net, tmp_path, dtype="float32")[1]
    model = float32_module.Model()
    expected = model.run(N_STEPS)
    model.export_tflite(tmp_path / "m.tflite")
    model.export_onnx(tmp_path / "m.onnx")
    n_steps = np.array(N_STEPS, np.int32)
    runner = litert.Interpreter(model_path=str(tmp_path / "m.tflite")).get_signature_runner("run")
    tflite = runner(n_steps=n_steps)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    names = [o.name for o in session.get_outputs()]
    feeds = {"n_steps": n_steps, "batch_size": np.array(1, np.int32)}
    onnx = dict(zip(names, session.run(None, feeds)))
    for name, value in expected.items():
        for got in (tflite[f"probe_{name}"], onnx[f"probe_{name}"]):
            # float32 runtimes differ in the last bits, so a spike may move by
            # a step: spike counts, and the other values' sums over time
            if name.endswith("spikes"):
                assert_spikes_close_across_kernels(got, value, name)
            else:
                np.testing.assert_allclose(got.sum(axis=1), value.sum(axis=1), atol=0.05)
