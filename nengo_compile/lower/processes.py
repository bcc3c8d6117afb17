"""Where `ProcessStep` was: it now lives with its op kind,
`nengo_compile.kinds.process`. Kept for `nengo_compile.simulator`'s import."""

from ..kinds.process import ProcessStep

__all__ = ["ProcessStep"]
