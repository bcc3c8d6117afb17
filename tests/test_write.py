"""Writing the outputs: as a pair, under concurrency, when killed, and where refused.

Two compiles to the same output leave one compile's module and parameters; a
compile killed at any point leaves the previous pair, no module, or the new
pair, never a module beside parameters that are not its own; links and
read-only folders are refused with one line, leaving nothing behind.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import nengo
import numpy as np
import pytest

from nengo_compile import CompileError, compile_network
from nengo_compile import write as write_stage
from nengo_compile.cli import main

from .conftest import ROOT, import_module

SIZES = {"a": 17, "b": 23}  # each model's ensemble size: tells the parameter files apart


def _model_file(folder, which):
    path = folder / f"model_{which}.py"
    path.write_text(
        textwrap.dedent(f"""
        import nengo
        model = nengo.Network(seed=1)
        with model:
            stim = nengo.Node(lambda t: t)
            ens = nengo.Ensemble({SIZES[which]}, 1)
            nengo.Connection(stim, ens)
            nengo.Probe(ens, label="decoded")
        """)
    )
    return path


def _pair(folder, name="out"):
    """Which model the module and the parameter file beside it come from."""
    module, params = folder / f"{name}.py", folder / f"{name}.npz"
    of_module = of_params = None
    if module.exists():
        (of_module,) = [w for w in SIZES if f"model_{w}.py" in module.read_text()]
    if params.exists():
        with np.load(params) as archive:
            dims = {d for key in archive for d in archive[key].shape}
        (of_params,) = [w for w, n in SIZES.items() if n in dims]
    return of_module, of_params


#: compiles in processes of their own: one fresh interpreter imports nengo_compile once
#: and forks one process per job, each patched to wait for a partner or to die mid-write
DRIVER = """
import contextlib, json, os, signal, sys, time, traceback
from pathlib import Path
import nengo_compile.write as w
from nengo_compile.cli import main


def job(mode, model, out, barrier, me=None, other=None, before=0, between=0):
    real_replace, real_npz, replaced = os.replace, w.npz_bytes, []
    if mode.startswith("race"):
        def npz_bytes(params):  # both compiles reach the write stage before either renames
            Path(barrier, me).touch()
            deadline = time.time() + 300
            while not Path(barrier, other).exists():
                if time.time() > deadline:
                    raise SystemExit("the other compile never came")
                time.sleep(0.005)
            return real_npz(params)

        def replace(src, dst):
            time.sleep(between if replaced else before)
            replaced.append(dst)
            real_replace(src, dst)

        w.npz_bytes = npz_bytes
        if mode == "race-unlocked":  # the control: what happens without the lock
            w._folder_locked = lambda folder, name: contextlib.nullcontext()
    else:  # kill-N: SIGKILL at the N-th rename
        def replace(src, dst):
            if len(replaced) == int(mode.split("-")[1]):
                os.kill(os.getpid(), signal.SIGKILL)
            replaced.append(dst)
            real_replace(src, dst)
    os.replace = replace
    return main([model, "-o", out, "--no-cache"])  # the cache's own renames stay out


children = {}
for i, args in enumerate(json.loads(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        try:
            code = job(*args)
        except BaseException:
            traceback.print_exc()
            code = 99
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    children[pid] = i
codes = [None] * len(children)
for _ in range(len(children)):
    pid, status = os.wait()
    codes[children[pid]] = os.waitstatus_to_exitcode(status)
print(json.dumps(codes))
"""


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    """Runs every multi-process case at once: {case: (exit status, output folder)}."""
    root = tmp_path_factory.mktemp("processes")
    models = {w: _model_file(root, w) for w in SIZES}
    jobs, cases = [], {}
    # without a lock, b renames its parameters first and its module last, a in between
    timing = {"a": (1.0, 0.0), "b": (0.0, 2.0)}
    for mode in ("race", "race-unlocked"):
        folder, barrier = root / mode / "out", root / mode / "barrier"
        barrier.mkdir(parents=True)
        for w in SIZES:
            other = "b" if w == "a" else "a"
            cases[(mode, w)] = (len(jobs), folder)
            jobs.append([mode, str(models[w]), str(folder / "out.py"), str(barrier), w, other])
            jobs[-1] += timing[w]
    # killed at the first rename of a fresh output, and between the renames over a's pair
    for n, previous in [(0, None), (1, "a")]:
        folder = root / f"kill{n}_{previous}"
        folder.mkdir()
        if previous:
            assert main([str(models[previous]), "-o", str(folder / "out.py")]) == 0
        cases[(f"kill-{n}", previous)] = (len(jobs), folder)
        jobs.append([f"kill-{n}", str(models["b"]), str(folder / "out.py"), "-"])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(jobs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    codes = json.loads(result.stdout.strip().splitlines()[-1])
    return {case: (codes[i], folder) for case, (i, folder) in cases.items()}, result.stderr


def test_two_compiles_to_one_output_leave_one_pair(processes):
    """Two processes compile different models to one output at once: one complete pair.

    The control runs the same race with the lock taken out: it mixes the pair up,
    so the race is real and the lock is what keeps the pair together.
    """
    runs, err = processes
    for mode in ("race", "race-unlocked"):
        for w in SIZES:
            assert runs[(mode, w)][0] == 0, err
    folder = runs[("race", "a")][1]
    of_module, of_params = _pair(folder)
    assert of_module is not None and of_module == of_params
    assert sorted(p.name for p in folder.iterdir()) == ["out.npz", "out.py"]  # no temporaries
    module = import_module(folder / "out.py")
    assert module.Model().run(5)["decoded"].shape == (1, 5, 1)  # it loads its own parameters
    assert _pair(runs[("race-unlocked", "a")][1]) == ("b", "a")


def test_killed_compile_never_leaves_a_mixed_pair(processes):
    """SIGKILL in the rename phase: no module beside another compile's parameters."""
    runs, err = processes
    for (n, previous), expected in {("kill-0", None): None, ("kill-1", "a"): "b"}.items():
        code, folder = runs[(n, previous)]
        assert code == -9, err
        # the old module went first: killed in the rename phase, no module is left
        assert _pair(folder) == (None, expected), (n, previous)
        visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        assert visible == ([] if expected is None else ["out.npz"])
        hidden = [p.name for p in folder.iterdir() if p.name.startswith(".")]
        assert all(name.startswith(".out.") and name.endswith(".tmp") for name in hidden)


def _compiled(size=5):
    with nengo.Network(seed=1) as net:
        ens = nengo.Ensemble(size, 1)
        nengo.Probe(ens)
    return compile_network(net, module_name="out")


@pytest.mark.notf
def test_interrupted_write_keeps_the_previous_pair(tmp_path, monkeypatch):
    """Stopped while writing its temporary files: the old pair stays, nothing else."""
    out = tmp_path / "out.py"
    first = _compiled(5)
    write_stage.write(out, out.with_suffix(".npz"), first.source, first.params)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(write_stage.os, "fsync", interrupted)
    second = _compiled(7)
    with pytest.raises(KeyboardInterrupt):
        write_stage.write(out, out.with_suffix(".npz"), second.source, second.params)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.notf
def test_symlinked_output_is_refused(tmp_path):
    """An output that is a symbolic link is refused; the link and its target stay."""
    target = tmp_path / "elsewhere.py"
    target.write_text("mine\n")
    (tmp_path / "out.py").symlink_to(target)
    compiled = _compiled()
    with pytest.raises(CompileError, match="out.py is a symbolic link"):
        write_stage.write(tmp_path / "out.py", tmp_path / "out.npz", compiled.source, {})
    assert (tmp_path / "out.py").is_symlink() and target.read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.py", "out.py"]


def _read_only_model(tmp_path):
    model = _model_file(tmp_path, "a")
    folder = tmp_path / "locked"
    folder.mkdir()
    return model, folder


@pytest.mark.notf
def test_read_only_folder_is_refused(tmp_path, capsys):
    """A folder we may not write to: one line naming it, exit status 2, nothing left."""
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only folders (the simulated test covers this)")
    model, folder = _read_only_model(tmp_path)
    folder.chmod(0o555)
    try:
        code = main([str(model), "-o", str(folder / "out.py")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1
        assert f"cannot write to folder {folder}: Permission denied" in err
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.notf
def test_read_only_folder_is_refused_simulated(tmp_path, capsys, monkeypatch):
    """The same where the system denies the first file (as for root, who may write anywhere)."""
    model, folder = _read_only_model(tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    code = main([str(model), "-o", str(folder / "out.py")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"cannot write to folder {folder}: Permission denied" in err
    assert list(folder.iterdir()) == []


@pytest.mark.notf
def test_failed_rename_leaves_no_temporaries(tmp_path, monkeypatch):
    """A rename the system refuses: a one-line error, no temporary files, no mixed pair."""
    out = tmp_path / "out.py"
    first = _compiled(5)
    write_stage.write(out, out.with_suffix(".npz"), first.source, first.params)
    real = os.replace

    def fails_second(src, dst, calls=[]):  # noqa: B006 - counts the calls
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(write_stage.os, "replace", fails_second)
    second = _compiled(7)
    with pytest.raises(CompileError, match="cannot write to folder .*: Input/output error"):
        write_stage.write(out, out.with_suffix(".npz"), second.source, second.params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]  # the module went first


@pytest.mark.notf
def test_lock_file_fallback(tmp_path, monkeypatch):
    """Without flock: an exclusive lock file, removed after; a stale one is taken over."""
    monkeypatch.setattr(write_stage, "fcntl", None)
    out = tmp_path / "out.py"
    compiled = _compiled()
    write_stage.write(out, out.with_suffix(".npz"), compiled.source, compiled.params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "out.py"]
    lock = tmp_path / ".out.py.lock"
    lock.touch()  # held by a running compile: we wait, then give up with a message
    monkeypatch.setattr(write_stage, "LOCK_TIMEOUT", 0.2)
    compiled = _compiled(6)  # other bytes (the same bytes are left as they are)
    with pytest.raises(CompileError, match="another compile is writing"):
        write_stage.write(out, out.with_suffix(".npz"), compiled.source, compiled.params)
    old = time.time() - 2 * write_stage.STALE_LOCK_AGE  # left by a killed compile
    os.utime(lock, (old, old))
    write_stage.write(out, out.with_suffix(".npz"), compiled.source, compiled.params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "out.py"]


@pytest.mark.notf
def test_unchanged_outputs_are_not_rewritten(tmp_path):
    """A second compile of an unchanged model leaves byte-identical outputs as
    they are (same inode and modification time); a changed one replaces both."""
    out = tmp_path / "out.py"
    compiled = _compiled(5)
    write_stage.write(out, out.with_suffix(".npz"), compiled.source, compiled.params)
    before = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in (out, out.with_suffix(".npz"))]
    time.sleep(0.01)
    again = _compiled(5)
    write_stage.write(out, out.with_suffix(".npz"), again.source, again.params)
    after = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in (out, out.with_suffix(".npz"))]
    assert after == before
    changed = _compiled(6)
    write_stage.write(out, out.with_suffix(".npz"), changed.source, changed.params)
    assert out.read_text() == changed.source
    assert [p.stat().st_ino for p in (out, out.with_suffix(".npz"))] != [b[0] for b in before]
