"""The ``nengo-compile`` command."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

from . import __version__
from .errors import CompileError
from .options import DTYPES, RUNTIMES

# the compiler (Nengo) and TensorFlow are imported in main, after the arguments
# are parsed: --help and argument errors answer at once

EXIT_ERROR = 2  # the user's input is at fault
EXIT_INTERNAL = 3  # a bug in nengo-compile


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nengo-compile",
        description=(
            "Compile a Nengo model file into a standalone TensorFlow module "
            "(MODULE.py plus its parameter file MODULE.npz) that needs no Nengo to run."
        ),
        epilog="Exit status: 0 on success, 2 for a problem with the input, 3 for a bug.",
    )
    p.add_argument("model", help="Python file that builds a nengo.Network")
    p.add_argument(
        "-o",
        "--output",
        help="module to write (default: MODEL_tf.py in the current folder); "
        "the parameter file goes beside it with the suffix .npz; neither may be the "
        "model file, a file it reads, or a symbolic link",
    )
    p.add_argument(
        "--network",
        metavar="NAME",
        help="global name of the network to compile (default: 'model', 'net' or "
        "'network', else the only nengo.Network in the file)",
    )
    p.add_argument("--dt", type=float, default=0.001, help="time step in seconds (default 0.001)")
    p.add_argument(
        "--seed",
        type=int,
        help="compile as if the network's seed were N (default: the network's own "
        "seed; an unseeded network gets a random one, recorded in the module)",
    )
    p.add_argument(
        "--dtype",
        choices=DTYPES,
        default="float32",
        help="floating-point precision of the module (default float32)",
    )
    p.add_argument(
        "--no-translate",
        dest="translate",
        action="store_false",
        help="keep every Node and connection function a Python hook (do not translate "
        "them to TensorFlow); for debugging",
    )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="paste",
        help="'paste' (default): copy the runtime into the module, which then needs only "
        "TensorFlow and NumPy; 'import': import it from this nengo-compile installation",
    )
    p.add_argument(
        "--trainable",
        action="store_true",
        help="make the module trainable: encoders, biases and connection weights become "
        "trainable variables (see the README's Training section)",
    )
    p.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="compile every stage again: neither read nor fill the compile cache "
        "($NENGO_COMPILE_CACHE, by default ~/.cache/nengo-compile; see the README)",
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="print plan statistics, translated functions, hooks and neuron stubs",
    )
    export = p.add_argument_group(
        "export", "artifacts that run without Nengo or the generated module"
    )
    export.add_argument("--saved-model", metavar="DIR", help="write a TensorFlow SavedModel")
    export.add_argument(
        "--tflite", metavar="FILE", help="write a TFLite (LiteRT) model (float32, static batch)"
    )
    export.add_argument(
        "--onnx",
        metavar="FILE",
        help="write an ONNX model of run (and FILE.step.onnx of step); needs [onnx]",
    )
    export.add_argument("--jit", action="store_true", help="compile the SavedModel with XLA")
    export.add_argument(
        "--batch-size", type=int, default=1, help="batch size of the TFLite model (default 1)"
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log each stage and its time, and show TensorFlow's own log lines",
    )
    p.add_argument("--version", action="version", version=f"nengo-compile {__version__}")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if not args.verbose:  # exports import TensorFlow: keep its C++ log lines off the terminal
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="nengo-compile: %(message)s",
    )
    from .export import ExportOptions
    from .lower import TrainingWarning, TranslationWarning
    from .pipeline import compile_file

    exports = ExportOptions(
        saved_model=args.saved_model,
        tflite=args.tflite,
        onnx=args.onnx,
        jit_compile=args.jit,
        batch_size=args.batch_size,
    )
    output = args.output
    if output is None and not exports.any:
        output = f"{Path(args.model).stem}_tf.py"
    try:
        quiet = exports.any and not args.verbose
        with warnings.catch_warnings(record=True) as caught, _native_logs_hidden(quiet):
            warnings.simplefilter("always", TranslationWarning)
            warnings.simplefilter("always", TrainingWarning)
            compiled = compile_file(
                args.model,
                output,
                network=args.network,
                dt=args.dt,
                seed=args.seed,
                dtype=args.dtype,
                translate=args.translate,
                exports=exports,
                runtime=args.runtime,
                trainable=args.trainable,
                cache=None if args.cache else False,
            )
        for w in caught:  # one line per function that stays Python
            if issubclass(w.category, (TranslationWarning, TrainingWarning)):
                print(f"nengo-compile: warning: {w.message}", file=sys.stderr)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    except CompileError as exc:
        print(f"nengo-compile: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - a bug: say so, briefly
        if args.verbose:
            traceback.print_exc()
        print(
            f"nengo-compile: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in nengo-compile; rerun with -v for a traceback and report it.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL

    written, kept = [], []
    if output is not None:
        pair = [output, str(Path(output).with_suffix(".npz"))]
        (kept if compiled.unchanged else written).extend(pair)
    written += [path for path in (args.saved_model, args.tflite) if path]
    if args.onnx:
        written += [args.onnx, args.onnx.removesuffix(".onnx") + ".step.onnx"]
    print(
        "; ".join(
            [f"wrote {', '.join(written)}"] * bool(written)
            + [f"unchanged {', '.join(kept)} (already these bytes)"] * bool(kept)
        )
    )
    if args.report:
        print(report(compiled))
    return 0


#: lines that TensorFlow's C++ side writes to stderr whatever TF_CPP_MIN_LOG_LEVEL says
#: (absl's before-initialisation notice, glog-style lines "I0000 00:00:... file.cc:12] ...")
NATIVE_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWE]\d{4} )")


@contextlib.contextmanager
def _native_logs_hidden(enabled: bool):
    """Hide TensorFlow's native log lines (written to file descriptor 2 by C++,
    out of Python's reach) while exporting; every other line written to stderr
    meanwhile is passed on afterwards. Only the command line does this: the
    generated module and the library change no process-wide setting."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not NATIVE_LOG.match(line)))


def report(compiled) -> str:
    program = compiled.program
    lines = ["plan:"]
    lines += [f"  {line}" for line in compiled.stats.lines()]
    lines.append(f"probes ({len(program.probes)}):")
    lines += [f"  {p.name} {list(p.shape)} <- {p.target}" for p in program.probes]
    translated = [g for g in program.groups if g.template == "node_tf.py.j2"]
    lines.append(f"translated to TensorFlow ({len(translated)}):")
    lines += [f"  {g.title}: {g.values['source']}" for g in translated]
    inputs = [h for h in program.hooks if h.is_input]
    lines.append(f"inputs ({len(inputs)}):")
    for h in inputs:
        how = "optional (the translated function is the default)" if h.translated else "required"
        lines.append(f"  {h.name} [{h.size_out}] ({h.label!r}): {how}")
    hooks = [h for h in program.hooks if not h.translated]
    lines.append(f"hooks ({len(hooks)}):")
    for h in hooks:
        how = "input or node_functions" if h.is_input else "node_functions"
        lines.append(f"  {h.name} ({h.label!r}, {h.source}): served by {how}")
        if h.reason:
            lines.append(f"    not translated: {h.reason}")
    lines.append(f"stubs ({len({s.type_name for s in program.stubs})}):")
    reported = set()
    for s in program.stubs:
        if s.type_name not in reported:
            reported.add(s.type_name)
            how = "step copied into the module" if s.body else f"needs neuron_steps: {s.reason}"
            lines.append(f"  {s.type_name} ({s.source}): NumPy stub, {how}")
    lines.append("stage times: " + ", ".join(f"{k} {v:.3f}s" for k, v in compiled.timings.items()))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
