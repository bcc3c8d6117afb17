"""nengo-spa models deploy: their Transcode inputs translate, the compiled module
runs without Nengo or nengo-spa, and matches nengo.Simulator on the same seed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import nengo
import numpy as np
import pytest

spa = pytest.importorskip("nengo_spa")

from nengo_compile import Simulator, compile_network  # noqa: E402
from nengo_compile.lower import TranslationWarning  # noqa: E402

from .conftest import ROOT, compile_to, reference  # noqa: E402
from .spa_models import CORPUS, vocabulary  # noqa: E402

N_STEPS = 200  # 0.2 s: every branch of the inputs on t is taken
ATOL = 1e-9  # float64: the same arithmetic as Nengo's, up to summation order

#: runs a generated module with Nengo, nengo-spa and nengo-compile unimportable
RUN_BLOCKED = textwrap.dedent(
    """
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("nengo", "nengo_spa", "nengo_compile", "scipy"):
                raise ImportError(name + " is blocked in this test")

    sys.meta_path.insert(0, Blocker())
    sys.path = [p for p in sys.path if p not in ("", {root!r})]
    sys.path.insert(0, {folder!r})
    import numpy as np
    import {module} as compiled

    assert compiled.HOOKS == {{}}, compiled.HOOKS
    outputs = compiled.Model(jit_compile=False).run({n_steps})  # a short run
    assert not any(m.split(".")[0] in ("nengo", "nengo_spa") for m in sys.modules)
    np.savez({out!r}, **outputs)
    """
)


def _compile(net, tmp_path, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TranslationWarning)  # every Transcode translates
        compiled, path = compile_to(net, tmp_path, name=name, dtype="float64")
    assert [h.name for h in compiled.program.hooks if not h.translated] == []
    return compiled, path


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_compiled_runs_without_nengo_and_matches(name, tmp_path):
    net = CORPUS[name]()
    _, path = _compile(net, tmp_path, f"{name}_tf")
    out = tmp_path / "outputs.npz"
    script = RUN_BLOCKED.format(
        root=str(ROOT), folder=str(tmp_path), module=path.stem, n_steps=N_STEPS, out=str(out)
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data, _ = reference(net, N_STEPS)
    outputs = np.load(out)
    labels = [p.label for p in net.all_probes]
    assert sorted(outputs.files) == sorted(labels)
    for label, ref in zip(labels, data):
        got = outputs[label][0]
        assert got.shape == ref.shape, label
        assert np.max(np.abs(ref)) > 0.05, f"{label} stays near zero: a weak test"
        np.testing.assert_allclose(got, ref, rtol=0, atol=ATOL, err_msg=label)


@pytest.mark.parametrize("name", ["action_selection", "transcode_forms"])
def test_simulator_runs_spa_models_as_nengo(name):
    net = CORPUS[name]()
    data, _ = reference(net, N_STEPS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TranslationWarning)
        with Simulator(net, dtype="float64", progress_bar=False) as sim:
            sim.run_steps(N_STEPS)
            for probe, ref in zip(net.all_probes, data):
                np.testing.assert_allclose(sim.data[probe], ref, atol=ATOL, err_msg=probe.label)


def _reasons(net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TranslationWarning)
        compiled = compile_network(net, dtype="float64")
    return {h.name: h.reason for h in compiled.program.hooks if not h.translated}


def test_untranslatable_transcodes_say_why():
    vocab = vocabulary()
    loose = vocabulary(strict=False)
    with spa.Network(seed=15) as net:
        forms = {
            "two_inputs": spa.Transcode(lambda t, p: p * p, input_vocab=vocab, output_vocab=vocab),
            "new_name": spa.Transcode(lambda t: "A" if t < 0.1 else "NEW", output_vocab=loose),
            "missing": spa.Transcode(lambda t: "A" if t < 0.1 else "MISSING", output_vocab=vocab),
            "repeat": spa.Transcode(lambda t: "A" if t < 0.1 else "B" * 2, output_vocab=vocab),
            "method": spa.Transcode(
                lambda t, p: p.translate(loose), input_vocab=vocab, output_vocab=loose
            ),
        }
        for label, node in forms.items():
            node.node.label = label
            nengo.Probe(node.output)
    reasons = _reasons(net)
    assert sorted(reasons) == sorted(forms)
    assert "binding two Semantic Pointers computed from the input" in reasons["two_inputs"]
    assert "not yet in the non-strict vocabulary" in reasons["new_name"]
    assert "NEW" not in loose  # compiling added nothing to the vocabulary
    assert "parsing 'MISSING'" in reasons["missing"]
    assert "the Semantic Pointer attribute .translate" in reasons["method"]
    assert "string arithmetic other than concatenating" in reasons["repeat"]
    for reason in reasons.values():
        assert "test_spa.py:" in reason, reason
