"""Exports of a trained model: SavedModel, TFLite and ONNX artifacts hold the
trained values (the export tier; see tests/test_export.py for the loaders)."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import compile_and_load
from .test_export import (
    N_STEPS,
    assert_like_module,
    channel_inputs,
    export_model,
    run_artifact,
)

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`export_model` compiled with trainable=True, its trainable variables
    changed (as a training would), and its three exports."""
    folder = tmp_path_factory.mktemp("trained_export")
    from nengo_compile.lower import TrainingWarning

    with pytest.warns(TrainingWarning, match="'encoders'"):  # its probe: the built values
        _, module = compile_and_load(
            export_model(), folder, dtype="float32", translate=False, trainable=True
        )
    model = module.Model(jit_compile=False)  # as the artifacts: TensorFlow's own kernels
    untrained = model.run(N_STEPS, inputs=channel_inputs(module, 2))
    rng = np.random.RandomState(4)
    for variable in model.trainable_variables:
        value = variable.numpy()
        variable.assign(value * rng.uniform(0.5, 1.5, value.shape).astype(value.dtype))
    paths = {"saved_model": folder / "sm", "onnx": folder / "m.onnx", "tflite": folder / "m.tflite"}
    model.export_saved_model(paths["saved_model"])
    model.export_onnx(paths["onnx"])
    model.export_tflite(paths["tflite"], batch_size=2)
    return module, model, untrained, paths


@pytest.mark.parametrize("kind", ["saved_model", "tflite", "onnx"])
def test_exports_hold_the_trained_values(trained, kind, tmp_path):
    module, model, untrained, paths = trained
    inputs = channel_inputs(module, 2)
    expected = model.run(N_STEPS, inputs=inputs)
    got = run_artifact(kind, paths[kind], module.__name__, N_STEPS, 2, inputs, tmp_path / "out.npz")
    got = {name: got[f"probe_{name}"] for name in module.PROBES}
    assert_like_module(got, expected, portable=kind != "saved_model")
    with pytest.raises(AssertionError):  # and not like the untrained model's
        assert_like_module(got, untrained, portable=kind != "saved_model")
