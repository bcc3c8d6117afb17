"""Exports of a compiled model: SavedModel, TFLite (LiteRT) and ONNX, each
written to a temporary path and renamed into place once complete."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import tensorflow as tf

from .checks import _check_exportable, _xla_blockers


def write_saved_model(model, path, jit_compile: bool = False) -> None:
    """``model.export_saved_model``: see there."""
    _check_exportable(model)
    if jit_compile and model.NO_XLA_GROUPS:
        blocking = _xla_blockers({}, model.STUBS, model.NO_XLA_GROUPS)
        raise ValueError(f"jit_compile cannot run {'; '.join(blocking)}")
    with _exporting(model, portable=False, jit_compile=jit_compile):
        module = _export_module(model, None, False, jit_compile)
        signatures = {
            "serving_default": module.run.get_concrete_function(),
            "run": module.run.get_concrete_function(),
            "step": module.step.get_concrete_function(),
        }
        with _staged(path, folder=True) as tmp:
            tf.saved_model.save(module, tmp, signatures=signatures)


def write_tflite(model, path, batch_size: int = 1) -> None:
    """``model.export_tflite``: see there."""
    _check_exportable(model, "TFLite")
    if model.DTYPE != tf.float32:
        raise ValueError("TFLite export needs a float32 module (compile with --dtype float32)")
    with _exporting(model, portable=True):
        module = _export_module(model, int(batch_size), True, False)
        with _staged(str(path) + ".savedmodel", folder=True, keep=False) as tmp:
            signatures = {
                "run": module.run.get_concrete_function(),
                "step": module.step.get_concrete_function(),
            }
            tf.saved_model.save(module, tmp, signatures=signatures)
            converter = tf.lite.TFLiteConverter.from_saved_model(
                tmp, signature_keys=["run", "step"]
            )
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            flatbuffer = converter.convert()
    with _staged(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(flatbuffer)


def write_onnx(model, path, opset: int = 17) -> None:
    """``model.export_onnx``: see there."""
    _check_exportable(model, "ONNX")
    try:
        import tf2onnx
    except ImportError:
        raise ImportError("ONNX export needs tf2onnx: pip install 'nengo-compile[onnx]'") from None
    path = str(path)
    step_path = (path[:-5] if path.endswith(".onnx") else path) + ".step.onnx"
    with _exporting(model, portable=True):
        module = _export_module(model, None, True, False)
        # both files or neither: each converted and checked before either is in place
        with _staged(path) as run_tmp, _staged(step_path) as step_tmp:
            for fn, tmp in ((module.run, run_tmp), (module.step, step_tmp)):
                proto, _ = tf2onnx.convert.from_function(
                    fn, input_signature=fn.input_signature, opset=opset, output_path=tmp
                )
                _check_onnx(proto, (path, step_path))


def _check_onnx(proto, paths) -> None:
    """Raise where tf2onnx wrote a model that ONNX rejects: it logs the nodes
    it could not convert and writes the model anyway."""
    import onnx

    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        first = str(error).strip().splitlines()[0]
        raise RuntimeError(
            f"ONNX export failed: tf2onnx produced an invalid model ({first[:300]}); "
            f"nothing written ({', '.join(os.path.basename(p) for p in paths)})"
        ) from None


def _export_module(model, batch, preallocate: bool, jit_compile: bool) -> tf.Module:
    """A tf.Module holding the parameters and the signature functions.

    Signature inputs are the ``INPUTS`` that are Python hooks (translated
    nodes compute their own values in an export).
    """
    fed = {name: size for name, size in model.INPUTS.items() if name in model.HOOKS}
    dtype = model.DTYPE
    run_specs = [
        tf.TensorSpec([batch, None, size], dtype, name=f"input_{name}")
        for name, size in fed.items()
    ]
    if not fed:
        run_specs.append(tf.TensorSpec([], tf.int32, name="n_steps"))
        if batch is None:
            run_specs.append(tf.TensorSpec([], tf.int32, name="batch_size"))
    step_specs = [tf.TensorSpec([batch], tf.int64, name="state_step")]
    step_specs += [
        tf.TensorSpec([batch, size], dtype, name=f"state_{name}")
        for name, (size, _) in model.BLOCKS.items()
    ]
    step_specs += [
        tf.TensorSpec([batch, size], dtype, name=f"input_{name}") for name, size in fed.items()
    ]

    def run(*args):
        args = {spec.name: arg for spec, arg in zip(run_specs, args)}
        inputs = {name: args[f"input_{name}"] for name in fed}
        if inputs:
            first = next(iter(inputs.values()))
            size, n_steps = tf.shape(first)[0], tf.shape(first)[1]
        else:
            n_steps = args["n_steps"]
            size = args["batch_size"] if batch is None else batch
        state = model._initial_state(size)
        _, outputs = model._run(n_steps, state, inputs, preallocate=preallocate)
        float_type = tf.float32 if model._portable_math else tf.float64
        return {
            f"probe_{k}": _sampled(v, n_steps, model.PROBE_PERIODS.get(k), float_type)
            for k, v in outputs.items()
        }

    def step(*args):
        args = {spec.name: arg for spec, arg in zip(step_specs, args)}
        state = {"step": args["state_step"]}
        state.update({name: args[f"state_{name}"] for name in model.BLOCKS})
        inputs = {name: args[f"input_{name}"] for name in fed}
        state, probes = model._step(state, inputs, model._parameters())
        outputs = {f"next_state_{k}": v for k, v in state.items()}
        outputs.update({f"probe_{k}": v for k, v in probes.items()})
        return outputs

    module = tf.Module()
    module.params = model._fixed_parameters or model.params
    module.rng_seed = model.rng_seed
    options = dict(autograph=False, jit_compile=bool(jit_compile))
    module.run = tf.function(run, input_signature=run_specs, **options)
    module.step = tf.function(step, input_signature=step_specs, **options)
    return module


@contextlib.contextmanager
def _exporting(model, portable: bool, jit_compile: bool = False):
    """Trace without Python hooks (sinks are dropped), with portable math if
    asked, and with the kernels chosen for the export's XLA setting."""
    saved = model.node_functions, model._portable_math, model._sparse_kernels, model._jit_compile
    model.node_functions, model._portable_math = {}, portable
    model._sparse_kernels, model._jit_compile = False, bool(jit_compile)
    if model.TRAINABLE:  # the trained values, added into their parameters once
        # (every other parameter as it is: the export tracks what it reads, the
        # initial state's too; the trainable variables and their positions stay out)
        changed = {param for param, _, _ in model.TRAINABLE.values()}
        left_out = {k for k, (_, at, _) in model.TRAINABLE.items()} | {
            at for _, at, _ in model.TRAINABLE.values()
        }
        model._fixed_parameters = {
            key: tf.Variable(tf.convert_to_tensor(value), trainable=False, name=key)
            if key in changed
            else value
            for key, value in model._parameters().items()
            if key not in left_out
        }
    try:
        yield
    finally:
        model._fixed_parameters = None
        (
            model.node_functions,
            model._portable_math,
            model._sparse_kernels,
            model._jit_compile,
        ) = saved


def _sampled(value, n_steps, period, dtype=tf.float64):
    """Keep the steps Nengo keeps for a probe with ``sample_every`` (every
    ``period`` steps, ``step % period < 1``; exact integer arithmetic for whole
    periods); all of them for ``period=None``."""
    if period is None:
        return value
    steps = tf.range(1, n_steps + 1)
    if period == int(period):
        keep = tf.equal(tf.math.floormod(steps, int(period)), 0)
    else:
        keep = tf.math.floormod(tf.cast(steps, dtype), period) < 1.0
    return tf.boolean_mask(value, keep, axis=1)


@contextlib.contextmanager
def _staged(path, folder: bool = False, keep: bool = True):
    """Write to a temporary path beside ``path``; rename into place on success."""
    path = os.path.abspath(str(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    target = tmp if folder else os.path.join(tmp, os.path.basename(path))
    try:
        yield target
        if keep:
            if folder and os.path.isdir(path):
                shutil.rmtree(path)
            os.replace(target, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
