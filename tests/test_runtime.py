"""The runtime (`nengo_compile.runtime`) on its own, and as generated modules hold it."""

from __future__ import annotations

import ast
import subprocess
import sys

import numpy as np
import pytest

from nengo_compile import compile_network
from nengo_compile.render import TABLES
from nengo_compile.runtime import FILES

from .conftest import ROOT, compile_and_load, compile_to, import_module, reference
from .models import CORPUS

RUNTIME = ROOT / "nengo_compile" / "runtime"


def _top_level_names(path) -> set:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names - {"__all__"}


@pytest.mark.notf
def test_runtime_files_share_one_namespace_without_clashes():
    """Pasted into one module, no runtime file may redefine another's names or a table's."""
    seen = {}
    for name in FILES:
        for defined in _top_level_names(RUNTIME / name):
            assert defined not in seen, f"{defined} is defined in {seen[defined]} and {name}"
            assert defined not in TABLES, f"{name} defines the table name {defined}"
            seen[defined] = name
    listed = {path.name for path in RUNTIME.glob("*.py")} - {"__init__.py"}
    assert listed == set(FILES), "every runtime file is pasted (runtime.FILES)"


@pytest.mark.notf
def test_generated_module_holds_the_runtime_verbatim():
    from nengo_compile.render.runtime import _pasted

    source = compile_network(CORPUS["feedforward"](), module_name="verbatim_tf").source
    for name in FILES:
        _, body = _pasted(name)
        assert body in source, f"runtime/{name} is not in the module as it is"
        # and the body is the file less only its docstring and imports
        text = (RUNTIME / name).read_text()
        assert all(line in text.splitlines() for line in body.splitlines())
    assert "import nengo_compile" not in source and "from nengo_compile" not in source


def test_import_runtime_gives_the_same_values(tmp_path):
    """``runtime="import"`` (what the Simulator uses): same graph, same values."""
    net = CORPUS["synapses"]()
    _, pasted = compile_and_load(net, tmp_path, dtype="float64")
    compiled, imported = compile_and_load(net, tmp_path, dtype="float64", runtime="import")
    assert "from nengo_compile.runtime.model import CompiledModel" in compiled.source
    assert "class CompiledModel" not in compiled.source  # not pasted
    a = pasted.Model().run(50, batch_size=2)
    b = imported.Model().run(50, batch_size=2)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.notf
def test_unknown_runtime_is_a_clear_error():
    from nengo_compile import CompileError

    with pytest.raises(CompileError, match="runtime must be one of paste, import"):
        compile_network(CORPUS["feedforward"](), runtime="copy")


@pytest.mark.notf
def test_no_tensorflow_to_import_or_compile(tmp_path):
    """Importing nengo_compile and compiling a model (no exports) leave TensorFlow unimported."""
    code = f"""
import sys
import nengo_compile
assert "tensorflow" not in sys.modules, "import nengo_compile imported tensorflow"
sys.path.insert(0, {str(ROOT / "tests")!r})
from models import CORPUS
compiled = nengo_compile.compile_network(CORPUS["synapses"]())
from pathlib import Path
from nengo_compile.write import write
out = Path({str(tmp_path)!r}) / "notf_tf.py"
write(out, out.with_suffix(".npz"), compiled.source, compiled.params)
assert "tensorflow" not in sys.modules, "compiling imported tensorflow"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---- the runtime without the compiler: a hand-written model -------------------------


def _integrator(tmp_path):
    """A model written by hand against the runtime: ``x += u``, probed."""
    np.savez(tmp_path / "integrator.npz", x_init=np.zeros(2))
    source = """
import tensorflow as tf
from nengo_compile.runtime.model import CompiledModel
from nengo_compile.runtime.ops import *  # noqa: F403

DTYPE = tf.float64


class Model(CompiledModel):
    NAME = "integrator"
    DTYPE = DTYPE
    PARAMS_FILE = "integrator.npz"
    PROBES = {"x": (2,)}
    PROBE_PERIODS = {"x_every_2": 2.0}
    HOOKS = {"u": ("input u", 0, 2, "test")}
    INPUTS = {"u": 2}
    BLOCKS = {"x": (2, "x_init")}
    PARAMS = {"x_init": ((2,), "float64")}

    def _step(self, state, inputs, p, neurons="spiking", rows=0):
        step = state["step"] + 1
        if "u" in inputs:
            u = inputs["u"]
        else:  # served by a Python function of t
            t = tf.cast(step[0], tf.float64) * self.DT
            u = self._hook("u", t, None, tf.shape(step)[0])
        x = state["x"] + u
        return {"step": step, "x": x}, {"x": x}
"""
    path = tmp_path / "integrator.py"
    path.write_text(source)
    return import_module(path)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_hand_written_model_runs_and_streams(tmp_path, jit_compile):
    module = _integrator(tmp_path)
    model = module.Model(jit_compile=jit_compile)
    rng = np.random.RandomState(0)
    u = rng.uniform(-1, 1, size=(3, 7, 2))
    out, state = model.run(7, inputs={"u": u}, return_state=True)
    np.testing.assert_allclose(out["x"], np.cumsum(u, axis=1), rtol=1e-12)
    assert np.asarray(state["step"]).tolist() == [7, 7, 7]
    # streaming continues from the state: same values as one longer run
    state, probes = model.step(state, inputs={"u": u[:, 0]})
    np.testing.assert_allclose(probes["x"], out["x"][:, -1] + u[:, 0], rtol=1e-12)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_returned_state_is_trusted_only_while_unchanged(tmp_path, jit_compile):
    """A state that step or run returned skips the state checks (it holds the
    graph's own tensors); changed in any way, it is checked like any dict."""
    import tensorflow as tf

    from nengo_compile.runtime.checks import _trusted

    model = _integrator(tmp_path).Model(jit_compile=jit_compile)
    u = np.random.RandomState(2).uniform(-1, 1, size=(2, 4, 2))
    state, xs = model.initial_state(2), []
    for k in range(4):
        state, probes = model.step(state, {"u": u[:, k]})
        xs.append(probes["x"])
        assert _trusted(state, model._key)
    np.testing.assert_allclose(np.stack(xs, 1), np.cumsum(u, 1), rtol=1e-12)
    _, state = model.run(1, inputs={"u": u[:, :1]}, state=state, return_state=True)
    assert _trusted(state, model._key) and not _trusted(dict(state), model._key)
    changes = [
        (lambda s: s.__setitem__("x", np.zeros((2, 3))), r"'x' has shape \(2, 3\)"),
        (lambda s: s.__setitem__("x", tf.zeros((2, 2), tf.float32)), "'x' is float32"),
        (lambda s: s.__setitem__("y", np.zeros((2, 2))), r"unknown \['y'\]"),
        (lambda s: s.pop("x"), r"missing \['x'\]"),
        (lambda s: s.__setitem__("step", tf.zeros((3,), tf.int64)), r"'x' has shape \(2, 2\)"),
    ]
    for change, message in changes:
        changed, _ = model.step(state, {"u": u[:, 0]})
        change(changed)
        assert not _trusted(changed, model._key)
        with pytest.raises(ValueError, match=message):
            model.step(changed, {"u": u[:, 0]})
    # a valid change is used
    changed, _ = model.step(state, {"u": u[:, 0]})
    changed["x"] = tf.ones((2, 2), tf.float64)
    _, probes = model.step(changed, {"u": u[:, 1]})
    np.testing.assert_allclose(probes["x"], 1 + u[:, 1], rtol=1e-12)


def test_graph_callers_agree():
    """Each way `_caller` calls a concrete function (eagerly at once, inside a
    graph, on a TensorFlow without AtomicFunction) gives its values, captures
    included."""
    import tensorflow as tf

    from nengo_compile.runtime.graphs import _caller

    v = tf.Variable([0.5, -2.0])
    f = tf.function(lambda a, b: [a * b + v, a - b], autograph=False)
    concrete = f.get_concrete_function(tf.TensorSpec([2]), tf.TensorSpec([2]))
    a, b = tf.constant([1.0, 2.0]), tf.constant([3.0, 4.0])
    expected = [[3.5, 6.0], [-2.0, -2.0]]

    class Other:  # a concrete function as another TensorFlow may have it
        def __call__(self, *tensors):
            return concrete(*tensors)

    in_graph = tf.function(lambda a, b: _caller(concrete)([a, b]), autograph=False)
    for result in (_caller(concrete)([a, b]), in_graph(a, b), _caller(Other())([a, b])):
        np.testing.assert_allclose([t.numpy() for t in result], expected)


def test_hand_written_model_checks_what_it_is_given(tmp_path):
    module = _integrator(tmp_path)
    model = module.Model(jit_compile=False)
    u = np.zeros((2, 5, 2))
    with pytest.raises(ValueError, match=r"input 'u' has shape \(2, 5, 3\); expected \(2, 5, 2\)"):
        model.run(5, inputs={"u": np.zeros((2, 5, 3))})
    with pytest.raises(ValueError, match="hook 'u' .* has no value"):
        model.run(5)
    with pytest.raises(ValueError, match="inconsistent batch sizes"):
        model.run(5, inputs={"u": u}, batch_size=3)
    with pytest.raises(ValueError, match="n_steps must be a non-negative integer"):
        model.run(2.5, inputs={"u": u})
    with pytest.raises(ValueError, match=r"missing \['x'\]"):
        model.step({"step": np.zeros(2, np.int64)}, inputs={"u": u[:, 0]})
    with pytest.raises(ValueError, match="state 'x' has shape"):
        model.step({"step": np.zeros(2, np.int64), "x": np.zeros((2, 3))})
    with pytest.raises(KeyError, match="no hook named 'v'"):
        module.Model(node_functions={"v": print})
    with pytest.raises(ValueError, match="does not match this module"):
        np.savez(tmp_path / "other.npz", y=np.zeros(2))
        module.Model(params_file=str(tmp_path / "other.npz"))


def test_hand_written_model_serves_hooks_in_python(tmp_path):
    module = _integrator(tmp_path)
    model = module.Model(node_functions={"input u": lambda t: [t, 1.0]})
    assert not model.jit_compile  # Python functions keep it from XLA
    out = model.run(4)
    t = 0.001 * np.arange(1, 5)
    np.testing.assert_allclose(out["x"][0, :, 0], np.cumsum(t), rtol=1e-12)
    np.testing.assert_allclose(out["x"][0, :, 1], np.arange(1, 5), rtol=1e-12)


def test_parts_split_large_batches_only_with_xla(tmp_path, monkeypatch):
    from nengo_compile.runtime import model as runtime_model

    module = _integrator(tmp_path)
    xla, plain = module.Model(jit_compile=True), module.Model(jit_compile=False)
    monkeypatch.setattr(
        runtime_model.os, "sched_getaffinity", lambda _: {0, 1, 2, 3}, raising=False
    )
    assert plain._parts(64) == 1
    assert xla._parts(64) == 4
    assert xla._parts(16) == 1  # parts of at least PARALLEL_MIN_ROWS rows
    assert xla._parts(34) == 2  # equal parts
    u = np.random.RandomState(1).uniform(-1, 1, size=(64, 3, 2))
    out = xla.run(3, inputs={"u": u})
    np.testing.assert_allclose(out["x"], np.cumsum(u, axis=1), rtol=1e-12)


def test_simulator_modules_import_the_runtime(tmp_path):
    import nengo

    import nengo_compile

    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(20, 1)
        p = nengo.Probe(a, synapse=0.01)
    with nengo_compile.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(10)
        source = (sim._folder / f"{sim._module_name}.py").read_text()
        assert sim.data[p].shape == (10, 1)
    assert "from nengo_compile.runtime.model import CompiledModel" in source


# ---- the parameter file is data ------------------------------------------------------


class _Pwned:
    """Unpickling this would write a file: it must never happen."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _tampered(tmp_path, change):
    """A compiled module whose parameter file ``change(arrays)`` rewrote."""
    _, path = compile_to(CORPUS["synapses"](), tmp_path, dtype="float32")
    npz = path.with_suffix(".npz")
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(npz, **arrays)
    return import_module(path), arrays


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop(sorted(a)[0]), r"missing arrays \['\w+'\], extra arrays \[\]"),
        (lambda a: a.update(smuggled=np.zeros(3)), r"extra arrays \['smuggled'\]"),
        (
            lambda a: a.update({sorted(a)[0]: np.zeros(7, np.float32)}),
            r"array '\w+' is float32 \(7,\)",
        ),
        (
            lambda a: a.update({sorted(a)[0]: a[sorted(a)[0]].astype(np.float64)}),
            r"array '\w+' is float64 .*expects (float32|int32)",
        ),
    ],
    ids=["missing", "extra", "shape", "dtype"],
)
def test_tampered_parameter_file_is_refused(tmp_path, change, message):
    module, _ = _tampered(tmp_path, change)
    with pytest.raises(ValueError, match=message):
        module.Model()


def test_parameter_file_is_never_unpickled(tmp_path):
    marker = tmp_path / "PWNED"
    name = None

    def smuggle(arrays):
        nonlocal name
        name = sorted(arrays)[0]
        arrays[name] = np.array([_Pwned(str(marker))], dtype=object)

    module, _ = _tampered(tmp_path, smuggle)
    with pytest.raises(ValueError, match=f"array '{name}' cannot be loaded as data"):
        module.Model()
    assert not marker.exists()


def test_parameter_file_that_is_not_one(tmp_path):
    _, path = compile_to(CORPUS["feedforward"](), tmp_path)
    module = import_module(path)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="is not a parameter file"):
        module.Model(params_file=str(bad))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        module.Model(params_file=str(tmp_path / "absent.npz"))


# ---- misuse of a generated module: one-line errors, or the documented behaviour -------


@pytest.fixture
def fed(tmp_path):
    """A compiled model with one fed input ``u`` (a hook: Python stays Python)."""
    import nengo

    with nengo.Network(seed=0) as net:
        u = nengo.Node(lambda t: [np.sin(t)], label="u")
        a = nengo.Ensemble(20, 1)
        nengo.Connection(u, a)
        nengo.Probe(a, synapse=0.01)
    _, module = compile_and_load(net, tmp_path, translate=False, name="fed_tf")
    return module


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m: m.run(5, inputs=[np.zeros((1, 5, 1))]), TypeError, "inputs must be a dict"),
        (lambda m: m.run(5, inputs={"u": np.full((1, 5, 1), "a")}), TypeError, "holds <U1"),
        (lambda m: m.run(5, inputs={"u": np.zeros((1, 5, 1), complex)}), TypeError, "complex"),
        (lambda m: m.run(2, inputs={"u": [[[0.0]] * 2, [[0.0]]]}), ValueError, "rectangular"),
        (lambda m: m.run(5, inputs={"u": np.zeros((1, 4, 1))}), ValueError, r"shape \(1, 4, 1\)"),
        (lambda m: m.run(5, inputs={"u": np.zeros((0, 5, 1))}), ValueError, "at least 1"),
        (lambda m: m.run(None), ValueError, "n_steps must be a non-negative integer"),
        (lambda m: m.run(2.5), ValueError, "n_steps must be a non-negative integer"),
        (lambda m: m.run(-1), ValueError, "n_steps must be a non-negative integer"),
        (lambda m: m.initial_state(0), ValueError, "batch size must be at least 1"),
        (lambda m: m.initial_state(-2), ValueError, "batch size must be at least 1"),
        (lambda m: m.step(m.initial_state(2), {"u": np.zeros((2, 3))}), ValueError, r"\(2, 3\)"),
    ],
)
def test_misuse_is_a_one_line_error(fed, call, error, message):
    with pytest.raises(error, match=message) as info:
        call(fed.Model())
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_documented_edge_cases(fed, jit_compile):
    model = fed.Model(jit_compile=jit_compile)
    # run(0): no values, the state as it was
    state = model.initial_state(2)
    out, after = model.run(0, inputs={"u": np.zeros((2, 0, 1))}, state=state, return_state=True)
    assert all(v.shape == (2, 0, *fed.PROBES[k]) for k, v in out.items())
    np.testing.assert_array_equal(np.asarray(after["step"]), [0, 0])
    # integers and nested lists are numbers too
    ints = model.run(3, inputs={"u": [[[1], [0], [1]]]})
    floats = model.run(3, inputs={"u": np.array([[[1.0], [0.0], [1.0]]])})
    for name in ints:
        np.testing.assert_array_equal(ints[name], floats[name])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_nan_and_inf_propagate_as_in_nengo(tmp_path, jit_compile):
    """Non-finite values (here from a process, which Nengo does not check)
    propagate as in nengo.Simulator: NaN voltages, no crash."""
    import nengo

    values = [[0.5], [0.5], [np.nan], [np.inf], [-np.inf], [0.5]]
    with nengo.Network(seed=0) as net:
        u = nengo.Node(nengo.processes.PresentInput(values, 0.001))
        a = nengo.Ensemble(5, 1)
        nengo.Connection(u, a, synapse=None)
        nengo.Probe(a.neurons, "voltage")
        nengo.Probe(u)
        nengo.Probe(a, synapse=0.01)
    data, _ = reference(net, 6)
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    outputs = module.Model(jit_compile=jit_compile).run(6)
    assert np.isnan(data[0]).any()
    for name, ref in zip(module.PROBES, data):
        np.testing.assert_allclose(outputs[name][0], ref, atol=1e-9, equal_nan=True)


def test_state_of_another_model_is_refused(fed, tmp_path):
    other = _integrator(tmp_path).Model().initial_state(1)
    with pytest.raises(ValueError, match=r"belongs to another model \(integrator \w+\)"):
        fed.Model().run(2, state=other, inputs={"u": np.zeros((1, 2, 1))})
    with pytest.raises(ValueError, match=r"missing \[.*\], unknown \['x'\]"):  # a plain dict
        fed.Model().run(2, state=dict(other), inputs={"u": np.zeros((1, 2, 1))})
    # the same layout under another model: told apart by the state's model
    twin = import_module(tmp_path / "fed_tf.py")  # same file, so same layout and name
    state = twin.Model().initial_state(1)
    fed.Model().step(state, {"u": np.zeros((1, 1))})  # the same model: accepted
    state.model = "other_tf 0123456789ab"
    with pytest.raises(ValueError, match="belongs to another model"):
        fed.Model().step(state, {"u": np.zeros((1, 1))})


def test_run_too_large_for_memory_fails_at_once(fed, monkeypatch):
    monkeypatch.setattr(fed, "_available_memory", lambda: 10**6)  # the pasted runtime's
    model = fed.Model()
    with pytest.raises(MemoryError, match=r"run it in pieces of at most \d+ steps"):
        model.run(10**6, batch_size=8, inputs={"u": np.zeros((8, 10**6, 1), np.float32)})
