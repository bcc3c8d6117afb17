"""The package as users get it: a (non-editable) wheel must ship its templates."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from .conftest import ROOT

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path = [p for p in sys.path if p not in ("", {root!r})]
    sys.path.insert(0, {target!r})
    import nengo_compile
    from nengo_compile.render import templates_dir
    assert nengo_compile.__file__.startswith({target!r}), nengo_compile.__file__
    assert str(templates_dir()).startswith({target!r}), templates_dir()
    from nengo_compile.cli import main
    sys.exit(main([{model!r}, "-o", {output!r}]))
    """
)


def test_wheel_ships_templates_and_compiles(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("nengo_compile-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    assert (target / "nengo_compile" / "templates" / "module.py.j2").is_file()
    output = tmp_path / "out" / "channel_tf.py"
    script = SCRIPT.format(
        root=str(ROOT),
        target=str(target),
        model=str(ROOT / "examples" / "communication_channel.py"),
        output=str(output),
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert output.is_file() and output.with_suffix(".npz").is_file()
