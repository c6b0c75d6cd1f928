"""int8 Conv2d and ConvReLU2d on channels-last uint8 QTensors.

Depthwise convs run a direct kernel, the others the int8 GEMM, per group: on the CPU it gathers the
im2col rows while packing; on CUDA the rows are gathered first (a strided copy) for the tensor-core
GEMM.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from ... import _C
from ...int8 import int8_gemm, prepare_weight
from . import functional as qF
from .base import QParamsModule, float_bias, quantize_weight, weight_qparams
from .qtensor import QTensor, check_qtensor


class Conv2d(QParamsModule):
    """y = requantize(conv2d(x, w) + bias) with fbgemm's ReQuantizeOutput formula; zero padding
    (padding reads as the input's zero point). Output is channels-last.

    Buffers (state_dict): weight int8 [out, in / groups, kh, kw], weight_scale float32 [out],
    weight_zero_point int32 [out], bias float32 [out] or None; output qparams as extra state."""

    _relu = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros"):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f"fakequant: only padding_mode='zeros' is supported, got {padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError("fakequant: give padding as numbers, not a string")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"fakequant: groups ({groups}) must divide in_channels ({in_channels}) and "
                             f"out_channels ({out_channels})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        kh, kw = self.kernel_size
        self.register_buffer("weight", torch.zeros(out_channels, in_channels // groups, kh, kw, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_channels))
        self.register_buffer("weight_zero_point", torch.zeros(out_channels, dtype=torch.int32))
        self.register_buffer("bias", torch.zeros(out_channels) if bias else None)

    @classmethod
    def from_float(cls, weight: torch.Tensor, bias, weight_scale, weight_zero_point, scale: float, zero_point: int,
                   stride=1, padding=0, dilation=1, groups: int = 1, weight_quant_min: int = -128,
                   weight_quant_max: int = 127, quant_min: int = 0, quant_max: int = 255):
        """From a float weight [out, in / groups, kh, kw] and bias (BN already folded), the
        weight's qparams (per output channel or one for all) and the output's."""
        if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
            raise ValueError("fakequant: a Conv2d weight must be a 4-D tensor [out, in / groups, kh, kw]")
        out_channels, cin_g, kh, kw = weight.shape
        mod = cls(cin_g * groups, out_channels, (kh, kw), stride, padding, dilation, groups, bias is not None)
        mod.weight_scale, mod.weight_zero_point = weight_qparams(weight_scale, weight_zero_point, out_channels)
        mod.weight = quantize_weight(weight, mod.weight_scale, mod.weight_zero_point, weight_quant_min,
                                     weight_quant_max)
        mod.bias = float_bias(bias, out_channels)
        mod.set_output_qparams(scale, zero_point, quant_min, quant_max)
        return mod

    @property
    def depthwise(self) -> bool:
        return self.groups == self.in_channels == self.out_channels

    def prepare(self, x_scale: float):
        """(packed, epilogues): depthwise (taps, colsum) and one epilogue; otherwise per group a
        packed GEMM weight [out / g, kh * kw * in / g], k ordered (kh, kw, channel) as im2col
        lays out channels-last patches, and its epilogue."""
        if self.depthwise:
            if self.weight.is_cuda:  # the CUDA kernel reads the weight as it is
                return self.weight, [self._epilogue(x_scale)]
            return _C.int8_pack_dw_weight(self.weight, self.weight_zero_point), [self._epilogue(x_scale)]
        og = self.out_channels // self.groups
        w = self.weight.permute(0, 2, 3, 1).reshape(self.out_channels, -1)
        groups = [slice(g * og, (g + 1) * og) for g in range(self.groups)]
        return [prepare_weight(w[sl].contiguous()) for sl in groups], [self._epilogue(x_scale, sl) for sl in groups]

    def _epilogue(self, x_scale: float, sl=slice(None)):
        bias = None if self.bias is None else self.bias[sl]
        return qF.epilogue(self.weight_scale[sl], self.weight_zero_point[sl], bias, x_scale, self.scale,
                           self.zero_point, self.quant_min, self.quant_max, self._relu)

    def forward(self, x):
        data = check_qtensor(x).data
        if data.dim() != 4 or data.shape[1] != self.in_channels or data.dtype != torch.uint8:
            raise ValueError(f"fakequant: Conv2d expects a uint8 QTensor [N, {self.in_channels}, H, W], got "
                             f"{tuple(data.shape)} {data.dtype}")
        packed, epis = self.prepared(x.scale, data.device)
        if not self.depthwise:
            return QTensor._of(self._im2col_gemm(x, packed, epis), self.scale, self.zero_point)
        if data.is_cuda:
            y = _C.cuda_int8_dwconv(data, packed, self.stride, self.padding, self.dilation, x.zero_point, epis[0])
        else:
            y = _C.int8_dwconv(data, *packed, *self.kernel_size, self.stride, self.padding, self.dilation,
                               x.zero_point, epis[0])
        return QTensor._of(y, self.scale, self.zero_point)

    def _im2col_gemm(self, x: QTensor, packed, epis) -> torch.Tensor:
        """Through the GEMM, per group into the group's output columns (a single group on the CPU is
        one C++ call). The CPU gathers im2col rows while packing; CUDA gathers them first (_patches)."""
        (kh, kw), stride, padding, dilation = self.kernel_size, self.stride, self.padding, self.dilation
        if self.groups == 1 and not x.data.is_cuda:
            pk = packed[0]
            return _C.int8_conv_gemm(x.data, pk.data, pk.colsum, pk.n, pk.k, pk.wmin, pk.wmax, kh, kw, stride,
                                     padding, dilation, 0, x.zero_point, epis[0], None)
        n, c, h, w = x.shape
        oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"fakequant: input {h}x{w} is smaller than the (dilated) kernel")
        y = torch.empty(n, oh, ow, self.out_channels, dtype=torch.uint8, device=x.device)
        y2 = y.view(-1, self.out_channels)
        cg, og = c // self.groups, self.out_channels // self.groups
        data = x.data.contiguous(memory_format=torch.channels_last)
        if data.is_cuda:
            patches = self._patches(data, x.zero_point, oh, ow)
            for g, (weight, epi) in enumerate(zip(packed, epis)):
                rows = patches[..., g * cg:(g + 1) * cg].reshape(n * oh * ow, kh * kw * cg)
                int8_gemm(rows, weight, x.zero_point, epi, out=y2[:, g * og:(g + 1) * og])
            return y.permute(0, 3, 1, 2)
        for g, (pk, epi) in enumerate(zip(packed, epis)):
            _C.int8_conv_gemm(data, pk.data, pk.colsum, pk.n, pk.k, pk.wmin, pk.wmax, kh, kw, stride, padding,
                              dilation, g * cg, x.zero_point, epi, y2[:, g * og:(g + 1) * og])
        return y.permute(0, 3, 1, 2)

    def _patches(self, data: torch.Tensor, zero_point: int, oh: int, ow: int) -> torch.Tensor:
        """The conv windows of a channels-last uint8 input as a view [n, oh, ow, kh, kw, c] of the
        input padded with its zero point (the real value 0)."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        padded = F.pad(data, (pw, pw, ph, ph), value=zero_point).permute(0, 2, 3, 1).contiguous()
        n, hp, wp, c = padded.shape
        return padded.as_strided((n, oh, ow, kh, kw, c),
                                 (hp * wp * c, sh * wp * c, sw * c, dh * wp * c, dw * c, 1))

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, {super().extra_repr()}")


class ConvReLU2d(Conv2d):
    """Conv2d with ReLU fused into the requantization (the output clamps at zero_point)."""

    _relu = True
