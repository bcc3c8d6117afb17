"""Stage 7, write: the module and its parameter file, atomically.

Both files are written to temporary files in the target folder and renamed
into place only when both are complete, so a failure never leaves a partial
output. The parameter file is an ``.npz`` archive with fixed timestamps, so
the same model gives byte-identical files.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import CompileError

_EPOCH = (1980, 1, 1, 0, 0, 0)


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


def write(module_path: Path, params_path: Path, source: str, params: dict) -> None:
    """Write both files, or neither."""
    folder = module_path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CompileError(f"cannot create output folder {folder}: {exc.strerror}") from None
    contents = [(module_path, source.encode("utf-8")), (params_path, npz_bytes(params))]
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
        for (path, _), tmp in zip(contents, temps):
            os.replace(tmp, path)
    except OSError as exc:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise CompileError(f"cannot write {folder}: {exc.strerror or exc}") from None
