"""Export: SavedModel, TFLite and ONNX artifacts run without Nengo and match.

Each artifact is loaded in a subprocess in which importing Nengo, nengo_compile
and the generated module fails (and, for TFLite and ONNX, TensorFlow too), and
its outputs are compared with the generated module's, run in this process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nengo_compile import compile_network
from nengo_compile.cli import main

from .conftest import (
    ROOT,
    assert_close_across_kernels,
    assert_spikes_close_across_kernels,
    compile_and_load,
)
from .models import CORPUS

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

N_STEPS = 80
#: float32 runtimes differ in the last bits; a spike may move by a step, so
#: values are compared after summing over time (within this of their scale)
#: where a spike moved, and always for the portable formats (TFLite, ONNX)
ATOL_SUM = 0.05
#: the spike-train probes of `export_model`
SPIKE_PROBES = {"spikes"}

BLOCKER = textwrap.dedent(
    """
    import sys
    BLOCKED = {blocked!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(name + " is blocked here")

    sys.meta_path.insert(0, Blocker())
    sys.path = [p for p in sys.path if p not in ("", {root!r})]
    import numpy as np
    """
)

LOADERS = {
    "saved_model": """
        import tensorflow as tf
        model = tf.saved_model.load(PATH)
        run = model.signatures["run"]
        def call(n_steps, batch, inputs):
            args = {{"input_" + k: tf.constant(v) for k, v in inputs.items()}}
            if not inputs:
                args.update(n_steps=tf.constant(n_steps), batch_size=tf.constant(batch))
            return {{k: v.numpy() for k, v in run(**args).items()}}
    """,
    "tflite": """
        from ai_edge_litert.interpreter import Interpreter
        runner = Interpreter(model_path=PATH).get_signature_runner("run")
        def call(n_steps, batch, inputs):
            args = {{"input_" + k: v for k, v in inputs.items()}}
            if not inputs:
                args["n_steps"] = np.array(n_steps, np.int32)
            return runner(**args)
    """,
    "onnx": """
        import onnxruntime
        session = onnxruntime.InferenceSession(PATH)
        def call(n_steps, batch, inputs):
            args = {{"input_" + k: v for k, v in inputs.items()}}
            if not inputs:
                args["n_steps"] = np.array(n_steps, np.int32)
                args["batch_size"] = np.array(batch, np.int32)
            names = [o.name for o in session.get_outputs()]
            return dict(zip(names, session.run(None, args)))
    """,
}

BLOCKS = {
    "saved_model": ["nengo", "nengo_compile"],
    "tflite": ["nengo", "nengo_compile", "tensorflow"],
    "onnx": ["nengo", "nengo_compile", "tensorflow"],
}


def run_artifact(kind, path, module_name, n_steps, batch, inputs, out):
    np.savez(out.with_suffix(".in.npz"), **inputs)
    script = BLOCKER.format(blocked=BLOCKS[kind] + [module_name], root=str(ROOT))
    script += f"PATH = {str(path)!r}\n"
    script += textwrap.dedent(LOADERS[kind]).format()
    script += textwrap.dedent(
        f"""
        inputs = dict(np.load({str(out.with_suffix(".in.npz"))!r}))
        outputs = call({n_steps}, {batch}, inputs)
        assert not any(m.split(".")[0] in BLOCKED for m in sys.modules)
        np.savez({str(out)!r}, **outputs)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(np.load(out))


def channel_inputs(module, batch):
    t = module.DT * np.arange(1, N_STEPS + 1)
    phases = np.arange(batch)[:, None]
    return {"stimulus": np.sin(2 * np.pi * t + phases)[..., None].astype(np.float32)}


def export_model():
    """A spiking LIF model with recurrence, an input node, and probes of
    different shapes (one with sample_every)."""
    import nengo

    with nengo.Network(seed=5, label="export") as net:
        stimulus = nengo.Node(lambda t: np.sin(2 * np.pi * t), label="stimulus")
        ens = nengo.Ensemble(60, 2, label="ens")
        nengo.Connection(stimulus, ens[0])
        nengo.Connection(ens, ens, transform=[[0.9, 0.1], [-0.1, 0.9]], synapse=0.05)
        nengo.Probe(ens, synapse=0.02, label="value")
        nengo.Probe(ens.neurons, label="spikes")
        nengo.Probe(ens.neurons, "voltage", label="voltage")
        nengo.Probe(ens, "scaled_encoders", label="encoders")
        nengo.Probe(ens, synapse=0.01, sample_every=0.005, label="sampled")
    return net


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The model compiled once; SavedModel and ONNX exported once (dynamic
    batch), TFLite once per batch size (static batch)."""
    folder = tmp_path_factory.mktemp("export")
    _, module = compile_and_load(export_model(), folder, dtype="float32", translate=False)
    exporter = module.Model()  # XLA where it can: exports trace their own kernels
    exporter.export_saved_model(folder / "sm")
    exporter.export_onnx(folder / "model.onnx")
    assert exporter.jit_compile  # restored after exporting
    model = module.Model(jit_compile=False)  # as the artifacts: TensorFlow's own kernels
    paths = {"saved_model": folder / "sm", "onnx": folder / "model.onnx"}

    def get(kind, batch):
        if kind == "tflite":
            path = folder / f"model{batch}.tflite"
            if not path.exists():
                exporter.export_tflite(path, batch_size=batch)
            return module, model, path
        return module, model, paths[kind]

    return get


@pytest.mark.parametrize("kind", ["saved_model", "tflite", "onnx"])
@pytest.mark.parametrize("batch", [1, 3])
def test_artifact_matches_module(exported, kind, batch, tmp_path):
    module, model, path = exported(kind, batch)
    inputs = channel_inputs(module, batch)
    expected = model.run(N_STEPS, inputs=inputs, batch_size=batch)
    got = run_artifact(kind, path, module.__name__, N_STEPS, batch, inputs, tmp_path / "out.npz")
    assert sorted(got) == sorted(f"probe_{name}" for name in module.PROBES)
    got = {name: got[f"probe_{name}"] for name in module.PROBES}
    assert_like_module(got, expected, portable=kind != "saved_model")


def assert_like_module(got, expected, portable):
    """An artifact's probes ``got`` against the module's ``expected`` (float32,
    ``{name: [batch, steps, *shape]}``), run in another graph, maybe another
    process: spike trains by their counts per neuron; where no spike moved
    (the usual case for a SavedModel, which runs TensorFlow's kernels), every
    other probe to float32 rounding. A moved spike moves what it feeds by a
    spike's worth, and the portable formats (other runtimes, rewritten
    ``expm1``/``log1p``) may move spikes: there, the other probes' sums over
    time within ATOL_SUM of their scale."""
    moved = portable or any(not np.array_equal(got[n], expected[n]) for n in SPIKE_PROBES)
    for name, want in expected.items():
        value = got[name]
        assert value.shape == want.shape, name
        if name in SPIKE_PROBES:
            assert_spikes_close_across_kernels(value, want, name)
        elif not moved:
            assert_close_across_kernels(value, want, name)
        else:
            total, want_total = value.sum(axis=1), want.sum(axis=1)
            scale = max(1.0, float(np.abs(want_total).max()))
            np.testing.assert_allclose(total, want_total, atol=ATOL_SUM * scale, err_msg=name)


def test_exports_trace_the_kernels_of_their_own_xla_setting(tmp_path, monkeypatch):
    """A model running with XLA exports artifacts traced for their own setting
    (block products pick different kernels with and without XLA)."""
    _, module = compile_and_load(CORPUS["transforms"](), tmp_path, dtype="float32")
    seen = []
    wide_blocks = module._wide_blocks

    def spy(x, blocks, batch, xla):
        seen.append(xla)
        return wide_blocks(x, blocks, batch, xla)

    monkeypatch.setattr(module, "_wide_blocks", spy)
    model = module.Model()
    assert model.jit_compile
    model.export_saved_model(tmp_path / "sm")
    assert seen and not any(seen)
    seen.clear()
    model.export_saved_model(tmp_path / "sm_xla", jit_compile=True)
    assert seen and all(seen)
    seen.clear()
    model.export_onnx(tmp_path / "m.onnx")
    assert seen and not any(seen)
    assert model.jit_compile and model._jit_compile is True


def test_saved_model_step_signature_streams(exported):
    import tensorflow as tf

    module, model, path = exported("saved_model", 2)
    loaded = tf.saved_model.load(str(path))
    step = loaded.signatures["step"]
    inputs = {k: v[:, :10] for k, v in channel_inputs(module, 2).items()}
    expected = model.run(10, inputs=inputs)
    state = {f"state_{k}": v for k, v in model.initial_state(2).items()}
    names = [name for name in module.PROBES if name not in module.PROBE_PERIODS]
    steps = {name: [] for name in names}  # `step` returns every step
    for i in range(10):
        outputs = step(**state, input_stimulus=tf.constant(inputs["stimulus"][:, i]))
        assert not set(outputs) & set(state)
        state = {k.removeprefix("next_"): v for k, v in outputs.items() if k.startswith("next_")}
        for name in names:
            steps[name].append(outputs[f"probe_{name}"].numpy())
    got = {name: np.stack(values, axis=1) for name, values in steps.items()}
    assert_like_module(got, {name: expected[name] for name in names}, portable=False)


def test_jit_saved_model_survives_reload(tmp_path):
    """(In float64, where rounding cannot move the spikes that the voltage
    probe shows: every value to rounding.)"""
    import tensorflow as tf

    _, module = compile_and_load(CORPUS["integrator"](), tmp_path, dtype="float64")
    model = module.Model()
    model.export_saved_model(tmp_path / "sm", jit_compile=True)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    got = loaded.signatures["run"](n_steps=tf.constant(50), batch_size=tf.constant(2))
    expected = model.run(50, batch_size=2)
    for name in module.PROBES:
        assert_close_across_kernels(got[f"probe_{name}"].numpy(), expected[name], name)


MODEL_WITH_HOOK = """
import nengo
model = nengo.Network(seed=1)
with model:
    stim = nengo.Node(lambda t: t)
    square = nengo.Node(lambda t, x: x * x, size_in=1, label="square")
    nengo.Connection(stim, square)
    nengo.Probe(square)
"""


def test_export_refuses_python_hooks_and_writes_nothing(tmp_path, capsys):
    model = tmp_path / "model.py"
    model.write_text(MODEL_WITH_HOOK)
    code = main(
        [str(model), "-o", str(tmp_path / "m_tf.py"), "--saved-model", str(tmp_path / "sm")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot export" in err and "'square'" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]


def test_invalid_onnx_is_refused_and_nothing_written(exported, tmp_path, monkeypatch):
    """tf2onnx logs the nodes it cannot convert and writes the model anyway
    (once: a segment sum in a loop that also branched on the batch size): the
    ONNX checker refuses such a model, and neither file is put in place."""
    import onnx
    import tf2onnx

    def converter(fn, input_signature=None, opset=None, output_path=None):
        node = onnx.helper.make_node("SegmentSum", ["x", "i"], ["y"])
        graph = onnx.helper.make_graph(
            [node],
            "g",
            [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [2]) for n in "xi"],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])],
        )
        proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        onnx.save(proto, output_path)
        return proto, None

    monkeypatch.setattr(tf2onnx.convert, "from_function", converter)
    module = exported("onnx", 1)[0]
    with pytest.raises(
        RuntimeError, match=r"invalid model .*SegmentSum.*nothing written \(m.onnx, m.step.onnx\)"
    ):
        module.Model().export_onnx(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_missing_extra_is_named(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tf2onnx" else real(name, *a)
    )
    code = main(
        [str(ROOT / "examples" / "communication_channel.py"), "--onnx", str(tmp_path / "m.onnx")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "nengo-compile[onnx]" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_exports_all_formats(tmp_path, capsys):
    code = main(
        [
            str(ROOT / "examples" / "communication_channel.py"),
            "--saved-model",
            str(tmp_path / "sm"),
            "--tflite",
            str(tmp_path / "m.tflite"),
            "--onnx",
            str(tmp_path / "m.onnx"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["m.onnx", "m.step.onnx", "m.tflite", "sm"]
    assert (tmp_path / "sm" / "saved_model.pb").is_file()


def test_translated_nodes_export_to_every_format(tmp_path):
    """Translated node functions run in float64 in TF and in float32 in the
    portable formats (TFLite has no float64 kernels); no signature input."""
    from ai_edge_litert.interpreter import Interpreter

    _, module = compile_and_load(export_model(), tmp_path, dtype="float32")
    assert module.HOOKS == {} and "stimulus" in module.INPUTS  # feedable, not required
    model = module.Model()
    expected = model.run(N_STEPS)
    model.export_tflite(tmp_path / "m.tflite")
    runner = Interpreter(model_path=str(tmp_path / "m.tflite")).get_signature_runner("run")
    got = runner(n_steps=np.array(N_STEPS, np.int32))
    got = {name: got[f"probe_{name}"] for name in expected}
    assert_like_module(got, expected, portable=True)


def test_random_processes_refuse_portable_exports(tmp_path):
    import nengo

    with nengo.Network(seed=3) as net:
        noise = nengo.Node(nengo.processes.WhiteNoise(), size_out=1, label="noise")
        nengo.Probe(noise)
    _, module = compile_and_load(net, tmp_path, dtype="float32")
    model = module.Model()
    model.export_saved_model(tmp_path / "sm")  # TensorFlow has the generators
    for export, path in ((model.export_tflite, "m.tflite"), (model.export_onnx, "m.onnx")):
        with pytest.raises(ValueError, match="random number generation"):
            export(tmp_path / path)
        assert not (tmp_path / path).exists()


def test_export_refuses_neuron_stubs(tmp_path):
    """A neuron type without a template runs NumPy: no export can hold it."""
    import nengo

    from nengo_compile import CompileError
    from nengo_compile.export import ExportOptions, Staged, export

    class Bursty(nengo.neurons.NeuronType):
        def gain_bias(self, max_rates, intercepts):
            return nengo.LIFRate().gain_bias(max_rates, intercepts)

        def step(self, dt, J, output):
            output[...] = np.maximum(J, 0) ** 2

    with nengo.Network(seed=2) as net:
        ens = nengo.Ensemble(10, 1, neuron_type=Bursty(), label="bursty")
        nengo.Probe(ens.neurons)
    with pytest.warns(UserWarning):
        compiled = compile_network(net)
    with pytest.raises(CompileError, match="cannot export: neuron type 'Bursty'"):
        export(compiled, ExportOptions(saved_model=str(tmp_path / "sm")), Staged())
    assert list(tmp_path.iterdir()) == []


def test_translated_models_export_without_hooks(tmp_path):
    """Every function of the translation corpus exports to a SavedModel that
    runs with TensorFlow alone and gives the module's outputs."""
    import tensorflow as tf

    from .test_translate import MODELS as TRANSLATED

    for name, make in TRANSLATED.items():
        _, module = compile_and_load(make(), tmp_path / name, dtype="float64")
        assert module.HOOKS == {}
        model = module.Model(jit_compile=False)  # as the SavedModel: TensorFlow's kernels
        expected = model.run(50)
        model.export_saved_model(tmp_path / name / "sm")
        run = tf.saved_model.load(str(tmp_path / name / "sm")).signatures["run"]
        got = run(n_steps=tf.constant(50), batch_size=tf.constant(1))
        for probe, want in expected.items():  # another graph: to rounding
            assert_close_across_kernels(got[f"probe_{probe}"].numpy(), want, (name, probe))
