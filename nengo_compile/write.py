"""Stage 7, write: the module and its parameter file, atomically and as a pair.

Both files are written to hidden temporary files in the target folder
(``.NAME.*.tmp``) and renamed into place only when both are complete, so a
failure never leaves a partial output. The renames happen under an exclusive
lock on the folder (``flock`` on the folder itself where the system has it;
else a lock file ``.NAME.lock``), in a fixed order: the old module is removed,
the parameter file renamed into place, then the module. So two compiles to the
same output leave one compile's pair, and a compile killed at any point leaves
either the previous pair, no module, or the new pair: never a module beside
another compile's parameters. The parameter file is an ``.npz`` archive with
fixed timestamps, so the same model gives byte-identical files.

`check_outputs` refuses, before anything is compiled or written, outputs that
would replace the model file or a file it read while it ran, outputs that are
symbolic links, and export targets that are the wrong kind of thing.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import CompileError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_EPOCH = (1980, 1, 1, 0, 0, 0)
LOCK_TIMEOUT = 60.0  # seconds; a rename phase takes milliseconds
STALE_LOCK_AGE = 60.0  # a lock file this old was left by a killed compile


def npz_bytes(arrays: dict) -> bytes:
    """A deterministic ``.npz`` archive (sorted names, fixed timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            data = io.BytesIO()
            np.lib.format.write_array(data, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data.getvalue())
    return buffer.getvalue()


def output_paths(output: str | Path) -> tuple[Path, Path]:
    """The module path and the parameter file beside it."""
    module = Path(output)
    if module.suffix != ".py":
        raise CompileError(f"output must be a .py file (got {module})")
    if not module.stem.isidentifier():
        raise CompileError(
            f"output name {module.stem!r} is not importable: use letters, digits and _"
        )
    return module, module.with_suffix(".npz")


def onnx_paths(target: str | Path) -> list[Path]:
    """The ONNX files an ONNX export writes: ``run`` and ``step``."""
    text = str(target)
    return [Path(text), Path(text.removesuffix(".onnx") + ".step.onnx")]


def check_outputs(inputs, outputs, exports=None) -> None:
    """Refuse outputs that would destroy something, before anything is written.

    Parameters
    ----------
    inputs : sequence of paths
        The model file first, then the files it opened while it ran
        (`nengo_compile.load.Loaded.inputs`).
    outputs : sequence of paths
        The module and its parameter file (empty if no module is written).
    exports : ExportOptions, optional
        Its ``saved_model`` folder, ``tflite`` and ``onnx`` files.

    Raises
    ------
    CompileError
        If an output is (the same file as, also through ``..``, a symbolic or
        a hard link) the model file or a file it read; if an output is a
        symbolic link; if two outputs are the same file; if a ``--saved-model``
        folder holds an input or is an existing folder that is not a
        SavedModel; if a file output is an existing folder.
    """
    files = [(Path(p), "output") for p in outputs]
    folder = None
    if exports is not None:
        if exports.tflite:
            files.append((Path(exports.tflite), "--tflite"))
        if exports.onnx:
            files += [(p, "--onnx") for p in onnx_paths(exports.onnx)]
        if exports.saved_model:
            folder = Path(exports.saved_model)
    targets = files + ([(folder, "--saved-model")] if folder is not None else [])
    for path, what in targets:
        _refuse_link(path, what)
    inputs = [Path(p) for p in inputs]
    existing = {}  # (device, inode) of each input that exists -> the input
    for path in reversed(inputs):  # the model file wins
        try:
            st = os.stat(path)
        except OSError:
            continue
        existing[(st.st_dev, st.st_ino)] = path
    model = inputs[0] if inputs else None
    seen = {}
    for path, what in targets:
        try:
            st = os.stat(path)
        except OSError:  # does not exist (yet): it replaces nothing
            key: tuple = ("new", os.path.normcase(os.path.realpath(path)))
        else:
            key = (st.st_dev, st.st_ino)
            if key in existing:
                source = existing[key]
                if model is not None and source == model:
                    raise CompileError(
                        f"{what} {path} is the model file {model}: refusing to overwrite it"
                    )
                raise CompileError(
                    f"{what} {path} is {source}, which the model file read while it ran: "
                    "refusing to overwrite it"
                )
            if what != "--saved-model" and os.path.isdir(path):
                raise CompileError(f"{what} {path} is a folder, not a file")
        if key in seen:
            raise CompileError(f"{seen[key][1]} {seen[key][0]} and {what} {path} are the same file")
        seen[key] = (path, what)
    if folder is not None:
        _check_saved_model_folder(folder, inputs)


def _refuse_link(path: Path, what: str) -> None:
    if os.path.islink(path):
        raise CompileError(
            f"{what} {path} is a symbolic link (to {os.readlink(path)}): nengo-compile "
            "replaces files, not links; give the target's path or remove the link"
        )


def _check_saved_model_folder(folder: Path, inputs: list[Path]) -> None:
    real = Path(os.path.realpath(folder))
    for path in inputs:
        if Path(os.path.realpath(path)).is_relative_to(real):
            raise CompileError(
                f"--saved-model {folder} holds {path}, which the model uses: "
                "refusing to replace the folder"
            )
    if os.path.exists(folder):
        if not os.path.isdir(folder):
            raise CompileError(f"--saved-model {folder} is a file, not a folder")
        if any(folder.iterdir()) and not (folder / "saved_model.pb").exists():
            raise CompileError(
                f"--saved-model {folder} is a folder that holds no SavedModel "
                "(no saved_model.pb): refusing to replace it"
            )


def write(module_path: Path, params_path: Path, source: str, params: dict) -> bool:
    """Write both files, or neither (see the module's docstring for the order).
    Files that hold these bytes already are left as they are (and their
    times): returns whether anything was written.

    Raises
    ------
    CompileError
        If an output is a symbolic link, or the folder cannot be created or
        written (read-only, not a folder): nothing is left behind.
    """
    module_path, params_path = Path(module_path), Path(params_path)
    folder = module_path.parent
    _refuse_link(module_path, "output")
    _refuse_link(params_path, "output")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CompileError(f"cannot create output folder {folder}: {exc.strerror}") from None
    contents = [(params_path, npz_bytes(params)), (module_path, source.encode("utf-8"))]
    if all(_holds(path, data) for path, data in contents):
        return False  # checked again under the lock below, before any rename
    temps = []
    try:
        for path, data in contents:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
            temps.append(tmp)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
        with _folder_locked(folder, module_path.name):
            if all(_holds(path, data) for path, data in contents):
                return False  # both are these bytes already: left as they are (times kept)
            # No module beside parameters that are not its own, at any moment
            if os.path.lexists(module_path):
                os.unlink(module_path)
            for (path, _), tmp in zip(contents, temps):
                os.replace(tmp, path)
        return True
    except OSError as exc:
        raise CompileError(f"cannot write to folder {folder}: {exc.strerror or exc}") from None
    finally:  # whatever stopped us (an error, Ctrl-C), no temporary file stays
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a regular file holding exactly ``data``."""
    try:
        if not path.is_file() or path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


@contextmanager
def _folder_locked(folder: Path, name: str):
    """An exclusive lock on ``folder`` for the rename phase.

    On POSIX, ``flock`` on the folder itself: nothing is created, and the
    lock goes with the process if it is killed. Elsewhere (or where the file
    system refuses ``flock``), a lock file ``.NAME.lock`` created exclusively.
    The folder is synced afterwards, so the renames survive a power loss in
    their order.
    """
    fd = _flock(folder)
    if fd is None:
        with _lock_file(folder / f".{name}.lock"):
            yield
        return
    try:
        yield
        try:
            os.fsync(fd)
        except OSError:  # some file systems cannot sync a folder
            pass
    finally:
        os.close(fd)  # releases the lock


def _flock(folder: Path):
    if fcntl is None:
        return None
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        return None
    return fd


@contextmanager
def _lock_file(path: Path):
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                if time.time() - os.stat(path).st_mtime > STALE_LOCK_AGE:
                    os.unlink(path)  # left by a compile that was killed
                    continue
            except OSError:
                continue
            if time.monotonic() > deadline:
                raise CompileError(
                    f"another compile is writing beside {path.parent} "
                    f"(lock file {path}); remove it if no compile is running"
                ) from None
            time.sleep(0.01)
    os.close(fd)
    try:
        yield
    finally:
        os.unlink(path)


def import_generated(name: str, path: Path):
    """Import the generated module at ``path`` as ``name``; it stays in
    ``sys.modules`` (its classes must be importable for pickling and
    `inspect`) unless running it fails."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
