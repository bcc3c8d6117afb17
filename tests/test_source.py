"""Finding each function's own source: several lambdas on one line.

On Python 3.11 the first instruction of every lambda sits at column 0 of its
line, outside the lambda's own span, so columns alone do not tell lambdas
apart; `nengo_compile.translate.source` recompiles each candidate and compares
code objects. Each model here is a file run through the command line, as a
user's would be, and compared with `nengo.Simulator`.
"""

from __future__ import annotations

import ast
import linecache
import runpy
import textwrap

import numpy as np
import pytest

from nengo_compile.cli import main
from nengo_compile.translate import source
from nengo_compile.translate.expr import Untranslatable

from .conftest import import_module, max_errors, reference

N_STEPS = 300

#: every line holds several lambdas with the same arguments (lines up to 100 characters)
SHARED_LINES = """
import nengo
import numpy as np
from numpy import sin

K = 3.0


def pair(k):
    return nengo.Node(lambda t: k * t, label="k_t"), nengo.Node(lambda t: -k * t, label="mk_t")


def nodes(*functions, labels):
    return [nengo.Node(f, label=label) for f, label in zip(functions, labels)]


model = nengo.Network(seed=3)
with model:
    a = nengo.Node(lambda t: 1.0, label="one"); b = nengo.Node(lambda t: 2.0, label="two")
    c, d = nodes(lambda t: np.sin(8 * t) * K, lambda t: np.cos(8 * t) * K, labels=["sin", "cos"])
    e, f = pair(0.5)
    g = [nengo.Node(fn, label=f"imp{i}") for i, fn in enumerate([lambda t: sin(t), lambda t: -t])]
    same1 = nengo.Node(lambda t: 1.5, label="s1"); same2 = nengo.Node(lambda t: 1.5, label="s2")
    ens = nengo.Ensemble(1, 1, neuron_type=nengo.Direct(), label="ens")
    sq = nengo.Node(size_in=1, label="sq"); cu = nengo.Node(size_in=1, label="cu")
    nengo.Connection(c, ens, synapse=None)
    C = nengo.Connection
    C(ens, sq, function=lambda x: x**2); C(ens, cu, function=lambda x: -x)
    for node in [a, b, c, d, e, f, *g, same1, same2, sq, cu]:
        nengo.Probe(node, label=f"p_{node.label}")
"""


def _compile_file(tmp_path, capsys, text, *args):
    model = tmp_path / "shared_lines.py"
    model.write_text(textwrap.dedent(text))
    out = tmp_path / "shared_tf.py"
    code = main([str(model), "-o", str(out), "--dtype", "float64", "--report", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return model, out, captured


def test_each_lambda_of_a_shared_line_translates(tmp_path, capsys):
    model, out, captured = _compile_file(tmp_path, capsys, SHARED_LINES)
    assert "warning" not in captured.err, captured.err
    assert "hooks (0):" in captured.out, captured.out
    report = captured.out
    for text in [
        "lambda t: 1.0",
        "lambda t: 2.0",
        "lambda t: np.sin(8 * t) * K",
        "lambda t: np.cos(8 * t) * K",
        "lambda t: k * t",
        "lambda t: -k * t",
        "lambda t: sin(t)",
        "lambda t: -t",
        "lambda x: x**2",
        "lambda x: -x",
    ]:
        assert f": {text}\n" in report, (text, report)
    module = import_module(out)
    assert module.HOOKS == {}
    net = runpy.run_path(str(model))["model"]
    data, _ = reference(net, N_STEPS)
    outputs = module.Model(jit_compile=False).run(N_STEPS)
    errors = max_errors(net, module, outputs, data)
    assert max(errors.values()) <= 1e-9, errors
    # and directly: each node computed its own lambda
    t = (np.arange(N_STEPS) + 1) * 0.001
    got = {name: outputs[name][0, :, 0] for name in module.PROBES if name.startswith("p_")}
    np.testing.assert_allclose(got["p_one"], 1.0)
    np.testing.assert_allclose(got["p_two"], 2.0)
    np.testing.assert_allclose(got["p_mk_t"], -0.5 * t)
    np.testing.assert_allclose(got["p_imp1"], -t)


def _define(tmp_path, text, name="defs.py"):
    path = tmp_path / name
    path.write_text(text)
    return runpy.run_path(str(path)), path


def test_identical_lambdas_are_either(tmp_path):
    """Two lambdas of the same text compile to the same code: either one is its source."""
    namespace, _ = _define(tmp_path, "f = lambda t: 1.0; g = lambda t: 1.0\n")
    for fn in (namespace["f"], namespace["g"]):
        node, _ = source.find_node(fn)
        assert ast.unparse(node) == "lambda t: 1.0"


def test_columns_decide_where_recompiling_fails(tmp_path, monkeypatch):
    """Without the recompiled code, the instructions' columns (3.11+) still decide."""
    text = "f = lambda t: t + 1.0; g = lambda t: t + 2.0\n"
    namespace, _ = _define(tmp_path, text)
    monkeypatch.setattr(source, "_recompiled", lambda *args: None)
    if not source._positions(namespace["f"].__code__):
        pytest.skip("this Python records no instruction columns")
    assert ast.unparse(source.find_node(namespace["f"])[0]) == "lambda t: t + 1.0"
    assert ast.unparse(source.find_node(namespace["g"])[0]) == "lambda t: t + 2.0"


def test_indistinguishable_lambdas_say_so(tmp_path, monkeypatch):
    """Where neither code nor columns tell them apart, the reason says so."""
    namespace, _ = _define(tmp_path, "f = lambda t: t + 1.0; g = lambda t: t + 2.0\n")
    monkeypatch.setattr(source, "_recompiled", lambda *args: None)
    monkeypatch.setattr(source, "_positions", lambda code: [])
    with pytest.raises(Untranslatable, match="one of 2 lambdas on line 1 with the same arguments"):
        source.find_node(namespace["f"])


def test_changed_source_is_still_detected(tmp_path):
    """A lambda whose line no longer holds a lambda like it: not translated, and why."""
    namespace, path = _define(tmp_path, "f = lambda t: t + 1.0; g = lambda t: t + 2.0\n")
    path.write_text("f = 1\n")
    linecache.checkcache(str(path))
    with pytest.raises(Untranslatable, match="source changed"):
        source.find_node(namespace["f"])
