"""The comparison helpers of conftest.py: they accept what other kernels do to
one computation and still fail on the bugs they are meant to catch."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import (
    KERNEL_ULPS,
    assert_close_across_kernels,
    assert_spikes_close_across_kernels,
    kernel_atol,
)


def _rows(dtype):
    """Four batch rows of a slow sine, each with its own phase: [4, 300, 2]."""
    t = 0.001 * np.arange(1, 301)
    phases = np.arange(4)[:, None, None]
    return np.stack([np.sin(8 * t), np.cos(5 * t)], axis=-1)[None].astype(dtype) + (
        0.1 * phases
    ).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rounding_differences_pass(dtype):
    expected = _rows(dtype)
    eps = np.finfo(dtype).eps
    # a few ulps everywhere, and an integrator's worth in one place
    actual = expected * (1 + 4 * eps)
    actual[2, 150, 1] += (KERNEL_ULPS - 8) * eps
    assert_close_across_kernels(actual, expected, "rounded")
    assert_close_across_kernels(np.nextafter(expected, 2), expected, "one ulp")
    assert kernel_atol(expected) == KERNEL_ULPS * eps * max(1.0, float(np.abs(expected).max()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_real_bugs_fail(dtype):
    expected = _rows(dtype)
    swapped = expected[[0, 2, 1, 3]]  # two rows out of place
    shifted = np.concatenate([expected[:, :1], expected[:, :-1]], axis=1)  # a step late
    lost = expected.copy()
    lost[:, 100:] -= expected[:, 99:100] * 1e-2  # a state partly lost at a resume
    for wrong in (swapped, shifted, lost):
        with pytest.raises(AssertionError):
            assert_close_across_kernels(wrong, expected)
    nan = expected.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(AssertionError, match="NaN"):
        assert_close_across_kernels(nan, expected)
    steps = np.arange(4, dtype=np.int64)
    with pytest.raises(AssertionError):
        assert_close_across_kernels(steps + 1, steps)  # integers: equal


def _spikes(rates, n_steps=300, dt=0.001, phase=0.0):
    """Regular spike trains [n_steps, neurons] (amplitude 1 / dt)."""
    t = np.arange(1, n_steps + 1)[:, None] * dt
    counts = np.floor(rates * t + phase)
    return np.diff(counts, axis=0, prepend=0) / dt


def test_moved_spikes_pass_and_other_trains_fail():
    rates = np.linspace(10, 150, 40)
    expected = _spikes(rates)
    moved = expected.copy()
    first = np.flatnonzero(expected[:, 5])[0]
    moved[[first, first + 1], 5] = moved[[first + 1, first], 5]  # one spike a step late
    moved[-1, 7], moved[-1, 9] = 1000.0, 0.0  # one across the end, one lost at it
    assert_spikes_close_across_kernels(moved, expected, "moved")
    with pytest.raises(AssertionError):  # not the same spike times: not values
        assert_close_across_kernels(moved, expected)

    for wrong in (
        _spikes(rates * 1.1),  # a wrong gain
        _spikes(rates[::-1]),  # neurons out of place
        expected[:150],  # half a run
        np.stack([_spikes(rates), _spikes(rates * 0.5)])[::-1],  # rows swapped
        expected * 2,  # twice the spikes
    ):
        want = np.stack([expected, _spikes(rates * 0.5)]) if wrong.ndim == 3 else expected
        with pytest.raises(AssertionError):
            assert_spikes_close_across_kernels(wrong, want)
