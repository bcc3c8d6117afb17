"""The generated module as a product: standalone, deterministic, pinned, tidy."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nengo_compile import compile_network

from .conftest import ROOT, assert_ruff_formatted, compile_to, reference
from .models import CORPUS

GOLDEN = ROOT / "tests" / "golden"
GOLDEN_MODELS = {
    "feedforward_float32": ("feedforward", "float32"),
    "synapses_float64": ("synapses", "float64"),
    "node_functions_float32": ("node_functions", "float32"),
}


RUNTIME_BANNERS = ("# ==== the runtime: ", "# ==== end of the runtime ====")


def _pinned(source: str) -> str:
    """The source without the line naming the compiling machine's versions, and
    with the pasted runtime as one line (`test_runtime` checks it is verbatim)."""
    lines = source.splitlines(True)
    start = next(i for i, line in enumerate(lines) if line.startswith(RUNTIME_BANNERS[0]))
    stop = next(i for i, line in enumerate(lines) if line.startswith(RUNTIME_BANNERS[1]))
    lines[start : stop + 1] = ["# ==== the runtime (nengo_compile/runtime) is pasted here ====\n"]
    return "".join(line for line in lines if not line.startswith("# Compiled with"))


@pytest.mark.notf
@pytest.mark.parametrize("golden", sorted(GOLDEN_MODELS))
def test_generated_source_matches_golden(golden, update_golden):
    name, dtype = GOLDEN_MODELS[golden]
    compiled = compile_network(CORPUS[name](), dtype=dtype, module_name=golden)
    path = GOLDEN / f"{golden}.py.txt"
    if update_golden:
        path.write_text(_pinned(compiled.source))
    assert path.exists(), f"no golden file {path}: run pytest --update-golden"
    assert _pinned(compiled.source) == path.read_text(), (
        f"generated source of {golden} changed; if intended, run pytest --update-golden "
        "and review the diff"
    )


@pytest.mark.notf
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_generated_source_is_valid_and_formatted(name, tmp_path):
    compiled, path = compile_to(CORPUS[name](), tmp_path)
    compile(compiled.source, str(path), "exec")
    assert_ruff_formatted(path)


@pytest.mark.notf
def test_long_labels_stay_formatted(tmp_path):
    """Labels of any length reach the module in ruff-stable form."""
    import nengo

    label = "a very long label " * 12
    with nengo.Network(seed=1, label=label) as net:
        stim = nengo.Node(lambda t: t, label=label)
        ens = nengo.Ensemble(10, 1, label=label)
        nengo.Connection(stim, ens)
        nengo.Probe(ens, label=label)
        nengo.Probe(ens.neurons)
    _, path = compile_to(net, tmp_path)
    assert_ruff_formatted(path)


@pytest.mark.notf
def test_same_model_and_seed_give_identical_files(tmp_path):
    first, path1 = compile_to(CORPUS["synapses"](), tmp_path / "a", name="same_tf")
    second, path2 = compile_to(CORPUS["synapses"](), tmp_path / "b", name="same_tf")
    assert path1.read_bytes() == path2.read_bytes()
    assert path1.with_suffix(".npz").read_bytes() == path2.with_suffix(".npz").read_bytes()


@pytest.mark.notf
def test_template_cache_is_only_a_speed_up(tmp_path, monkeypatch):
    """Compiled templates are kept between processes (Jinja's bytecode cache);
    with a cache that cannot be written the output is the same."""
    from nengo_compile import render

    assert isinstance(render.environment().bytecode_cache, render.TemplateCache)
    expected = compile_network(CORPUS["synapses"](), module_name="cached", cache=False).source
    unwritable = render.TemplateCache(str(tmp_path / "missing"))
    monkeypatch.setattr(render, "_bytecode_cache", lambda: unwritable)
    render.environment.cache_clear()
    try:
        assert render.environment().bytecode_cache is unwritable
        again = compile_network(CORPUS["synapses"](), module_name="cached", cache=False)
        assert again.source == expected
    finally:
        render.environment.cache_clear()


def test_seed_option_acts_as_network_seed(tmp_path):
    """--seed N builds what nengo.Simulator builds for net.seed = N."""
    net = CORPUS["feedforward"]()
    net.seed = None
    _, path = compile_to(net, tmp_path, name="seeded_tf", seed=77, dtype="float64")
    data, _ = reference(net, 100, seed=77)
    sys.path.insert(0, str(tmp_path))
    try:
        import seeded_tf

        outputs = seeded_tf.Model().run(100)
    finally:
        sys.path.remove(str(tmp_path))
    for name, ref in zip(seeded_tf.PROBES, data):
        assert np.max(np.abs(outputs[name][0] - ref)) <= 1e-9
    assert seeded_tf.SEED == 77


@pytest.mark.notf
def test_unseeded_network_records_its_random_seed():
    net = CORPUS["feedforward"]()
    net.seed = None
    seeds = {compile_network(net).program.seed for _ in range(3)}
    assert len(seeds) == 3


BLOCK_NENGO = textwrap.dedent(
    """
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("nengo", "nengo_compile", "scipy", "jinja2", "networkx"):
                raise ImportError(name + " is blocked in this test")

    sys.meta_path.insert(0, Blocker())
    sys.path = [p for p in sys.path if p not in ("", {root!r})]
    sys.path.insert(0, {folder!r})
    import numpy as np
    import {module} as compiled

    model = compiled.Model()
    outputs = model.run(50, batch_size=2)
    assert not any(m.split(".")[0] == "nengo" for m in sys.modules), "nengo was imported"
    for name, value in outputs.items():
        print(name, value.shape, float(np.sum(value)))
    """
)


def test_module_runs_without_nengo(tmp_path):
    _, path = compile_to(CORPUS["integrator"](), tmp_path, name="standalone_tf")
    script = BLOCK_NENGO.format(root=str(ROOT), folder=str(tmp_path), module="standalone_tf")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "value (2, 50, 1)" in result.stdout
    blocker_only = BLOCK_NENGO.split("import numpy")[0].format(root=str(ROOT), folder="")
    probe = subprocess.run(
        [sys.executable, "-c", blocker_only + "import nengo"],
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0 and "blocked" in probe.stderr  # the blocker works
