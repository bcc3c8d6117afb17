"""Stage 1, load: run a model file the way Python would and find its network."""

from __future__ import annotations

import linecache
import os
import runpy
import sys
import traceback
import types
from contextlib import contextmanager
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
    #: the model file, then every file it opened while it ran (absolute paths): the
    #: outputs must not replace them (`nengo_compile.write.check_outputs`)
    inputs: tuple[Path, ...] = ()


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
    with _recording_opens() as opened:
        namespace = _run_model_file(path.resolve())
    inputs = (path.absolute(), *dict.fromkeys(Path(p) for p in opened + _module_files(namespace)))
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
        return Loaded(namespace[network_name], network_name, path, inputs)
    for name in CONVENTIONAL_NAMES:
        if isinstance(namespace.get(name), nengo.Network):
            return Loaded(namespace[name], name, path, inputs)
    if not networks:
        raise LoadError(f"{path}: no nengo.Network found among the file's globals")
    if len(networks) > 1:
        raise LoadError(
            f"{path}: several networks found ({_names(networks)}); pick one with --network NAME"
        )
    ((name, network),) = networks.items()
    return Loaded(network, name, path, inputs)


def _module_files(namespace: dict) -> list:
    """The files of the modules the model's globals come from (``import helpers``,
    ``from helpers import f``): imported before, they were not opened this time."""
    names = set()
    for value in namespace.values():
        if isinstance(value, types.ModuleType):
            names.add(value.__name__)
        else:
            module = getattr(value, "__module__", None)
            if isinstance(module, str):
                names.add(module)
    files = [getattr(sys.modules.get(name), "__file__", None) for name in sorted(names)]
    return [os.path.abspath(f) for f in files if isinstance(f, str)]


def _names(networks: dict) -> str:
    return ", ".join(sorted(networks)) or "none"


_opened: list | None = None  # where the audit hook records, while a model file runs
_hooked = False


def _audit(event: str, args: tuple) -> None:
    """Record every file opened through Python (``open``, ``os.open``, imports,
    ``np.load``, ``pickle.load`` of a path) while a model file runs."""
    if event != "open" or _opened is None or not args:
        return
    try:
        if isinstance(args[0], str | bytes | os.PathLike):
            _opened.append(os.path.abspath(os.fsdecode(args[0])))
    except Exception:  # noqa: BLE001 - an audit hook must never raise
        pass


@contextmanager
def _recording_opens():
    """The paths of the files opened while the block runs.

    An audit hook cannot be removed, so one is added on the first load and
    does nothing outside a load.
    """
    global _opened, _hooked
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked = True
    opened = []
    _opened = opened
    try:
        yield opened
    finally:
        _opened = None


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
