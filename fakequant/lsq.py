"""fakequant.lsq — learnable (LSQ) fake quantization: C++ autograd nodes on the CPU, an autograd Function over the
CUDA kernels."""
from __future__ import annotations

import torch

from . import _C
from .ops import _kernel


class _LearnableFakeQuant(torch.autograd.Function):
    """CUDA: forward is torch's fake quant with the rounded zero point; backward computes dX, dScale and
    dZeroPoint in one pass over (input, grad), as torch's _fake_quantize_learnable_* backward."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, axis, quant_min, quant_max, grad_factor):
        ctx.save_for_backward(x, scale, zero_point)
        ctx.args = (axis, quant_min, quant_max, grad_factor)
        return _forward(x, scale, zero_point, axis, quant_min, quant_max)

    @staticmethod
    def backward(ctx, grad):
        x, scale, zero_point = ctx.saved_tensors
        axis, quant_min, quant_max, grad_factor = ctx.args
        if axis is None:
            dx, ds, dz = _kernel("lsq_per_tensor_backward", x)(grad, x, scale, zero_point, quant_min, quant_max, grad_factor)
        else:
            dx, ds, dz = _kernel("lsq_per_channel_backward", x)(grad, x, scale, zero_point, axis, quant_min, quant_max,
                                                     grad_factor)
        return dx, ds, dz, None, None, None, None


def _forward(x, scale, zero_point, axis, quant_min, quant_max):
    if axis is None:
        return _kernel("lsq_per_tensor", x)(x, scale, zero_point, quant_min, quant_max)
    return _kernel("lsq_per_channel", x)(x, scale, zero_point, axis, quant_min, quant_max)


def _apply(x, scale, zero_point, axis, quant_min, quant_max, grad_factor):
    if x.device.type != "cuda":  # _C's node: the same forward and backward kernels
        if axis is None:
            return _C.lsq_per_tensor_autograd(x, scale, zero_point, quant_min, quant_max, float(grad_factor))
        return _C.lsq_per_channel_autograd(x, scale, zero_point, axis, quant_min, quant_max, float(grad_factor))
    if torch.is_grad_enabled() and (x.requires_grad or scale.requires_grad or zero_point.requires_grad):
        return _LearnableFakeQuant.apply(x, scale, zero_point, axis, quant_min, quant_max, float(grad_factor))
    return _forward(x, scale, zero_point, axis, quant_min, quant_max)


def fake_quantize_learnable_per_tensor_affine(input, scale, zero_point, quant_min, quant_max, grad_factor=1.0):
    """Same as torch._fake_quantize_learnable_per_tensor_affine: scale and zero_point are float32
    one-element tensors; the gradients of both are scaled by grad_factor."""
    return _apply(input, scale, zero_point, None, quant_min, quant_max, grad_factor)


def fake_quantize_learnable_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max,
                                               grad_factor=1.0):
    """Same as torch._fake_quantize_learnable_per_channel_affine: scale and zero_point are float32
    1-D tensors of input.size(axis); gradients are reduced over every other dim."""
    return _apply(input, scale, zero_point, axis, quant_min, quant_max, grad_factor)
