"""The compiler: its stages, in order, and nothing else (see ARCHITECTURE.md)."""

from __future__ import annotations

import gc
import logging
import platform
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path

import nengo
import numpy as np

from . import __version__, ir
from .analyse import analyse
from .build import build
from .cache import folder as cache_folder
from .cache import load as cache_load
from .cache import store as cache_store
from .errors import CompileError
from .export import ExportOptions, Staged, export
from .ir import LowerContext
from .kinds.process import ProcessStep
from .load import load
from .lower import Describer, lower
from .model_key import fingerprint
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
    unchanged: bool = False  # compile_file: the module and parameters held these bytes already


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
    cache=None,
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

    ``cache``: the compile cache (`nengo_compile.cache`) to look in and keep
    the result in: None follows ``$NENGO_COMPILE_CACHE`` (on by default),
    False turns it off, a path is the folder to use.
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
    where, fp = cache_folder(cache), None
    lowered: Lowered | None = None
    if where is not None:
        with _stage("key", timings):
            options = {
                "dtype": dtype,
                "source": source_name,
                "network": network_name,
                "translate": translate,
                "check_finite": check_finite,
                "train_sources": sources,
            }
            fp = fingerprint(built, options, Describer(built.network))
        if fp is not None:
            with _stage("cache", timings):
                lowered = cache_load(fp, where)
            logger.info("cache    %s %s", "hit" if lowered else "miss", fp.key[:16])
    rendering, missed = (module_name, runtime), lowered is None
    if lowered is None:
        with _warnings_kept() as kept:
            lowered = _lower(
                built, dtype, source_name, network_name, translate, check_finite, sources, timings
            )
        lowered = replace(lowered, warnings=tuple(kept))
    else:
        _replay(lowered.warnings)
    program = lowered.program
    source = lowered.sources.get(rendering)
    if source is None:
        with _stage("render", timings):
            source = render(program, module_name, f"{module_name}.npz", runtime)
        if (
            fp is not None and where is not None and missed
        ):  # with the module rendered (the command line's is the same)
            cache_store(fp, where, replace(lowered, sources={rendering: source}))
    # The callables behind the hooks, for whoever runs the module in this process
    functions = {
        name: op.fn if hasattr(op, "fn") else ProcessStep(op, built.dt)
        for name, op in lowered.hook_ops.items()
    }
    return Compiled(
        program,
        source,
        dict(program.params),
        lowered.stats,
        timings,
        built.model,
        functions,
        lowered.layout,
    )


@dataclass(frozen=True)
class Lowered:
    """What the stages from rewrite to lower make of a build (what the
    compile cache keeps): the program, the plan's statistics and block
    layout, the operator behind each Python hook, the warnings given, and
    the last module rendered from them."""

    program: ir.Program
    stats: PlanStats
    layout: tuple
    hook_ops: dict  # hook name -> its operator
    warnings: tuple = ()  # warnings.WarningMessage-like (message, category, filename, lineno)
    sources: dict = field(default_factory=dict)  # (module name, runtime) -> the rendered module


def _lower(built, dtype, source_name, network_name, translate, check_finite, sources, timings):
    """rewrite -> analyse -> translate -> plan -> lower."""
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
    hook_ops = {
        hook.name: planned.groups[hook.index].ops[0]
        for hook in program.hooks
        if not hook.translated
    }
    return Lowered(program, planned.stats, planned.blocks, hook_ops)


@contextmanager
def _warnings_kept():
    """Every warning the stages give, kept (for the cache) and given again
    afterwards as it was given, to the caller's filters; also when a stage fails."""
    kept: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield kept
            finally:
                kept.extend((w.message, w.category, w.filename, w.lineno) for w in caught)
    finally:
        _replay(kept)


def _replay(given) -> None:
    for message, category, filename, lineno in given:
        warnings.warn_explicit(message, category, filename, lineno)


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
    cache=None,
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
        cache=cache,
    )
    timings.update(compiled.timings)
    staged, unchanged = Staged(), False
    try:
        if exports.any:
            with _stage("export", timings):
                export(compiled, exports, staged)
        with _stage("write", timings):
            if output is not None:
                unchanged = not write(module_path, params_path, compiled.source, compiled.params)
            staged.commit()
    finally:
        staged.discard()
    return replace(compiled, timings=timings, unchanged=unchanged)


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
