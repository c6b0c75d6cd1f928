"""int8 Linear and LinearReLU: uint8 QTensor in, uint8 QTensor out, int8 per-channel weights."""
from __future__ import annotations

import torch

from ...int8 import int8_gemm, prepare_weight
from . import functional as qF
from .base import QParamsModule, float_bias, quantize_weight, weight_qparams
from .qtensor import QTensor, check_qtensor


class Linear(QParamsModule):
    """y = requantize(x @ w.T + bias) with fbgemm's ReQuantizeOutput formula.

    Buffers (state_dict): weight int8 [out, in], weight_scale float32 [out], weight_zero_point
    int32 [out], bias float32 [out] or None; output qparams as extra state. The packed weight
    and the requantization are rebuilt when a buffer, the output qparams or the input scale
    change (e.g. after load_state_dict)."""

    _relu = False

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.register_buffer("weight_zero_point", torch.zeros(out_features, dtype=torch.int32))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)

    @classmethod
    def from_float(cls, weight: torch.Tensor, bias, weight_scale, weight_zero_point, scale: float, zero_point: int,
                   weight_quant_min: int = -128, weight_quant_max: int = 127, quant_min: int = 0,
                   quant_max: int = 255):
        """From a float weight [out, in] and bias, the weight's qparams (per channel or one for
        all, qint8 in [weight_quant_min, weight_quant_max]) and the output's (quint8)."""
        out_features, in_features = weight.shape
        mod = cls(in_features, out_features, bias is not None)
        mod.weight_scale, mod.weight_zero_point = weight_qparams(weight_scale, weight_zero_point, out_features)
        mod.weight = quantize_weight(weight, mod.weight_scale, mod.weight_zero_point, weight_quant_min,
                                     weight_quant_max)
        mod.bias = float_bias(bias, out_features)
        mod.set_output_qparams(scale, zero_point, quant_min, quant_max)
        return mod

    def packed_weight(self):
        """The weight in its kernel's form (packed on the CPU), from the forward's cache when it has one."""
        x_scale = self._prepared[0][0] if self._prepared is not None else 1.0
        return self.prepared(x_scale, self.weight.device)[0]

    def prepare(self, x_scale: float):
        epi = qF.epilogue(self.weight_scale, self.weight_zero_point, self.bias, x_scale, self.scale, self.zero_point,
                          self.quant_min, self.quant_max, self._relu)
        return prepare_weight(self.weight), epi

    def forward(self, x):
        data = check_qtensor(x).data
        if data.dim() < 1:
            raise ValueError("fakequant: Linear input must have at least one dimension")
        packed, epi = self.prepared(x.scale, data.device)
        y = int8_gemm(data.reshape(-1, data.shape[-1]), packed, x.zero_point, epi)
        return QTensor._of(y.view(*data.shape[:-1], self.out_features), self.scale, self.zero_point)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, {super().extra_repr()}"


class LinearReLU(Linear):
    """Linear with ReLU fused into the requantization (the output clamps at zero_point)."""

    _relu = True
