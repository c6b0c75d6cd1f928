"""int8 boundary, activation, pooling and functional modules.

Quantize, DeQuantize, ReLU, QFunctional (FloatFunctional's add / add_relu / mul / cat), MaxPool2d,
AdaptiveAvgPool2d, Flatten.
"""
from __future__ import annotations

import torch
from torch import nn

from . import functional as qF
from .base import QParamsModule
from .qtensor import QTensor, check_qtensor, quantize


class Quantize(QParamsModule):
    """float -> QTensor with the fake-quant rounding: clamp(round_half_even(x * (1/scale)) + zp,
    quant_min, quant_max). 4-D outputs are channels-last."""

    def forward(self, x) -> QTensor:
        return quantize(x, self.scale, self.zero_point, self.quant_min, self.quant_max)


class DeQuantize(nn.Module):
    """QTensor -> float32 (q - zero_point) * scale."""

    def forward(self, x):
        return check_qtensor(x).dequantize()


class ReLU(nn.Module):
    """max(q, zero_point), same qparams (ReLU of the real values)."""

    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, x):
        return qF.relu(x)


class QFunctional(QParamsModule):
    """FloatFunctional's int8 counterpart: every op quantizes its float result with this module's
    output qparams, exactly as the fake-quant model's activation_post_process does."""

    def add(self, a, b) -> QTensor:
        return qF.add(a, b, self.scale, self.zero_point, self.quant_min, self.quant_max)

    def add_relu(self, a, b) -> QTensor:
        return qF.add_relu(a, b, self.scale, self.zero_point, self.quant_min, self.quant_max)

    def mul(self, a, b) -> QTensor:
        return qF.mul(a, b, self.scale, self.zero_point, self.quant_min, self.quant_max)

    def cat(self, xs, dim: int = 0) -> QTensor:
        return qF.cat(xs, dim, self.scale, self.zero_point, self.quant_min, self.quant_max)

    def _float_op(self, op, *xs) -> QTensor:
        """quantize(op(dequantized inputs)): the fake-quant model's arithmetic exactly, for the ops
        without an int8 kernel (their inputs' dequantized values equal the fake-quantized ones)."""
        return quantize(op(*(check_qtensor(x).dequantize() for x in xs)), self.scale, self.zero_point,
                        self.quant_min, self.quant_max)

    def matmul(self, a, b) -> QTensor:
        return self._float_op(torch.matmul, a, b)

    def mean(self, x, dim, keepdim: bool = False) -> QTensor:
        return self._float_op(lambda t: torch.mean(t, dim, keepdim), x)

    def forward(self, x):
        raise RuntimeError("fakequant: QFunctional is called through add / add_relu / mul / cat, not forward")


class MaxPool2d(nn.MaxPool2d):
    """Max pooling on the integers; same qparams."""

    def forward(self, x):
        return qF.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)


class AdaptiveAvgPool2d(nn.Module):
    """quantize(adaptive_avg_pool2d(dequantize(x))) with the input's qparams."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return qF.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Flatten(nn.Flatten):
    """Flatten of the integers; same qparams."""

    def forward(self, x):
        return qF.flatten(x, self.start_dim, self.end_dim)
