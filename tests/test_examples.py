"""The training examples run, with a tiny budget, and their loss drops."""

from __future__ import annotations

import importlib.util

import pytest

from .conftest import ROOT


def _example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_digits_loss_drops(capsys):
    pytest.importorskip("sklearn", reason="the digits come from scikit-learn (the test extra)")
    before, after = _example("train_digits.py").main(["--epochs", "1", "--steps", "20"])
    printed = capsys.readouterr().out
    assert after < 0.75 * before, (before, after)
    assert "spiking test accuracy (20 steps per image)" in printed


def test_train_product_error_drops(capsys):
    before, after = _example("train_product.py").main(["--updates", "12", "--batch", "16"])
    printed = capsys.readouterr().out
    assert after < 0.75 * before, (before, after)
    assert "update 12: training loss" in printed
