"""The compile cache: a hit gives the module a compile without the cache
gives; every change the module depends on misses; a bad entry is rebuilt."""

from __future__ import annotations

import logging
import os
import threading
import warnings

import nengo
import numpy as np
import pytest

from nengo_compile import cache, compile_network
from nengo_compile.cli import main
from nengo_compile.lower import TranslationWarning

SCALE = 2.0


def network(n=40, scale=None, label="ens", seed=3, fn=None, transform=1.0):
    """A small network with a Node function that reads a global and a closure."""
    factor = SCALE if scale is None else scale
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(fn or (lambda t: np.sin(t * factor) * SCALE))
        ens = nengo.Ensemble(n, 1, label=label)
        nengo.Connection(stim, ens, transform=transform)
        out = nengo.Node(size_in=1)
        nengo.Connection(ens, out, function=lambda x: x**2)
        nengo.Probe(out, synapse=0.01)
    return net


def compiled(net, where, **kwargs):
    return compile_network(net, cache=where, module_name="m", **kwargs)


def same(a, b):
    assert a.source == b.source
    assert sorted(a.params) == sorted(b.params)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])


def test_hit_gives_the_module_of_an_uncached_compile(tmp_path):
    first = compiled(network(), tmp_path)
    assert "plan" in first.timings and len(list(tmp_path.glob("*.entry"))) == 1
    second = compiled(network(), tmp_path)  # a new network object, equal to the first
    assert "plan" not in second.timings and "render" not in second.timings
    same(second, compiled(network(), False))
    same(second, first)
    # another module name: the program from the cache, rendered for that name
    other = compile_network(network(), cache=tmp_path, module_name="other")
    assert "plan" not in other.timings
    same(other, compile_network(network(), cache=False, module_name="other"))


def _variants():
    global SCALE
    yield "base", lambda: network()
    yield "neurons", lambda: network(n=41)
    yield "closure", lambda: network(scale=3.0)
    yield "label", lambda: network(label="other")
    yield "seed", lambda: network(seed=4)
    yield "transform", lambda: network(transform=0.5)
    yield "function", lambda: network(fn=lambda t: np.cos(t) * SCALE)
    SCALE = 5.0  # a global a function reads
    try:
        yield "global", lambda: network()
    finally:
        SCALE = 2.0


def test_every_change_misses(tmp_path):
    """Each variant compiled into one cache gives its own uncached module."""
    keys = set()
    for name, make in _variants():
        with_cache = compiled(make(), tmp_path)
        assert "plan" in with_cache.timings, f"{name}: a hit"
        same(with_cache, compiled(make(), False))
        keys |= {p.name for p in tmp_path.glob("*.entry")}
    assert len(keys) == 8
    for options in [{"dtype": "float64"}, {"dt": 0.002}, {"translate": False}]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TranslationWarning)
            assert "plan" in compiled(network(), tmp_path, **options).timings, options
            same(compiled(network(), tmp_path, **options), compiled(network(), False, **options))


def test_a_template_edit_misses(tmp_path, monkeypatch):
    """The compiler's identity covers the templates, which sit outside the
    package in a checkout: an edited template is never served from the cache."""
    import shutil

    from nengo_compile import model_key, render

    templates = tmp_path / "templates"
    shutil.copytree(render.templates_dir(), templates)
    monkeypatch.setattr(render, "templates_dir", lambda: templates)
    model_key._compiler.cache_clear()
    render.environment.cache_clear()  # a new process: both read the copy
    try:
        store = tmp_path / "cache"
        assert "plan" in compiled(network(), store).timings
        assert "plan" not in compiled(network(), store).timings  # a hit
        module = templates / "module.py.j2"
        module.write_text(module.read_text() + "# an edited template\n")
        model_key._compiler.cache_clear()  # a new process would compute it anew
        again = compiled(network(), store)
        assert "plan" in again.timings  # a miss
        assert "# an edited template" in again.source
    finally:
        monkeypatch.undo()
        model_key._compiler.cache_clear()
        render.environment.cache_clear()


@pytest.mark.parametrize(
    "damage", [lambda b: b[: len(b) // 2], lambda b: b[:-10] + b"0123456789", lambda b: b"x"]
)
def test_a_bad_entry_is_rebuilt_never_used(tmp_path, caplog, damage):
    compiled(network(), tmp_path)
    (entry,) = tmp_path.glob("*.entry")
    entry.write_bytes(damage(entry.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="nengo_compile"):
        again = compiled(network(), tmp_path)
    assert "plan" in again.timings
    assert "unusable" in caplog.text
    same(again, compiled(network(), False))
    assert "plan" not in compiled(network(), tmp_path).timings  # stored again, whole


def test_what_the_key_cannot_read_is_not_cached(tmp_path, caplog):
    lock = threading.Lock()
    with caplog.at_level(logging.INFO, logger="nengo_compile"):
        result = compiled(network(fn=lambda t: 0.0 if lock.locked() else np.sin(t)), tmp_path)
    assert "cannot key an object of type" in caplog.text
    assert not list(tmp_path.glob("*.entry"))
    assert "plan" in result.timings


def test_warnings_are_given_again_on_a_hit(tmp_path):
    def make():
        with nengo.Network(seed=1) as net:
            node = nengo.Node(lambda t: [float(len(str(t)))])  # str(): not translatable
            nengo.Probe(node)
        return net

    for _ in range(2):
        with pytest.warns(TranslationWarning, match="stays a Python hook"):
            result = compiled(make(), tmp_path)
    assert "plan" not in result.timings
    assert list(result.hook_functions) == ["node0"]


def test_simulator_hit_runs_as_nengo(tmp_path, monkeypatch, caplog):
    from nengo_compile import Simulator

    monkeypatch.setenv(cache.ENV, str(tmp_path))
    with nengo.Network(seed=2) as net:  # a hook (a Python function) among the ops
        stim = nengo.Node(lambda t: [np.sin(8 * t) if t > 0.05 else len(str(t)) * 0.0])
        ens = nengo.Ensemble(30, 1)
        nengo.Connection(stim, ens)
        probe = nengo.Probe(ens, synapse=0.01)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TranslationWarning)
        for _ in range(2):
            with caplog.at_level(logging.INFO, logger="nengo_compile"):
                caplog.clear()
                with Simulator(net, progress_bar=False) as sim:
                    sim.run(0.2)
            np.testing.assert_allclose(sim.data[probe], ref.data[probe], atol=1e-9)
    assert "cache    hit" in caplog.text


def test_clear(tmp_path):
    compiled(network(), tmp_path)
    compiled(network(n=41), tmp_path)
    assert cache.clear(tmp_path) == 2
    assert not list(tmp_path.glob("*.entry"))


def test_folder_setting(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.ENV, "off")
    assert cache.folder() is None
    monkeypatch.setenv(cache.ENV, str(tmp_path))
    assert cache.folder() == tmp_path
    assert cache.folder(False) is None
    monkeypatch.delenv(cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.folder() == tmp_path / "xdg" / "nengo-compile"


MODEL = """
import nengo, numpy as np
model = nengo.Network(seed=1)
with model:
    stim = nengo.Node(lambda t: np.sin(t))
    a = nengo.Ensemble(20, 1)
    nengo.Connection(stim, a)
    nengo.Probe(a, synapse=0.01)
"""


def test_cli_second_compile_hits_and_rewrites_nothing(tmp_path, monkeypatch, capsys, caplog):
    caplog.set_level(logging.INFO, logger="nengo_compile")
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    out = tmp_path / "model_tf.py"
    assert main([str(model), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    stamps = [os.stat(p).st_mtime_ns for p in (out, out.with_suffix(".npz"))]
    caplog.clear()
    assert main([str(model), "-o", str(out), "-v"]) == 0
    assert "unchanged" in capsys.readouterr().out and "cache    hit" in caplog.text
    assert [os.stat(p).st_mtime_ns for p in (out, out.with_suffix(".npz"))] == stamps
    # a changed model file misses, and is written
    model.write_text(MODEL.replace("np.sin(t)", "np.cos(t)"))
    caplog.clear()
    assert main([str(model), "-o", str(out), "-v"]) == 0
    assert "wrote" in capsys.readouterr().out and "cache    miss" in caplog.text
    assert "np.cos" in out.read_text() or "cos(" in out.read_text()
    # --no-cache: no key, no entry read
    caplog.clear()
    assert main([str(model), "-o", str(out), "-v", "--no-cache"]) == 0
    assert "cache " not in caplog.text and "key " not in caplog.text
