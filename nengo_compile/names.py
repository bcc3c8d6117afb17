"""Deterministic, valid, unique Python identifiers built from user labels.

Labels are data: they reach generated code only through `identifier` (for
names) or as escaped string literals (see `nengo_compile.render`).
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata

_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))


def identifier(text: str, fallback: str = "x") -> str:
    """A valid, lower-case ASCII identifier resembling ``text``."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    text = re.sub(r"_+", "_", text)[:40].strip("_")
    if not text:
        text = fallback
    if text[0].isdigit():
        text = f"{fallback}_{text}"
    return text


class Namespace:
    """Hands out unique identifiers; a clash gets a numeric suffix."""

    def __init__(self, reserved=()):
        self._used = set(_RESERVED) | set(reserved)

    def name(self, text: str, fallback: str = "x") -> str:
        base = identifier(text, fallback)
        if base in _RESERVED:
            base = f"{base}_"
        name, n = base, 1
        while name in self._used:
            name = f"{base}_{n}"
            n += 1
        self._used.add(name)
        return name
