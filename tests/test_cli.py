"""The command line: options, messages and bad input."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nengo_compile.cli import main

from .conftest import ROOT, import_module

GOOD = """
import nengo
model = nengo.Network(seed=1)
with model:
    a = nengo.Ensemble(10, 1)
    nengo.Probe(a)
"""


#: a custom neuron type with a random generator in its state (not compilable)
RNG_NEURON_TYPE = """
class Custom(nengo.RectifiedLinear):
    def make_state(self, n_neurons, rng=None, dtype=None):
        return {"rng": rng}

    def rates(self, x, gain, bias):
        return nengo.RectifiedLinear().rates(x, gain, bias)

    def step(self, dt, J, output, rng):
        output[...] = rng.poisson(J.clip(0, None) * dt) / dt
"""


def write_model(folder, text, name="model.py"):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.notf
def test_help_documents_every_option():
    result = subprocess.run(
        [sys.executable, "-m", "nengo_compile", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for option in ("--output", "--network", "--dt", "--seed", "--dtype", "--report", "-v"):
        assert option in result.stdout


def test_compiles_example_with_report(tmp_path, capsys):
    out = tmp_path / "channel_tf.py"
    code, stdout, _ = run_cli(
        capsys, ROOT / "examples" / "communication_channel.py", "-o", out, "--report"
    )
    assert code == 0
    assert out.exists() and out.with_suffix(".npz").exists()
    assert "merged groups" in stdout and "stimulus" in stdout
    module = import_module(out)
    assert set(module.PROBES) == {"a", "b", "b_spikes"}


@pytest.mark.notf
def test_no_network(tmp_path, capsys):
    model = write_model(tmp_path, "x = 1\n")
    code, _, err = run_cli(capsys, model, "-o", tmp_path / "out.py")
    assert code == 2
    assert "no nengo.Network found" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("out*"))


@pytest.mark.notf
def test_several_networks_need_a_name(tmp_path, capsys):
    text = "import nengo\nfirst = nengo.Network()\nsecond = nengo.Network()\n"
    model = write_model(tmp_path, text)
    code, _, err = run_cli(capsys, model, "-o", tmp_path / "out.py")
    assert code == 2 and "first, second" in err and "--network" in err
    code, _, err = run_cli(capsys, model, "-o", tmp_path / "out.py", "--network", "third")
    assert code == 2 and "third" in err and "first, second" in err
    code, _, err = run_cli(capsys, model, "-o", tmp_path / "out.py", "--network", "second")
    assert code == 0, err


@pytest.mark.notf
@pytest.mark.parametrize(
    "text, expected",
    [
        ("import nengo\nmodel = nengo.Network(\n", "SyntaxError"),
        ("import nengo\n\nmodel = nengo.Network()\n1 / 0\n", "ZeroDivisionError"),
        ("import not_a_module_anywhere\n", "ModuleNotFoundError"),
    ],
)
def test_broken_model_file(tmp_path, capsys, text, expected):
    model = write_model(tmp_path, text)
    code, _, err = run_cli(capsys, model, "-o", tmp_path / "out.py")
    assert code == 2
    assert expected in err and f"{model}:" in err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("out*"))


@pytest.mark.notf
def test_missing_model_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, tmp_path / "nope.py", "-o", tmp_path / "out.py")
    assert code == 2 and "not found" in err


def test_model_file_runs_from_its_own_folder(tmp_path, capsys):
    """Like `python model.py`: sibling modules import, __main__ blocks do not run."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "helpers.py").write_text("N_NEURONS = 17\n")
    write_model(
        folder,
        GOOD.replace("Ensemble(10", "Ensemble(helpers.N_NEURONS").replace(
            "import nengo", "import nengo\nimport helpers"
        )
        + "\nif __name__ == '__main__':\n    raise SystemExit('main block ran')\n",
    )
    code, _, err = run_cli(capsys, folder / "model.py", "-o", tmp_path / "m_tf.py")
    assert code == 0, err
    assert "17" in (tmp_path / "m_tf.py").read_text()


@pytest.mark.notf
def test_unwritable_output_leaves_nothing(tmp_path, capsys):
    model = write_model(tmp_path, GOOD)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(capsys, model, "-o", blocker / "out.py")
    assert code == 2 and "cannot" in err
    code, _, err = run_cli(capsys, model, "-o", tmp_path / "out.txt")
    assert code == 2 and ".py" in err
    code, _, err = run_cli(capsys, model, "-o", tmp_path / "not-importable.py")
    assert code == 2 and "importable" in err


@pytest.mark.notf
def test_failure_keeps_existing_outputs(tmp_path, capsys):
    """A failed compile never overwrites or half-writes previous outputs."""
    out = tmp_path / "out.py"
    out.write_text("previous module\n")
    out.with_suffix(".npz").write_bytes(b"previous params")
    # a neuron type that keeps a random generator in its state cannot be compiled
    text = GOOD.replace("nengo.Ensemble(10, 1)", "nengo.Ensemble(10, 1, neuron_type=Custom())")
    text = text.replace("import nengo", "import nengo\n" + RNG_NEURON_TYPE)
    model = write_model(tmp_path, text)
    code, _, err = run_cli(capsys, model, "-o", out)
    assert code == 2 and "Custom" in err and "non-array state" in err
    assert out.read_text() == "previous module\n"
    assert out.with_suffix(".npz").read_bytes() == b"previous params"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py", "out.npz", "out.py"]


HOSTILE = [
    'quote"s',
    "single'quote",
    "new\nline",
    '"""; import os; os.system("touch PWNED") #',
    "'''\nimport os\n'''",
    "\\ back\\slash \x00 nul \u2028 sep",
    "{{ jinja }} {% raw %}",
]


def test_hostile_labels_are_data(tmp_path, capsys, monkeypatch):
    """Labels with quotes, newlines and code reach the module only as data."""
    monkeypatch.chdir(tmp_path)
    lines = ["import nengo", "model = nengo.Network(seed=2, label=LABELS[0])", "with model:"]
    lines.append("    stim = nengo.Node(lambda t: t, label=LABELS[1])")
    for i in range(len(HOSTILE)):
        lines.append(f"    e{i} = nengo.Ensemble(5, 1, label=LABELS[{i}])")
        lines.append(f"    nengo.Connection(stim, e{i})")
        lines.append(f"    nengo.Probe(e{i}, label=LABELS[{i}])")
    text = f"LABELS = {HOSTILE!r}\n" + "\n".join(lines) + "\n"
    model = write_model(tmp_path, text)
    out = tmp_path / "hostile_tf.py"
    code, _, err = run_cli(capsys, model, "-o", out, "--no-translate")  # keep the hook
    assert code == 0, err
    source = out.read_text()
    compile(source, str(out), "exec")
    module = import_module(out)
    assert [label for label, _ in module.PROBE_SOURCES.values()] == HOSTILE
    assert [label for label, *_ in module.HOOKS.values()] == [HOSTILE[1]]
    assert not (tmp_path / "PWNED").exists()
    imports = {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imports == {
        "annotations",  # from __future__
        "ClassVar",  # from typing
        "Callable",  # from collections.abc
        "Mapping",  # from collections.abc
        "concurrent.futures",
        "contextlib",
        "hashlib",
        "inspect",
        "os",
        "shutil",
        "tempfile",
        "numpy",
        "tensorflow",
        "keras",  # by keras_layer() only (it comes with TensorFlow)
        "context",  # from tensorflow.python.eager, for short graph calls (graphs._caller)
        "execute",
        "tf2onnx",
        "onnx",  # by export_onnx only, to check what tf2onnx wrote (it comes with tf2onnx)
    }


def _snapshot(folder):
    """Every file under ``folder`` (links as links) with its bytes."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            files[str(path.relative_to(folder))] = ("link", str(path.readlink()))
        elif path.is_file():
            files[str(path.relative_to(folder))] = path.read_bytes()
    return files


def _refused(capsys, model, *args, expected):
    """The command refuses with one line naming the problem and writes nothing."""
    folder = model.parent
    before = _snapshot(folder)
    code, out, err = run_cli(capsys, model, *args)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and expected in err, err
    assert "Traceback" not in err and "wrote" not in out
    assert _snapshot(folder) == before  # the model file unchanged, nothing written
    return err


@pytest.mark.notf
@pytest.mark.parametrize(
    "output",
    ["model.py", "sub/../model.py", "{folder}/model.py", "hard.py", "tflite", "onnx", "onnx_step"],
)
def test_outputs_never_replace_the_model_file(tmp_path, capsys, monkeypatch, output):
    """Directly, through `..`, by absolute path or a hard link: refused, exit status 2."""
    monkeypatch.chdir(tmp_path)
    model = write_model(tmp_path, GOOD)
    (tmp_path / "sub").mkdir()
    os.link(model, tmp_path / "hard.py")
    if output == "tflite":
        args = ["--tflite", "model.py"]
    elif output == "onnx":
        args = ["--onnx", "model.py"]
    elif output == "onnx_step":  # the step model of --onnx model.onnx
        model = write_model(tmp_path, GOOD, name="model.step.onnx")
        args = ["--onnx", "model.onnx"]
    else:
        args = ["-o", output.format(folder=tmp_path)]
    err = _refused(capsys, model, *args, expected="refusing to overwrite it")
    assert f"is the model file {model}" in err


@pytest.mark.notf
def test_output_that_links_to_the_model_file_is_refused(tmp_path, capsys):
    """A symbolic link as output is refused (whatever it points to), and stays a link."""
    model = write_model(tmp_path, GOOD)
    (tmp_path / "link.py").symlink_to(model)
    _refused(capsys, model, "-o", tmp_path / "link.py", expected="is a symbolic link (to ")
    (tmp_path / "params.npz").symlink_to(model)  # the parameter file may not be one either
    _refused(capsys, model, "-o", tmp_path / "params.py", expected="params.npz is a symbolic")
    (tmp_path / "dangling.py").symlink_to(tmp_path / "nowhere.py")
    _refused(capsys, model, "-o", tmp_path / "dangling.py", expected="is a symbolic link")


@pytest.mark.notf
def test_outputs_never_replace_files_the_model_read(tmp_path, capsys):
    """Files the model file opened while it ran (np.load, imports) are inputs too."""
    np.savez(tmp_path / "weights.npz", w=np.ones(3))
    (tmp_path / "gains.py").write_text("GAIN = 2.0\n")
    text = GOOD.replace(
        "import nengo",
        "import nengo\nimport numpy as np\nimport gains\nW = np.load('weights.npz')['w']",
    )
    model = write_model(tmp_path, text)
    old = os.getcwd()
    os.chdir(tmp_path)  # the model opens weights.npz relative to where it runs
    try:
        err = _refused(capsys, model, "-o", "weights.py", expected="which the model file read")
        assert "weights.npz" in err
        _refused(capsys, model, "-o", "gains.py", expected="which the model file read")
        code, _, err = run_cli(capsys, model, "-o", "fine.py")
        assert code == 0, err
    finally:
        os.chdir(old)


@pytest.mark.notf
def test_saved_model_folder_that_would_replace_inputs_is_refused(tmp_path, capsys, monkeypatch):
    """A SavedModel replaces its folder: never one holding the model, never a non-SavedModel."""
    monkeypatch.chdir(tmp_path)
    model = write_model(tmp_path, GOOD)
    _refused(capsys, model, "--saved-model", ".", expected="holds")
    _refused(capsys, model, "--saved-model", tmp_path, expected="holds")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine")
    _refused(capsys, model, "--saved-model", "docs", expected="holds no SavedModel")
    _refused(capsys, model, "--tflite", "docs", expected="is a folder, not a file")


@pytest.mark.notf
def test_two_outputs_naming_one_file_are_refused(tmp_path, capsys):
    model = write_model(tmp_path, GOOD)
    _refused(capsys, model, "-o", tmp_path / "m.py", "--onnx", tmp_path / "m.npz", expected="same")
