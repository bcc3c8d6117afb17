"""Stage 1, load: run a model file the way Python would and find its network."""

from __future__ import annotations

import linecache
import runpy
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import nengo

from .errors import LoadError

#: Global names that are taken to hold "the" network, in this order.
CONVENTIONAL_NAMES = ("model", "net", "network")


@dataclass(frozen=True)
class Loaded:
    """The network found in a model file."""

    network: nengo.Network
    name: str
    path: Path


def load(path: str | Path, network_name: str | None = None) -> Loaded:
    """Run ``path`` as a script (from its own folder) and pick its network.

    The network is the global named ``network_name`` if given, else the first
    of ``model``, ``net``, ``network`` that is a `nengo.Network`, else the
    only `nengo.Network` among the file's globals.

    Raises
    ------
    LoadError
        If the file does not exist, fails to run, or holds no single network.
    """
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"model file not found: {path}")
    namespace = _run_model_file(path.resolve())
    networks = {
        name: value
        for name, value in namespace.items()
        if isinstance(value, nengo.Network) and not name.startswith("__")
    }
    if network_name is not None:
        if network_name not in namespace:
            raise LoadError(
                f"{path}: no global named {network_name!r}; networks found: {_names(networks)}"
            )
        if not isinstance(namespace[network_name], nengo.Network):
            raise LoadError(
                f"{path}: {network_name!r} is a {type(namespace[network_name]).__name__},"
                f" not a nengo.Network; networks found: {_names(networks)}"
            )
        return Loaded(namespace[network_name], network_name, path)
    for name in CONVENTIONAL_NAMES:
        if isinstance(namespace.get(name), nengo.Network):
            return Loaded(namespace[name], name, path)
    if not networks:
        raise LoadError(f"{path}: no nengo.Network found among the file's globals")
    if len(networks) > 1:
        raise LoadError(
            f"{path}: several networks found ({_names(networks)}); pick one with --network NAME"
        )
    ((name, network),) = networks.items()
    return Loaded(network, name, path)


def _names(networks: dict) -> str:
    return ", ".join(sorted(networks)) or "none"


def _run_model_file(path: Path) -> dict:
    """Execute the file as ``__main__`` would be, with its folder on sys.path."""
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        return runpy.run_path(str(path), run_name="__nengo_compile_model__")
    except SystemExit as exc:
        raise LoadError(f"{path}: the model file called exit({exc.code})") from None
    except BaseException as exc:  # noqa: BLE001 - any failure is the user's error
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise LoadError(_describe_failure(path, exc)) from None
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
        linecache.checkcache(str(path))


def _describe_failure(path: Path, exc: BaseException) -> str:
    """The exception's own message, with the innermost line of the model file."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{exc.filename}:{exc.lineno}"
    else:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if Path(frame.filename).resolve() == path:
                where = f"{frame.filename}:{frame.lineno}"
                break
    message = str(exc).strip().splitlines()
    first = message[0] if message else ""
    if len(first) > 300:
        first = first[:297] + "..."
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return f"failed to load {path}" + (f" ({where})" if where else "") + f": {text}"
