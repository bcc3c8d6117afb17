"""Stage 8 (optional), export: SavedModel, TFLite and ONNX artifacts.

The generated module exports itself (``Model.export_saved_model`` and
friends); this stage imports it from a temporary folder and asks it to. All
artifacts are written to temporary paths beside their targets and renamed
into place only when every export has succeeded, so a failure leaves nothing
behind.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import ir
from .errors import CompileError
from .write import import_generated, write


@dataclass(frozen=True)
class ExportOptions:
    saved_model: str | None = None
    tflite: str | None = None
    onnx: str | None = None
    jit_compile: bool = False
    batch_size: int = 1  # TFLite's static batch

    @property
    def any(self) -> bool:
        return bool(self.saved_model or self.tflite or self.onnx)


def check_exportable(program: ir.Program) -> None:
    """Refuse, before anything is written, models that keep Python in the loop."""
    blocking = [
        f"node {h.label!r} ({h.source}): a Python function of its input; "
        "make it translatable or compute it outside the model"
        for h in program.hooks
        if h.size_out and not h.is_input
    ]
    blocking += [
        f"neuron type {name!r} ({where}): a NumPy stub; give it a template"
        for name, where in sorted({(s.type_name, s.source) for s in program.stubs})
    ]
    if blocking:
        raise CompileError("cannot export: " + "; ".join(blocking))


def _require(module: str, extra: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise CompileError(f"{what} needs {module}: pip install 'nengo-compile[{extra}]'")


class Staged:
    """Temporary outputs beside their targets, committed together."""

    def __init__(self):
        self.pending = []  # (temporary folder, [(temporary path, target)])

    def path(self, target) -> Path:
        target = Path(target).absolute()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".nengo-compile-", dir=target.parent))
        except OSError as exc:
            raise CompileError(f"cannot write {target}: {exc.strerror}") from None
        self.pending.append((tmp, target))
        return tmp / target.name

    def commit(self) -> None:
        for tmp, target in self.pending:
            for item in sorted(tmp.iterdir()):
                final = target.parent / item.name
                if item.is_dir() and final.is_dir():
                    shutil.rmtree(final)
                os.replace(item, final)
        self.discard()

    def discard(self) -> None:
        for tmp, _ in self.pending:
            shutil.rmtree(tmp, ignore_errors=True)
        self.pending = []


def export(compiled, options: ExportOptions, staged: Staged) -> None:
    """Export ``compiled`` as asked, into ``staged`` temporary paths."""
    check_exportable(compiled.program)
    _require("tensorflow", "tensorflow", "export")
    if options.onnx:
        _require("tf2onnx", "onnx", "ONNX export")
    if options.tflite and compiled.program.dtype != "float32":
        raise CompileError("TFLite export needs --dtype float32")
    if options.batch_size < 1:
        raise CompileError(f"--batch-size must be at least 1 (got {options.batch_size})")

    with tempfile.TemporaryDirectory(prefix="nengo-compile-") as folder:
        name = f"_nengo_compile_export_{os.getpid()}_{id(compiled)}"
        path = Path(folder) / f"{name}.py"
        write(path, path.with_suffix(".npz"), compiled.source, compiled.params)
        module = import_generated(name, path)
        try:
            model = module.Model(params_file=str(path.with_suffix(".npz")))
            if options.saved_model:
                model.export_saved_model(staged.path(options.saved_model), options.jit_compile)
            if options.tflite:
                model.export_tflite(staged.path(options.tflite), options.batch_size)
            if options.onnx:
                model.export_onnx(staged.path(options.onnx))
        except CompileError:
            raise
        except Exception as exc:  # noqa: BLE001 - a converter failed: say which
            raise CompileError(f"export failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.modules.pop(name, None)
