"""Compiled models over ``tf.distribute``: ``run(strategy=...)`` on two logical
CPU devices (``MirroredStrategy``) and on two local worker processes
(``MultiWorkerMirroredStrategy`` over 127.0.0.1), and Keras ``fit`` of
``keras_layer()`` under ``MirroredStrategy``; each row gets what a run on one
device gives it, and a 2-replica training step is the 1-device step.

Logical devices must be configured before TensorFlow starts, so each of these
runs in processes of its own (tests/distribute_worker.py), started, bounded in
time and stopped by the test. Random draws of a slice of a batch (``rows``)
are checked in this process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import nengo
import numpy as np
import pytest

from .conftest import (
    assert_close_across_kernels,
    assert_spikes_close_across_kernels,
    compile_and_load,
    compile_to,
    import_module,
)

pytestmark = pytest.mark.distribute

WORKER = Path(__file__).with_name("distribute_worker.py")
#: seconds a worker process may take (TensorFlow's start, tracing, XLA)
TIMEOUT = 120


def noisy(poisson=True, seed=5):
    """Every kind of random draw a row has (white noise, a Philox white
    signal, stochastic and Poisson spiking), an input and a recurrence;
    without ``poisson`` (which has no XLA kernel), a model that runs with XLA."""
    with nengo.Network(seed=seed) as net:
        u = nengo.Node(lambda t: [0.0], label="u")
        noise = nengo.Node(nengo.processes.WhiteNoise(), size_out=2, label="noise")
        signal = nengo.Node(nengo.processes.WhiteSignal(0.1, high=20), size_out=1, label="signal")
        a = nengo.Ensemble(20, 1, neuron_type=nengo.StochasticSpiking(nengo.LIFRate()))
        b_type = nengo.PoissonSpiking(nengo.LIFRate()) if poisson else nengo.LIF()
        b = nengo.Ensemble(15, 1, neuron_type=b_type)
        nengo.Connection(u, a)
        nengo.Connection(noise[0], a, transform=0.2)
        nengo.Connection(signal, b)
        nengo.Connection(a, b, synapse=0.01)
        nengo.Connection(b, b, synapse=0.05, transform=0.5)
        nengo.Probe(a, synapse=0.01)
        nengo.Probe(b.neurons)
        nengo.Probe(noise)
        nengo.Probe(signal)
    return net


def trainable_net():
    with nengo.Network(seed=2) as net:
        u = nengo.Node(lambda t: [0.0], label="u")
        a = nengo.Ensemble(12, 1, neuron_type=nengo.LIF())
        nengo.Connection(u, a)
        nengo.Probe(a, synapse=0.01)
    return net


def run_worker(mode, module_path, out, env=None):
    """Start a worker process; returns it (the caller waits, bounded)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    command = [sys.executable, str(WORKER), mode, str(module_path), str(out)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait(processes, timeout=TIMEOUT):
    """Wait for every process (killing all if one fails or runs over)."""
    try:
        for p in processes:
            output, _ = p.communicate(timeout=timeout)
            assert p.returncode == 0, output.decode()[-4000:]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()


def assert_same_rows(actual, expected, name):
    """Probes of one computation by kernels that may differ in rounding: the
    draws (the noise and signal Nodes) bit for bit, the rest within rounding
    (spike counts within a spike)."""
    if "noise" in name or "signal" in name:
        np.testing.assert_array_equal(actual, expected, err_msg=name)
    elif "neurons" in name:
        assert_spikes_close_across_kernels(actual, expected, name)
    else:
        assert_close_across_kernels(actual, expected, name)


def feed(module, batch, steps):
    sys.path.insert(0, str(WORKER.parent))
    try:
        from distribute_worker import inputs
    finally:
        sys.path.remove(str(WORKER.parent))
    return inputs(module, batch, steps)


@pytest.mark.parametrize("poisson", [True, False])
def test_rows_draw_as_in_the_whole_batch(tmp_path, poisson):
    """A slice of a batch run with its place in the batch (``rows``) draws
    what those rows draw in a run of the whole batch, bit for bit (the draws
    are counter-based); what they feed, within rounding (the kernels of other
    batch sizes round differently). A slice past the batch's end (padding)
    runs, its own rows as in the whole batch."""
    import tensorflow as tf

    _, module = compile_and_load(noisy(poisson), tmp_path)
    assert module.RANDOM_GROUPS
    model = module.Model(seed=11)
    jit = model.jit_compile
    assert jit == (not poisson)
    x = feed(module, 6, 25)
    whole = model.run(25, x)
    state = model.initial_state(6)

    def padded(v):  # a 7th row, as run(strategy=...) pads a batch
        return np.concatenate([v, v[-1:]])

    n = tf.constant(25, tf.int32)
    for start, stop in ((1, 3), (3, 7)):
        part_state = {k: padded(v)[start:stop] for k, v in state.items() if k != "model"}
        part_inputs = {k: tf.constant(padded(v)[start:stop]) for k, v in x.items()}
        if jit:
            part_inputs = {k: tf.pad(v, [[0, 0], [0, 7], [0, 0]]) for k, v in part_inputs.items()}
        _, outputs = model._run_graph(
            n, part_state, part_inputs, capacity=32 if jit else None, rows=(start, stop, 6)
        )
        for name, value in whole.items():
            got = outputs[name].numpy()[: min(stop, 6) - start, :25]
            assert_same_rows(got, value[start:stop], f"{name} {start}:{stop}")
    # and the rows differ from each other (a row's own stream, not a copy)
    assert not np.array_equal(whole["probe_noise_output"][0], whole["probe_noise_output"][1])


def test_mirrored_run(tmp_path):
    """``run(strategy=MirroredStrategy)`` over two logical CPU devices: a batch
    of 5 (padded to 6, 3 rows a replica) gets, row by row, the probes of the
    run on one device, random draws included (with XLA)."""
    _, path = compile_to(noisy(poisson=False), tmp_path)
    wait([run_worker("mirrored", path, tmp_path / "out.npz")])
    with np.load(tmp_path / "out.npz") as data:
        names = [k[4:] for k in data.files if k.startswith("one_")]
        assert len(names) == 4
        for name in names:
            one, two = data[f"one_{name}"], data[f"two_{name}"]
            assert one.shape[0] == 5
            assert_same_rows(two, one, name)


def test_mirrored_fit_step(tmp_path):
    """One Keras ``fit`` step (SGD) of ``keras_layer()`` under MirroredStrategy
    (two replicas of 2 rows, gradients all-reduced) is the step on one device
    on the same global batch of 4: the same loss, the same new variables."""
    _, path = compile_to(trainable_net(), tmp_path, trainable=True)
    wait([run_worker("train", path, tmp_path / "out.npz")])
    with np.load(tmp_path / "out.npz") as data:
        np.testing.assert_allclose(data["two_loss"], data["one_loss"], rtol=1e-5)
        variables = [k[4:] for k in data.files if k.startswith("one_") and k != "one_loss"]
        assert variables
        initial = np.load(path.with_suffix(".npz"))
        moved = 0.0
        for key in variables:
            one, two = data[f"one_{key}"], data[f"two_{key}"]
            assert_close_across_kernels(two, one, key, ulps=64)
            moved = max(moved, float(np.max(np.abs(one - initial[key]))))
        assert moved > 1e-4  # the step changed the variables: there was a gradient


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_multi_worker_run(tmp_path):
    """``run(strategy=MultiWorkerMirroredStrategy())`` on two worker processes
    (one CPU replica each, a cluster on 127.0.0.1 ports): each worker gets the
    whole batch's probes, row by row the probes of a run in this process
    (without XLA: Poisson spiking)."""
    (tmp_path / "gen").mkdir()
    _, path = compile_to(noisy(), tmp_path / "gen")
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = [
        run_worker(
            "worker",
            path,
            tmp_path / "out.npz",
            {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
        )
        for i in range(2)
    ]
    wait(workers)
    module = import_module(path)
    one = module.Model().run(12, feed(module, 5, 12))
    for i in range(2):
        with np.load(tmp_path / f"out{i}.npz") as data:
            for name, value in one.items():
                assert_same_rows(data[f"two_{name}"], value, f"worker {i} {name}")


def test_run_strategy_checks(tmp_path):
    """``strategy`` must be a tf.distribute strategy; with XLA the model must be
    built in its scope (else a ValueError saying so); one replica
    (OneDeviceStrategy, in this process) gives the plain run's probes."""
    import tensorflow as tf

    _, module = compile_and_load(trainable_net(), tmp_path)
    x = feed(module, 3, 10)
    model = module.Model()
    assert model.jit_compile
    with pytest.raises(TypeError, match="tf.distribute.Strategy"):
        model.run(10, x, strategy="mirrored")
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with pytest.raises(ValueError, match=r"strategy\.scope\(\)"):
        model.run(10, x, strategy=strategy)
    with strategy.scope():
        scoped = module.Model()
    got, want = scoped.run(10, x, strategy=strategy), model.run(10, x)
    for name, value in want.items():
        assert_close_across_kernels(got[name], value, name)
