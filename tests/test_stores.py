"""Node functions that index their state at computed positions, against
nengo.Simulator.

Stores and reads at an index computed from ``t`` or ``x`` (or a slice whose
bounds are), into attributes of a callable object (model state) and into
local arrays, compiled in float64: no hook remains, and the outputs match
Nengo's (<= 1e-9) with XLA and without, over 400 steps and in a batch. An
index out of range wraps around (``i % n``) where Nengo raises; the forms we
cannot translate stay hooks and say why.
"""

from __future__ import annotations

import warnings

import nengo
import numpy as np
import pytest

from nengo_compile import compile_network
from nengo_compile.lower import TranslationWarning

from .conftest import compile_and_load, max_errors, reference

N_STEPS = 400


class Pulse:
    """The issue's example: one element raised, its position computed from t."""

    def __init__(self):
        self.values = np.zeros(3)

    def __call__(self, t):
        self.values[:] = 0.1
        self.values[int(t / 0.01 % 3)] = 0.8
        return self.values


class Histogram:
    """Bins chosen by the input: stores, augmented stores and reads at an
    index computed from x, a negative one among them."""

    def __init__(self):
        self.counts = np.zeros(5)
        self.last = np.zeros(5)

    def __call__(self, t, x):
        i = int(abs(x[0]) * 4.99)
        self.counts *= 0.99
        self.counts[i] += 1.0
        self.last[-1 - i] = x[1]  # -1 .. -5: counts from the end, as numpy
        return [self.counts[i], self.last[-1 - i], self.counts[(i + 2) % 5], self.last.sum()]


class Bar:
    """Slices with computed bounds: a window moving with t (clamped at the
    end as numpy clamps), a negative step, a computed start counted from the end."""

    def __init__(self):
        self.bar = np.zeros(8)

    def __call__(self, t):
        k = int(t / 0.01) % 10
        self.bar[:] = 0.0
        self.bar[k : k + 3] = 1.0
        self.bar[k::-3] += 0.5
        self.bar[-k - 1 :] -= 0.25
        return self.bar


class Grid:
    """A 2-D attribute: an element, a row, a column and a static slice of a
    computed column."""

    def __init__(self):
        self.grid = np.arange(12.0).reshape(3, 4) / 12

    def step(self, t, x):
        i, j = int(t / 0.007) % 3, int(abs(x[1]) * 3.99)
        self.grid *= 0.9
        self.grid[i, j] = x[0]
        self.grid[i] += 0.1
        self.grid[:, j] -= 0.05
        self.grid[1:, 3 - j] = [x[1], 2 * x[1]]
        self.grid[i, ::-2] = [0.5, -0.5]
        return np.concatenate([self.grid[:, j], self.grid[i], [self.grid[i, j]]])


def one_hot(t, x):
    """A local array stored at a computed index."""
    out = np.zeros(4)
    out[int(t / 0.003) % 4] = x[0]
    out[(x[1] > 0) * 1] += 1.0
    return out


def wave(t):
    return [np.sin(7 * t), np.cos(5 * t)]


def other_wave(t):
    return [np.cos(3 * t) * 0.9, np.sin(11 * t + 1)]


def stores(stim_fn=wave):
    with nengo.Network(seed=31, label="stores") as net:
        stim = nengo.Node(stim_fn, label="stim")
        nengo.Probe(nengo.Node(Pulse(), label="pulse"), label="pulse")
        nengo.Probe(nengo.Node(Bar(), label="bar"), label="bar")
        for label, fn, size_out in [
            ("histogram", Histogram(), 4),
            ("grid", Grid().step, 8),
            ("one_hot", one_hot, 4),
        ]:
            node = nengo.Node(fn, size_in=2, size_out=size_out, label=label)
            nengo.Connection(stim, node, synapse=None)
            nengo.Probe(node, label=label)
    return net


def _compile(net, folder, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TranslationWarning)  # everything translates
        return compile_and_load(net, folder, dtype="float64", **options)


def test_stores_at_computed_positions_match_nengo(tmp_path):
    net = stores()
    _, module = _compile(net, tmp_path)
    assert module.HOOKS == {}
    data, _ = reference(net, N_STEPS)
    for jit in (False, True):
        outputs = module.Model(jit_compile=jit).run(N_STEPS, batch_size=2)
        errors = max_errors(net, module, outputs, data)
        assert max(errors.values()) <= 1e-9, (jit, errors)
        for name in module.PROBES:  # both rows carry the state alike
            np.testing.assert_array_equal(outputs[name][1], outputs[name][0])
    # the positions do move: every element of the pulse and the bar is set
    assert set(np.unique(data[0])) == {0.1, 0.8}
    assert np.all(np.ptp(data[1], axis=0) > 0)


def test_batch_rows_index_by_their_own_input(tmp_path):
    """Rows fed different inputs pick their own positions (the computed
    indices are per batch element): each row matches Nengo run on its input."""
    net = stores()
    _, module = _compile(net, tmp_path)
    t = module.DT * np.arange(1, N_STEPS + 1)
    rows = [np.array([fn(ti) for ti in t]) for fn in (wave, other_wave)]
    outputs = module.Model().run(N_STEPS, inputs={"stim": np.stack(rows)})
    for row, fn in enumerate((wave, other_wave)):
        other = stores(fn)
        data, _ = reference(other, N_STEPS)
        for name, ref in zip(module.PROBES, data):
            error = np.max(np.abs(outputs[name][row] - ref))
            assert error <= 1e-9, (row, name, error)
    assert not np.array_equal(outputs["grid"][0], outputs["grid"][1])


class Overrun:
    """An index that runs past the end (Nengo raises IndexError at step 5)."""

    def __init__(self):
        self.values = np.zeros(5)

    def __call__(self, t):
        i = int(t / 0.001 + 0.5)  # the step number, 1, 2, ...
        self.values *= 0.5
        self.values[i] = t
        return [self.values[i - 3], self.values[0]]


def test_index_out_of_range_wraps_around(tmp_path):
    """Where numpy raises an IndexError (inside Nengo's simulator), the
    compiled model stores and reads at ``i % n``."""
    with nengo.Network(seed=32) as net:
        nengo.Probe(nengo.Node(Overrun(), label="overrun"), label="overrun")
    _, module = _compile(net, tmp_path)
    assert module.HOOKS == {}
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(4)
        with pytest.raises(IndexError):
            sim.step()
    values, expected = np.zeros(5), []
    for step in range(1, 21):  # numpy with the index wrapped
        t, i = step * 0.001, step
        values *= 0.5
        values[i % 5] = t
        expected.append([values[(i - 3) % 5], values[0]])
    for jit in (False, True):
        got = module.Model(jit_compile=jit).run(20)["overrun"][0]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)


class Refused:
    def __init__(self):
        self.v = np.zeros(6)

    def array_into_slice(self, t, x):
        k = int(t / 0.01) % 4
        self.v[k : k + 2] = x
        return self.v

    def read_slice(self, t, x):
        k = int(t / 0.01) % 4
        self.v[k] = 1.0
        return self.v[k : k + 2]

    def array_added_to_slice(self, t, x):
        k = int(t / 0.01) % 4
        self.v[k:] += x[:1] * [1.0, 2.0]
        return self.v

    def computed_step(self, t, x):
        self.v[:: int(t / 0.01) % 3 + 1] = x[0]
        return self.v

    def float_index(self, t, x):
        self.v[t] = x[0]
        return self.v

    def index_list(self, t, x):
        self.v[[int(t / 0.01) % 3]] = x[0]
        return self.v


REFUSED = {
    "array_into_slice": "storing an array of shape (2,) into a slice whose bounds are computed",
    "read_slice": "reading a slice whose bounds are computed from values",
    "array_added_to_slice": "an augmented assignment of an array of shape (2,) to a slice",
    "computed_step": "a slice step computed from values",
    "float_index": "an index computed from values that is not one integer",
    "index_list": "an index list computed from values",
}


def test_unsupported_computed_indices_stay_hooks_and_say_why():
    with nengo.Network(seed=33) as net:
        stim = nengo.Node([0.5, -0.5])
        for name in REFUSED:
            size_out = 2 if name == "read_slice" else 6  # given: Nengo does not call them
            node = nengo.Node(getattr(Refused(), name), size_in=2, size_out=size_out, label=name)
            nengo.Connection(stim, node)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TranslationWarning)
        compiled = compile_network(net)
    hooks = {h.name: h.reason for h in compiled.program.hooks if not h.translated}
    assert sorted(hooks) == sorted(REFUSED)
    for name, reason in REFUSED.items():
        assert reason in hooks[name], hooks[name]
        assert "test_stores.py:" in hooks[name]
