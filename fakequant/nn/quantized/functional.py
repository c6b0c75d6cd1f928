"""Functional int8 ops on QTensors: add / mul / cat, pooling, requantizing linear.

Outputs are uint8 QTensors; results equal what the fake-quant float model computes from the same q
(dequantize, float op, fake quant) unless noted.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ... import _C
from ...int8 import PackedWeight, int8_gemm
from ...ops import _kernel
from .qtensor import QTensor, check_qtensor, quantize


def _binary(op: str, a, b, scale, zero_point, quant_min, quant_max, relu):
    a, b = check_qtensor(a, "input"), check_qtensor(b, "other")
    scale, zero_point = float(scale), int(zero_point)
    lo = max(quant_min, zero_point) if relu else quant_min
    data = _kernel("int8_elementwise", a.data)(op, a.data, a.scale, a.zero_point, b.data, b.scale, b.zero_point,
                                                scale, zero_point, lo, quant_max)
    return QTensor._of(data, scale, zero_point)


def add(a: QTensor, b: QTensor, scale: float, zero_point: int, quant_min: int = 0, quant_max: int = 255) -> QTensor:
    """quantize(dequantize(a) + dequantize(b)); b broadcasts to a's shape."""
    return _binary("add", a, b, scale, zero_point, quant_min, quant_max, False)


def add_relu(a: QTensor, b: QTensor, scale: float, zero_point: int, quant_min: int = 0,
             quant_max: int = 255) -> QTensor:
    """quantize(relu(dequantize(a) + dequantize(b)))."""
    return _binary("add", a, b, scale, zero_point, quant_min, quant_max, True)


def mul(a: QTensor, b: QTensor, scale: float, zero_point: int, quant_min: int = 0, quant_max: int = 255) -> QTensor:
    """quantize(dequantize(a) * dequantize(b)); b broadcasts to a's shape."""
    return _binary("mul", a, b, scale, zero_point, quant_min, quant_max, False)


def requantize(x: QTensor, scale: float, zero_point: int, quant_min: int = 0, quant_max: int = 255) -> QTensor:
    """quantize(dequantize(x)) with new qparams."""
    x = check_qtensor(x)
    scale, zero_point = float(scale), int(zero_point)
    out = _kernel("int8_elementwise", x.data)("requant", x.data, x.scale, x.zero_point, None, 1.0, 0, scale,
                                               zero_point, quant_min, quant_max)
    return QTensor._of(out, scale, zero_point)


def cat(xs: Sequence[QTensor], dim: int = 0, scale: float = None, zero_point: int = None, quant_min: int = 0,
        quant_max: int = 255) -> QTensor:
    """quantize(torch.cat(dequantize(x) for x in xs)); qparams default to the first input's."""
    xs = [check_qtensor(x, "tensors") for x in xs]
    if not xs:
        raise ValueError("fakequant: cat needs at least one tensor")
    scale = xs[0].scale if scale is None else float(scale)
    zero_point = xs[0].zero_point if zero_point is None else int(zero_point)
    parts = [requantize(x, scale, zero_point, quant_min, quant_max).data for x in xs]
    return QTensor(torch.cat(parts, dim), scale, zero_point)


def relu(x: QTensor) -> QTensor:
    """max(q, zero_point), same qparams."""
    return check_qtensor(x).relu()


def max_pool2d(x: QTensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> QTensor:
    """Max pooling on the integers (exact: max commutes with the monotone dequantize)."""
    x = check_qtensor(x)
    if x.data.is_cuda:  # torch's CUDA max pooling takes no integer types; float32 holds every q exactly
        data = F.max_pool2d(x.data.float(), kernel_size, stride, padding, dilation, ceil_mode).to(x.dtype)
    else:
        data = F.max_pool2d(x.data, kernel_size, stride, padding, dilation, ceil_mode)
    return x._like(data)


def adaptive_avg_pool2d(x: QTensor, output_size, scale: float = None, zero_point: int = None, quant_min: int = 0,
                        quant_max: int = 255) -> QTensor:
    """quantize(adaptive_avg_pool2d(dequantize(x))); qparams default to x's."""
    x = check_qtensor(x)
    pooled = F.adaptive_avg_pool2d(x.dequantize(), output_size)
    return quantize(pooled, x.scale if scale is None else scale, x.zero_point if zero_point is None else zero_point,
                    quant_min, quant_max)


def flatten(x: QTensor, start_dim: int = 0, end_dim: int = -1) -> QTensor:
    return check_qtensor(x).flatten(start_dim, end_dim)


def epilogue(weight_scale, weight_zero_point, bias, input_scale, scale, zero_point, quant_min=0, quant_max=255,
             relu=False, out_dtype="uint8"):
    """The GEMM's requantization: uint8 output as fbgemm's ReQuantizeOutput, or float32."""
    return _C.Int8Epilogue(weight_scale, weight_zero_point, bias, float(input_scale), float(scale), int(zero_point),
                           quant_min, quant_max, relu, out_dtype)


def linear(x: QTensor, packed: PackedWeight, weight_scale: torch.Tensor, weight_zero_point: torch.Tensor,
           bias, scale: float, zero_point: int, quant_min: int = 0, quant_max: int = 255, relu: bool = False,
           out_dtype: str = "uint8"):
    """x [..., K] @ w.T requantized to (scale, zero_point) — or dequantized (out_dtype "float32":
    acc * x.scale * weight_scale + bias, a float tensor)."""
    x = check_qtensor(x)
    if x.dim() < 1:
        raise ValueError("fakequant: linear input must have at least one dimension")
    epi = epilogue(weight_scale, weight_zero_point, bias, x.scale, scale, zero_point, quant_min, quant_max, relu,
                   out_dtype)
    y = int8_gemm(x.data.reshape(-1, x.shape[-1]), packed, x.zero_point, epi)
    y = y.reshape(*x.shape[:-1], packed.n)
    return y if out_dtype == "float32" else QTensor(y, scale, zero_point)
