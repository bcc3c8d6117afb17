"""Convolution transforms: Nengo's ``ConvInc`` and ``ConvTransposeInc``.

Both are `GeneralConvInc` operators, ``Y += conv(W, X)``, with a constant
kernel ``W`` and the layout of the `Convolution` or `ConvolutionTranspose`
transform that built them. A group is one operator: its input is read as
``[batch, size]``, reshaped to Nengo's layout (``(*spatial, channels)`` or
``(channels, *spatial)``), transposed to channels-last (TensorFlow's CPU
kernels have no channels-first convolution), convolved, and flattened back.

Nengo's reference simulator computes the same sums (``conv2d``,
``conv2d_groups``, ``conv2d_gradx`` in `nengo.builder.transforms`) with
TensorFlow's padding rules: "same" puts the smaller half of the padding first.
Nengo's kernel is ``(*kernel_size, in_channels // groups, n_filters)``; that is
TensorFlow's convolution filter as it is, and its transposed convolution
filter with the last two axes swapped. Grouped convolutions use TensorFlow's
grouped kernels (the filter has ``in_channels // groups`` input channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nengo.builder.transforms import GeneralConvInc

from .. import ir
from ..ir import AccessRequest
from .base import OpKind, const_values, register, seg, tag


def _to_channels_last(dims: int) -> tuple:
    """Axes of ``[batch, channels, *spatial]`` in ``[batch, *spatial, channels]`` order."""
    return (0, *range(2, dims + 2), 1)


def _to_channels_first(dims: int) -> tuple:
    """Axes of ``[batch, *spatial, channels]`` in ``[batch, channels, *spatial]`` order."""
    return (0, dims + 1, *range(1, dims + 1))


def _kernel(op) -> np.ndarray:
    """The built kernel, in TensorFlow's filter layout."""
    kernel = const_values(op.W).reshape(op.conv.kernel_shape)
    return np.swapaxes(kernel, -1, -2) if op.is_transpose else kernel


def constant_increment(op) -> np.ndarray:
    """``conv(W, X)`` for a constant input, computed by Nengo's own step."""
    y = np.zeros(op.Y.size)
    signals = {op.W: const_values(op.W), op.X: const_values(op.X), op.Y: y}
    op.make_step(signals, 0.001, None)()  # dt and rng are unused
    return y


@dataclass(frozen=True)
class Convolution(ir.Payload):
    """The shapes and options of one convolution; ``to_last``/``from_last``:
    the transpositions to and from channels-last (None: it is channels-last)."""

    input_shape: tuple
    to_last: tuple | None
    from_last: tuple | None
    transpose: bool
    output_shape: tuple  # conv_transpose's, channels last, without the batch
    strides: tuple
    padding: str
    size_out: int


@register(GeneralConvInc)  # ConvInc and ConvTransposeInc
class ConvKind(OpKind):
    """ConvInc, ConvTransposeInc: ``Y += conv(W, X)`` (one operator a group)."""

    name = "conv"
    template = "conv.py.j2"
    rank = 8  # like matmul: read the input where its producers put it

    def key(self, op, ctx):
        name = type(op.conv).__name__
        if op.W.base in ctx.written:
            raise NotImplementedError(f"{name} with a changing kernel ({tag(op)})")
        if op.conv.dimensions > 2:
            raise NotImplementedError(
                f"{name} with {op.conv.dimensions} spatial dimensions ({tag(op)}); "
                "only 1-D and 2-D convolutions are supported (as in nengo.Simulator)"
            )
        return ("conv", "single")

    def accesses(self, ops, ctx):
        (op,) = ops
        requests = [AccessRequest("Y", "inc", (seg(op.Y),))]
        if not ctx.is_const(op.X):
            requests.append(AccessRequest("X", "read", (seg(op.X),)))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        (op,) = ops
        conv = op.conv
        y = acc["Y"]
        title = (
            f"{type(conv).__name__} {conv.input_shape.shape} -> {conv.output_shape.shape}, "
            f"kernel {conv.kernel_size}, strides {conv.strides}, {conv.padding}"
            + (f", {conv.groups} groups" if conv.groups > 1 else "")
        )
        group = dict(
            index=index,
            kind=self.name,
            title=title,
            sources=(ctx.names(op),),
            writes={"Y": y.access},
        )
        if "X" not in acc:  # constant input: the increment is a constant
            inc = params.const("inc", constant_increment(op))
            return ir.Group(**group, template="const_inc.py.j2", consts={"inc": inc})

        dims = conv.dimensions
        out = conv.output_shape
        values = Convolution(
            input_shape=conv.input_shape.shape,
            to_last=None if conv.channels_last else _to_channels_last(dims),
            from_last=None if conv.channels_last else _to_channels_first(dims),
            transpose=op.is_transpose,
            # conv_transpose's output shape, channels last, without the batch
            output_shape=(*out.spatial_shape, out.n_channels),
            strides=conv.strides,
            padding=conv.padding.upper(),
            size_out=int(out.size),
        )
        return ir.Group(
            **group,
            template=self.template,
            reads={"X": acc["X"].access},
            consts={"kernel": ir.Const(param=params.add("kernel", _kernel(op)))},
            values=values,
        )
