"""Convolution transforms (`Convolution`, `ConvolutionTranspose`) against nengo.Simulator.

One network holds every variant, each between its own passthrough Nodes, so a
couple of compiles cover them all; a second network convolves spike trains
between ensembles, where float64 must give identical spike rasters.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nengo_compile import compile_network
from nengo_compile.errors import UnsupportedError

from .conftest import (
    assert_close_across_kernels,
    assert_ruff_formatted,
    compile_and_load,
    compile_to,
    max_errors,
    reference,
)

N_STEPS = 60

#: float32 modules: convolutions of passthrough values within this fraction of
#: the largest reference value (sums of a few dozen float32 products)
FLOAT32_RTOL = 1e-5
#: spiking outputs in float32 may shift by a step: spike counts over the run
FLOAT32_SPIKE_COUNT_RTOL = 0.02

Conv, ConvT = nengo.Convolution, nengo.ConvolutionTranspose

#: label -> (transform class, keyword arguments); every option Nengo 4.1 has
VARIANTS = {
    "conv2d_last_valid": (Conv, dict(n_filters=3, input_shape=(5, 6, 2))),
    "conv2d_first_same_strided": (
        Conv,
        dict(
            n_filters=4,
            input_shape=(2, 7, 6),
            kernel_size=(3, 2),
            strides=(2, 1),
            padding="same",
            channels_last=False,
        ),
    ),
    "conv2d_valid_strided_array_init": (
        Conv,
        dict(
            n_filters=2,
            input_shape=(7, 8, 3),
            kernel_size=(2, 3),
            strides=(2, 3),
            init=np.random.RandomState(1).uniform(-1, 1, size=(2, 3, 3, 2)),
        ),
    ),
    "conv2d_pointwise_gaussian": (
        Conv,
        dict(
            n_filters=5,
            input_shape=(3, 4, 4),
            kernel_size=(1, 1),
            channels_last=False,
            init=nengo.dists.Gaussian(0, 0.5),
        ),
    ),
    "conv2d_groups": (
        Conv,
        dict(n_filters=6, input_shape=(5, 5, 4), padding="same", groups=2),
    ),
    "conv2d_depthwise_first": (
        Conv,
        dict(
            n_filters=3,
            input_shape=(3, 6, 5),
            kernel_size=(2, 2),
            strides=(2, 2),
            padding="same",
            channels_last=False,
            groups=3,
        ),
    ),
    "conv1d_last_same_even_kernel": (
        Conv,
        dict(n_filters=3, input_shape=(9, 2), kernel_size=(4,), strides=(2,), padding="same"),
    ),
    "conv1d_first_valid": (
        Conv,
        dict(n_filters=2, input_shape=(3, 8), kernel_size=(3,), strides=(1,), channels_last=False),
    ),
    "transpose2d_last_valid_strided": (
        ConvT,
        dict(n_filters=2, input_shape=(3, 4, 3), strides=(2, 2)),
    ),
    "transpose2d_first_same_output_shape": (
        ConvT,
        dict(
            n_filters=3,
            input_shape=(2, 3, 4),
            output_shape=(3, 6, 7),  # also valid: (3, 5, 7) and (3, 6, 8)
            kernel_size=(3, 2),
            strides=(2, 2),
            padding="same",
            channels_last=False,
        ),
    ),
    "transpose1d_same_strided": (
        ConvT,
        dict(n_filters=2, input_shape=(4, 3), kernel_size=(2,), strides=(3,), padding="same"),
    ),
    "transpose1d_first_valid_array_init": (
        ConvT,
        dict(
            n_filters=2,
            input_shape=(3, 5),
            kernel_size=(3,),
            strides=(1,),
            channels_last=False,
            init=np.random.RandomState(2).uniform(-1, 1, size=(3, 3, 2)),
        ),
    ),
}


def variants_network():
    """Each variant convolves a filtered (so changing) input into a Node."""
    rng = np.random.RandomState(0)
    with nengo.Network(seed=10, label="convolutions") as net:
        for label, (cls, kwargs) in VARIANTS.items():
            transform = cls(**kwargs)
            stim = nengo.Node(rng.uniform(-1, 1, transform.size_in))
            x = nengo.Node(size_in=transform.size_in)
            nengo.Connection(stim, x, synapse=0.02)
            y = nengo.Node(size_in=transform.size_out)
            nengo.Connection(x, y, transform=transform, synapse=None)
            nengo.Probe(y, label=label)

        # an input slice: the convolution reads a view with an offset
        transform = Conv(2, (4, 4, 2), kernel_size=(2, 2))
        stim = nengo.Node(rng.uniform(-1, 1, transform.size_in + 5))
        x = nengo.Node(size_in=transform.size_in + 5)
        nengo.Connection(stim, x, synapse=0.02)
        y = nengo.Node(size_in=transform.size_out)
        nengo.Connection(x[3 : 3 + transform.size_in], y, transform=transform, synapse=None)
        nengo.Probe(y, label="input_slice")

        # a constant input: the increment is folded into a constant
        stim = nengo.Node(rng.uniform(-1, 1, transform.size_in))
        y = nengo.Node(size_in=transform.size_out)
        nengo.Connection(stim, y, transform=transform, synapse=None)
        nengo.Probe(y, label="constant_input")

        # convolution then transposed convolution, back to the input's shape
        shape = (2, 6, 7)
        down = Conv(3, shape, strides=(2, 2), padding="same", channels_last=False)
        up = ConvT(
            2, down.output_shape.shape, shape, strides=(2, 2), padding="same", channels_last=False
        )
        stim = nengo.Node(rng.uniform(-1, 1, down.size_in))
        x = nengo.Node(size_in=down.size_in)
        mid = nengo.Node(size_in=down.size_out)
        out = nengo.Node(size_in=up.size_out)
        nengo.Connection(stim, x, synapse=0.02)
        nengo.Connection(x, mid, transform=down, synapse=0.01)
        nengo.Connection(mid, out, transform=up, synapse=0.01)
        nengo.Probe(out, label="down_up")
    return net


def spiking_network():
    """LIF spikes through a convolution and a transposed convolution."""
    shape = (2, 6, 6)  # channels first
    down = Conv(4, shape, strides=(2, 2), channels_last=False, init=nengo.dists.Uniform(0, 4e-3))
    up = ConvT(
        2,
        down.output_shape.shape,
        shape,
        strides=(2, 2),
        channels_last=False,
        init=nengo.dists.Uniform(0, 4e-3),
    )
    with nengo.Network(seed=11, label="spiking convolutions") as net:
        stim = nengo.Node([0.6])
        a = nengo.Ensemble(down.size_in, 1, label="a")
        b = nengo.Ensemble(down.size_out, 1, label="b")
        c = nengo.Ensemble(up.size_out, 1, label="c")
        nengo.Connection(stim, a)
        nengo.Connection(a.neurons, b.neurons, transform=down, synapse=0.005)
        nengo.Connection(b.neurons, c.neurons, transform=up, synapse=0.005)
        nengo.Probe(b.neurons, label="b_spikes")
        nengo.Probe(c.neurons, label="c_spikes")
        nengo.Probe(c.neurons, "voltage", label="c_voltage")
    return net


@pytest.fixture(scope="module")
def variants():
    net = variants_network()
    data, _ = reference(net, N_STEPS)
    return net, data


@pytest.fixture(scope="module")
def spiking():
    net = spiking_network()
    data, _ = reference(net, N_STEPS)
    return net, data


def test_float64_variants_match_nengo(variants, tmp_path):
    net, data = variants
    compiled, module = compile_and_load(net, tmp_path, dtype="float64")
    outputs = module.Model().run(N_STEPS)
    errors = max_errors(net, module, outputs, data)
    assert max(errors.values()) <= 1e-9, errors
    assert all(np.max(np.abs(ref)) > 0.1 for ref in data)  # nothing trivially zero
    groups = [g for g in compiled.program.groups if g.kind == "conv"]
    templates = sorted(g.template for g in groups)
    assert templates == ["const_inc.py.j2"] + ["conv.py.j2"] * (
        len(VARIANTS) + 3
    )  # slice, down, up


def test_float32_variants_within_tolerance(variants, tmp_path):
    """Both rows of a batch match Nengo; they agree with each other to float32
    rounding (not bit for bit: on some CPUs a row's position in the batch picks
    another kernel path), with XLA and without."""
    net, data = variants
    _, module = compile_and_load(net, tmp_path, dtype="float32")
    for jit in (True, False):
        outputs = module.Model(jit_compile=jit).run(N_STEPS, batch_size=2)
        for name, ref in zip(module.PROBES, data):
            got = outputs[name]
            assert got.dtype == np.float32
            assert_close_across_kernels(got[1], got[0], what=f"{name} row 1 (jit {jit})")
            error = np.max(np.abs(got[0] - ref))
            assert error <= FLOAT32_RTOL * np.max(np.abs(ref)), (name, jit, error)


def test_float64_spikes_through_convolutions_match_nengo(spiking, tmp_path):
    net, data = spiking
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    outputs = module.Model().run(N_STEPS)
    errors = max_errors(net, module, outputs, data)
    assert max(errors.values()) <= 1e-9, errors
    b_spikes, c_spikes, _ = data
    assert b_spikes.sum() > 0 and c_spikes.sum() > 0  # the convolutions carry spikes


def test_float32_spikes_through_convolutions(spiking, tmp_path):
    net, data = spiking
    _, module = compile_and_load(net, tmp_path, dtype="float32")
    outputs = module.Model(jit_compile=True).run(N_STEPS)
    for name, ref in zip(module.PROBES, data):
        got = outputs[name][0]
        if name.endswith("spikes"):
            counts, ref_counts = got.sum(axis=0) * 0.001, ref.sum(axis=0) * 0.001
            tol = np.maximum(FLOAT32_SPIKE_COUNT_RTOL * ref_counts, 1.0)
            assert np.all(np.abs(counts - ref_counts) <= tol), name
        else:
            assert np.max(np.abs(got - ref)) <= 2e-3, name


def test_generated_convolutions_are_formatted_and_deterministic(tmp_path):
    first, path = compile_to(variants_network(), tmp_path, name="conv_tf")
    second = compile_network(variants_network(), module_name="conv_tf")
    assert first.source == second.source
    assert all(np.array_equal(first.params[k], second.params[k]) for k in first.params)
    assert_ruff_formatted(path)


def test_3d_convolution_is_unsupported():
    with nengo.Network(seed=1) as net:
        transform = Conv(2, (4, 4, 4, 1), kernel_size=(2, 2, 2), strides=(1, 1, 1))
        x = nengo.Node(np.ones(transform.size_in))
        y = nengo.Node(size_in=transform.size_out)
        nengo.Connection(x, y, transform=transform)
    with pytest.raises(UnsupportedError, match="3 spatial dimensions"):
        compile_network(net)
