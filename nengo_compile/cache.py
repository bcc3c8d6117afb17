"""The compile cache: lowered programs kept under their model key.

`nengo_compile.model_key.fingerprint` keys a build; `load` returns the
entry a compile of an equal key stored (its program, plan statistics, block
layout, hooks and warnings), so that only the render runs again; `store`
keeps one.

A program refers to the build it came from (its signals, operators,
functions, Nengo objects). An entry stores those references as their
positions in the order the key met them, and `load` puts in their place the
new build's objects at the same positions.

Where the entries live: ``$NENGO_COMPILE_CACHE`` if set (``off`` turns the
cache off), else ``$XDG_CACHE_HOME/nengo-compile`` or
``~/.cache/nengo-compile``. Each entry is one file ``KEY.entry``: a header
with the format, the key and a SHA-256 of the rest. An entry that does not
match (truncated, corrupt, another format) or cannot be read back is
deleted and the model compiled again. Entries are written atomically (a
temporary file renamed), and the folder is kept under ``MAX_BYTES`` (the
least recently used go first). `clear` empties it. The entries are pickles:
like Python's own ``__pycache__``, the folder must not be writable by
anyone you do not trust; it is created readable by you alone.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import tempfile
import threading
from pathlib import Path

import numpy as np

from .model_key import Fingerprint

logger = logging.getLogger("nengo_compile")

ENV = "NENGO_COMPILE_CACHE"
FORMAT = b"nengo-compile cache 1"
MAX_BYTES = 1 << 30  # the folder's size bound
_OFF = {"off", "0", "false", "no", "none"}


def folder(setting=None) -> Path | None:
    """The cache folder for ``setting`` (`compile_network`'s ``cache``):
    None follows ``$NENGO_COMPILE_CACHE``; False (or ``"off"``) is no cache."""
    if setting is False:
        return None
    if setting is None or setting is True:
        setting = os.environ.get(ENV)
        if setting is None:
            base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
            return Path(base) / "nengo-compile"
    if str(setting).strip().lower() in _OFF or not str(setting).strip():
        return None
    return Path(setting).expanduser()


def load(fp: Fingerprint, where: Path):
    """The entry stored under ``fp.key``, with its references to the old
    build replaced by the new build's objects; None if there is none or it
    does not match (then it is deleted)."""
    path = where / f"{fp.key}.entry"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        magic, key, digest, payload = data.split(b"\n", 3)
        if magic != FORMAT or key.decode() != fp.key:
            raise ValueError("another format or key")
        if hashlib.sha256(payload).hexdigest().encode() != digest:
            raise ValueError("checksum mismatch")
        _loading.objects = fp.objects
        try:
            entry = pickle.loads(payload)
        finally:
            _loading.objects = None
    except Exception as exc:  # noqa: BLE001 - whatever is wrong, the entry is not used
        logger.warning("nengo-compile cache: entry %s is unusable (%s); compiling again", path, exc)
        _remove(path)
        return None
    try:
        os.utime(path)  # recently used
    except OSError:
        pass
    return entry


def store(fp: Fingerprint, where: Path, entry) -> bool:
    """Keep ``entry`` under ``fp.key``; False (logged) if it cannot be kept."""
    buffer = io.BytesIO()
    try:
        _pickler(buffer, fp).dump(entry)
    except Exception as exc:  # noqa: BLE001 - a program we cannot keep is just not kept
        logger.info("cache    not stored: %s", exc)
        return False
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode()
    data = b"\n".join([FORMAT, fp.key.encode(), digest, payload])
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=where)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, where / f"{fp.key}.entry")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        logger.info("cache    not stored in %s: %s", where, exc)
        return False
    _prune(where, MAX_BYTES)
    return True


def clear(where: Path | None = None) -> int:
    """Delete every entry of the cache folder (by default the one
    `folder` names); returns how many were deleted."""
    where = folder() if where is None else Path(where)
    if where is None or not where.is_dir():
        return 0
    removed = 0
    for path in where.glob("*.entry"):
        removed += _remove(path)
    return removed


def _remove(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except OSError:
        return 0


def _prune(where: Path, limit: int) -> None:
    """Delete the least recently used entries until the folder is under ``limit``."""
    entries = []
    for path in where.glob("*.entry"):
        try:
            st = path.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        total -= size * _remove(path)


def _pickler(file, fp: Fingerprint) -> pickle.Pickler:
    """A pickler that writes the build's objects (of the types the key met
    by reference: signals, operators, Nengo objects, functions) as their
    positions. A dispatch table by type keeps the rest at C speed."""
    index = fp.index
    by_value: tuple = (type(None), bool, int, float, complex, str, bytes, tuple, list, dict)
    by_value += (set, frozenset, slice, np.ndarray, np.generic, np.dtype)

    def reduce(obj):
        position = index.get(id(obj))
        if position is None:  # made after the build (by the stages): by value
            return obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
        return _ref, (position,)

    pickler = pickle.Pickler(file, protocol=pickle.HIGHEST_PROTOCOL)
    types = {type(obj) for obj in fp.objects} - set(by_value)
    pickler.dispatch_table = {t: reduce for t in types if not issubclass(t, by_value)}
    return pickler


_loading = threading.local()


def _ref(position: int):
    """The object at ``position`` of the build being loaded into."""
    objects = getattr(_loading, "objects", None)
    if objects is None or not isinstance(position, int) or not 0 <= position < len(objects):
        raise pickle.UnpicklingError(f"no object at position {position!r}")
    return objects[position]
