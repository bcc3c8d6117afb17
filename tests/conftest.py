"""Shared helpers: compile a network, import the generated module, run Nengo."""

from __future__ import annotations

import atexit
import importlib.util
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nengo
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# the compile cache of this test process: on, as for users (repeated compiles
# hit it), but never the user's own folder, and gone afterwards
_CACHE = tempfile.mkdtemp(prefix="nengo_compile_test_cache_")
os.environ["NENGO_COMPILE_CACHE"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)

from nengo_compile import compile_network  # noqa: E402
from nengo_compile.write import write  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: the test files of the no-TensorFlow tier (marked ``notf``)
NO_TF_FILES = {"test_architecture.py", "test_plan.py", "test_tolerance.py"}
_counter = itertools.count()


#: where TensorFlow is not installed (CI's no-TensorFlow tier, which runs
#: `pytest -m notf`), only the files of that tier are collected: the others may
#: import TensorFlow (or Keras, nengo-spa, ...) as they are collected
collect_ignore = (
    []
    if importlib.util.find_spec("tensorflow")
    else sorted(
        p.name for p in Path(__file__).parent.glob("test_*.py") if p.name not in NO_TF_FILES
    )
)

#: each test file's tier (see the markers in pyproject.toml); others: roundtrip
TIERS = {
    "test_architecture.py": "unit",
    "test_plan.py": "unit",
    "test_tolerance.py": "unit",
    "test_write.py": "unit",
    "test_generated.py": "generated",
    "test_export.py": "export",
    "test_training_export.py": "export",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(TIERS.get(item.path.name, "roundtrip"))
        if item.path.name in NO_TF_FILES:
            item.add_marker("notf")


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the expected generated sources in tests/golden/",
    )


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


def compile_to(net, folder, name=None, **options):
    """Compile ``net`` into ``folder``; returns (Compiled, module path)."""
    name = name or f"gen{next(_counter)}_tf"
    compiled = compile_network(net, module_name=name, **options)
    path = Path(folder) / f"{name}.py"
    write(path, path.with_suffix(".npz"), compiled.source, compiled.params)
    return compiled, path


def import_module(path):
    path = Path(path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def compile_and_load(net, folder, **options):
    compiled, path = compile_to(net, folder, **options)
    return compiled, import_module(path)


def reference(net, n_steps, dt=0.001, seed=None):
    """Probe data from nengo.Simulator, in the order of ``net.all_probes``."""
    old = net.seed
    if seed is not None:
        net.seed = seed
    try:
        with nengo.Simulator(net, dt=dt, progress_bar=False) as sim:
            sim.run_steps(n_steps)
            return [np.asarray(sim.data[p]) for p in net.all_probes], sim
    finally:
        net.seed = old


def assert_ruff_formatted(path):
    """The file is exactly as `ruff format` (line length 100) would write it."""
    ruff = shutil.which("ruff") or str(ROOT / ".venv" / "bin" / "ruff")
    result = subprocess.run(
        [ruff, "format", "--check", "--diff", "--line-length", "100", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def probe_names(module):
    return list(module.PROBES)


def max_errors(net, module, outputs, data):
    """{probe name: max |compiled - nengo|} over all probes (batch element 0)."""
    errors = {}
    for name, ref in zip(probe_names(module), data):
        got = outputs[name][0]
        assert got.shape == ref.shape, (name, got.shape, ref.shape)
        errors[name] = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    return errors


# ---- comparing runs of one computation by other kernels ------------------------

#: how far, in ulps of the dtype at a probe's scale, two kernels' results of one
#: computation may be apart: a few ulps per operation (summation order, vector or
#: remainder loop, XLA's or Eigen's exp and log), carried through the state for up
#: to a few hundred steps; a recurrent integrator adds them up (229 float32 ulps
#: measured after 300 steps of `models.integrator`, XLA against none; rows of one
#: batch 3, batch sizes 36). Float32: 1.2e-4 of the scale; float64: 2.3e-13.
KERNEL_ULPS = 1024
#: float32 spike trains by other kernels: spikes per neuron over a run may differ
#: by this many (a rounding difference in a voltage moves a spike by a step, which
#: can move it across the end of the run, or move another downstream)
SPIKE_COUNT_MARGIN = 1


def kernel_atol(expected, dtype=None, ulps=KERNEL_ULPS):
    """``ulps * eps(dtype) * max(1, max |expected|)``: the tolerance of
    `assert_close_across_kernels`."""
    expected = np.asarray(expected)
    dtype = np.dtype(dtype or expected.dtype)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    return ulps * float(np.finfo(dtype).eps) * scale


def assert_close_across_kernels(actual, expected, what="", dtype=None, ulps=KERNEL_ULPS):
    """``actual`` and ``expected`` are one computation (same model, parameters,
    inputs and state) run by kernels that may differ: another batch size or
    position in the batch, XLA on or off, the batch parts of an XLA run, another
    graph (``step`` against ``run``, runs of other lengths, an exported
    artifact), another process or CPU.

    Checked: every element within ``kernel_atol``, ``ulps`` ulps of ``dtype``
    (default: ``expected``'s) at the probe's scale ``max(1, max |expected|)``;
    NaNs where ``expected`` has NaNs. Integers (step counters) are equal.

    Not bit equality: float kernels pick paths by shape, alignment and CPU
    (oneDNN or Eigen, vectorized or remainder loops, XLA's tiling and its own
    exp and log), which round differently; on some CPUs two rows of one batch
    differ in the last bit. Bit equality holds only for the same graph on the
    same shapes in the same process, where tests compare with
    ``np.testing.assert_array_equal``.

    Float32 spike trains do not round: a one-ulp difference in a voltage near
    threshold moves a spike by a step, and everything the spike feeds moves by
    a spike's worth; compare them with `assert_spikes_close_across_kernels`. In
    float64 that takes a voltage within about 1e-15 of threshold (a chance
    below 1e-9 for these tests' spikes): float64 spike trains are compared
    here, as values.

    A real bug still fails: a swapped or shifted batch row (tests give rows
    different inputs), a state carried wrongly between runs or steps, a wrong
    parameter, all move values by far more than this tolerance.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    if not np.issubdtype(np.dtype(dtype or expected.dtype), np.inexact):
        np.testing.assert_array_equal(actual, expected, err_msg=str(what))  # step counters
        return
    atol = kernel_atol(expected, dtype, ulps)
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(actual), nan), f"{what}: NaNs in other places"
    error = np.abs(actual.astype(np.float64) - expected.astype(np.float64))[~nan]
    worst = float(np.max(error)) if error.size else 0.0
    assert worst <= atol, (
        f"{what}: max |difference| {worst:.3g} > {atol:.3g} ({ulps} ulps of"
        f" {np.dtype(dtype or expected.dtype)} at the scale); {np.sum(error > atol)} of"
        f" {error.size} elements over"
    )


def assert_spikes_close_across_kernels(
    actual, expected, what="", dt=0.001, margin=SPIKE_COUNT_MARGIN
):
    """Spike trains ``[..., steps, neurons]`` (amplitude ``1 / dt``) of one
    computation run by kernels that may differ (see
    `assert_close_across_kernels`), in float32.

    Checked: for each neuron (and batch row) the number of spikes over the run
    differs by at most ``margin``, and the trains hold whole spikes.

    Why not the spike times: a rounding difference of one ulp in a voltage that
    lies that close to threshold moves a spike by a step; the spike it feeds
    moves downstream ones. Counts over the run move only by the spikes that
    cross its ends or that a moved spike adds or removes downstream.

    A real bug still fails: rows with different inputs swapped, a lost state,
    a wrong gain give counts that differ by several spikes per neuron.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    counts, want = actual.sum(axis=-2) * dt, expected.sum(axis=-2) * dt
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3, err_msg=f"{what}: not spikes")
    worst = float(np.max(np.abs(counts - want))) if counts.size else 0.0
    assert worst <= margin, (
        f"{what}: spike counts differ by up to {worst:g} > {margin} per neuron;"
        f" {np.sum(np.abs(counts - want) > margin)} of {counts.size} neurons over"
    )
