"""The compiler: its stages, in order, and nothing else (see ARCHITECTURE.md)."""

from __future__ import annotations

import gc
import logging
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path

import nengo
import numpy as np

from . import __version__, ir
from .analyse import analyse
from .build import build
from .errors import CompileError
from .export import ExportOptions, Staged, export
from .ir import LowerContext
from .kinds.process import ProcessStep
from .load import load
from .lower import lower
from .options import DTYPES, RUNTIMES
from .plan import PlanStats, plan
from .render import render
from .rewrite import rewrite
from .trainable import check_gradient_path, parameter_sources
from .translate import translate_functions
from .write import check_outputs, output_paths, write

logger = logging.getLogger("nengo_compile")


@dataclass(frozen=True)
class Compiled:
    """A compiled model: the module's source, its parameters and the plan."""

    program: ir.Program
    source: str
    params: dict
    stats: PlanStats
    timings: dict = field(default_factory=dict)  # stage -> seconds
    model: nengo.builder.Model | None = None  # what Nengo's builder made
    hook_functions: dict = field(default_factory=dict)  # hook name -> Python callable
    layout: tuple = ()  # plan.BlockLayout per state block: where each signal lives


def compile_network(
    network: nengo.Network,
    *,
    dt: float = 0.001,
    seed: int | None = None,
    dtype: str = "float32",
    module_name: str = "model_tf",
    source_name: str = "<network>",
    network_name: str = "",
    translate: bool = True,
    model: nengo.builder.Model | None = None,
    check_finite: bool = False,
    runtime: str = "paste",
    trainable: bool = False,
) -> Compiled:
    """Compile a network into the source and parameters of a TF module.

    With ``translate``, Node and connection functions become TensorFlow
    operations where `nengo_compile.translate` can translate them; the rest
    stay Python hooks (with a `TranslationWarning` each).

    ``check_finite`` makes translated functions check their output, as Nengo
    checks every Node output (`nengo_compile.Simulator` turns it on; it adds an
    op that TFLite cannot hold).

    ``model`` is passed to the build stage as ``nengo.Simulator`` takes it: a
    Model to build into or, with ``network=None``, one already built.

    ``trainable`` makes the module trainable: its ``trainable_variables``
    hold the encoders, biases and connection weights that train (see
    `nengo_compile.trainable`), and it refuses online learning rules.

    ``runtime="paste"`` copies the runtime (`nengo_compile.runtime`) into the
    module, so that it needs only TensorFlow and NumPy; ``"import"`` imports it
    from nengo-compile instead (a shorter module, for this installation).
    """
    if dtype not in DTYPES:
        raise CompileError(f"dtype must be one of {', '.join(DTYPES)} (got {dtype!r})")
    if runtime not in RUNTIMES:
        raise CompileError(f"runtime must be one of {', '.join(RUNTIMES)} (got {runtime!r})")
    timings = {}
    with _stage("build", timings):
        built = build(network, dt=dt, seed=seed, model=model)
    sources = None
    if trainable:
        with _stage("trainable", timings):
            sources = parameter_sources(built)
    probed = [sig for _, sig in built.probes]
    with _collector_paused():
        with _stage("rewrite", timings):
            rewritten = rewrite(built.operators, keep=probed)
        with _stage("analyse", timings):
            analysis = analyse(rewritten.operators, built.dt, n_ops=rewritten.n_built)
        with _stage("translate", timings):
            translation = translate_functions(
                rewritten.operators, analysis.is_const, enabled=translate
            )
        with _stage("plan", timings):
            ctx = LowerContext(built.dt, dtype, analysis.is_const, translation=translation)
            planned = plan(analysis, ctx, probed, (built.model.step, built.model.time))
        with _stage("lower", timings):
            header = _header(source_name, network_name or built.network.label or "", planned.stats)
            program = lower(
                built, analysis, planned, dtype, header, translation, check_finite, sources
            )
            if sources is not None:
                check_gradient_path(built, sources, program.hooks)
        with _stage("render", timings):
            source = render(program, module_name, f"{module_name}.npz", runtime)
    # The callables behind the hooks, for whoever runs the module in this process
    functions = {}
    for hook in program.hooks:
        if not hook.translated:
            op = planned.groups[hook.index].ops[0]
            functions[hook.name] = op.fn if hasattr(op, "fn") else ProcessStep(op, built.dt)
    return Compiled(
        program,
        source,
        dict(program.params),
        planned.stats,
        timings,
        built.model,
        functions,
        planned.blocks,
    )


def compile_file(
    model_file: str | Path,
    output: str | Path | None,
    *,
    network: str | None = None,
    dt: float = 0.001,
    seed: int | None = None,
    dtype: str = "float32",
    translate: bool = True,
    exports: ExportOptions | None = None,
    runtime: str = "paste",
    trainable: bool = False,
) -> Compiled:
    """load -> build -> rewrite -> analyse -> translate -> plan -> lower -> render
    -> [export] -> write.

    ``output=None`` writes no module (only the exports). Nothing is written
    unless every stage succeeds.
    """
    exports = exports or ExportOptions()
    if output is None and not exports.any:
        raise CompileError("nothing to write: give an output module or an export")
    module_path, params_path = output_paths(output or "model_tf.py")
    timings = {}
    with _stage("load", timings):
        loaded = load(model_file, network)
    check_outputs(loaded.inputs, [module_path, params_path] if output is not None else [], exports)
    compiled = compile_network(
        loaded.network,
        dt=dt,
        seed=seed,
        dtype=dtype,
        module_name=module_path.stem,
        source_name=Path(model_file).name,
        network_name=loaded.name,
        translate=translate,
        runtime=runtime,
        trainable=trainable,
    )
    timings.update(compiled.timings)
    staged = Staged()
    try:
        if exports.any:
            with _stage("export", timings):
                export(compiled, exports, staged)
        with _stage("write", timings):
            if output is not None:
                write(module_path, params_path, compiled.source, compiled.params)
            staged.commit()
    finally:
        staged.discard()
    return replace(compiled, timings=timings)


@contextmanager
def _stage(name: str, timings: dict):
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start
    logger.info("%-8s %8.3f s", name, timings[name])


@contextmanager
def _collector_paused():
    """Our stages allocate many small, short-lived objects beside the large
    built model; Python's cyclic collector would walk that model again and
    again (a third of the analysis at 100k operators). Reference counting
    still frees everything; the collector runs again afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _header(source_name: str, network_name: str, stats: PlanStats) -> dict:
    versions = ", ".join(
        [f"nengo {nengo.__version__}", f"numpy {np.__version__}", f"jinja2 {version('jinja2')}"]
        + [f"networkx {version('networkx')}", f"python {platform.python_version()}"]
    )
    return {
        "version": __version__,
        "source": source_name,
        "network": network_name,
        "versions": versions,
        "stats": stats.lines(),
    }
