"""The choices a compile offers, in a module light enough for ``--help``."""

from __future__ import annotations

#: floating-point precisions of a compiled module
DTYPES = ("float32", "float64", "float16")
#: where a module's runtime lives: pasted into it (standalone), or imported
#: from an installed nengo-compile
RUNTIMES = ("paste", "import")
