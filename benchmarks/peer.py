"""The NengoDL peer: its venv, its environment and the workers that run in it.

Shared by ``benchmarks/run.py`` (inference) and ``benchmarks/training.py``
(``sim.fit``). NengoDL 3.6 runs in its own venv (``/work/peer-venv`` by
default, built by ``../shared/peers/nengodl/README.md``) with the import shim
of that folder on ``PYTHONPATH`` and ``TF_USE_LEGACY_KERAS=1``; each
measurement is a subprocess of the calling script (``--worker ...``) that
prints one ``RESULT {json}`` line. NengoDL is under a non-commercial licence:
these scripts only run it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the shim (a ``sitecustomize`` module mapping Keras 2 paths onto tf_keras)
PEER_SHIM = ROOT.parent / "shared" / "peers" / "nengodl"
DEFAULT_PEER_PYTHON = "/work/peer-venv/bin/python"
RESULT = "RESULT "


def peer_missing(python: str) -> str | None:
    """Why the peer cannot run (a message), or None where it can."""
    if not Path(python).exists():
        return f"no peer Python at {python} (build it by {PEER_SHIM / 'README.md'})"
    if not (PEER_SHIM / "sitecustomize.py").exists():
        return f"no NengoDL shim at {PEER_SHIM}"
    return None


def peer_env(onednn: str = "0") -> dict[str, str]:
    """The environment of a NengoDL worker; ``onednn``: ``TF_ENABLE_ONEDNN_OPTS``
    (``"0"``, its faster setting on these machines; ``"default"``: left as the
    environment has it)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.update(PYTHONPATH=str(PEER_SHIM), TF_USE_LEGACY_KERAS="1")
    if onednn != "default":
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    return env


def spawn_worker(
    python: str, script: Path | str, arguments: list[str], env, label: str, timeout=None
) -> dict:
    """Run ``python script *arguments`` and return its ``RESULT`` line's value
    (``subprocess.TimeoutExpired`` after ``timeout`` seconds: the worker is killed)."""
    done = subprocess.run(
        [python, str(script), *arguments], env=env, capture_output=True, text=True, timeout=timeout
    )
    for line in done.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    raise RuntimeError(f"{label} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def report(result) -> None:
    """A worker's answer to ``spawn_worker``."""
    print(RESULT + json.dumps(result), flush=True)
