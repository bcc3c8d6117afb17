"""Shared helpers: compile a network, import the generated module, run Nengo."""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nengo
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from nengo_compile import compile_network  # noqa: E402
from nengo_compile.write import write  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_counter = itertools.count()


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
