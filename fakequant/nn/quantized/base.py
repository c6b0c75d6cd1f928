"""Shared pieces of the int8 modules: output qparams kept in the state_dict, weight quantization."""
from __future__ import annotations

import torch
from torch import nn

from ... import _C


class QParamsModule(nn.Module):
    """A module whose output is quantized with (scale, zero_point, quant_min, quant_max); the
    four are saved in the state_dict as extra state."""

    def __init__(self, scale: float = 1.0, zero_point: int = 0, quant_min: int = 0, quant_max: int = 255):
        super().__init__()
        self._prepared = None
        self.set_output_qparams(scale, zero_point, quant_min, quant_max)

    def set_output_qparams(self, scale, zero_point, quant_min=0, quant_max=255):
        scale, zero_point = float(scale), int(zero_point)
        if not scale > 0 or scale == float("inf"):
            raise ValueError(f"fakequant: scale must be a finite number > 0, got {scale}")
        if not 0 <= quant_min <= zero_point <= quant_max <= 255:
            raise ValueError(f"fakequant: need 0 <= quant_min <= zero_point <= quant_max <= 255, got "
                             f"{quant_min}, {zero_point}, {quant_max}")
        self.scale, self.zero_point, self.quant_min, self.quant_max = scale, zero_point, int(quant_min), int(quant_max)
        self._prepared = None

    def prepared(self, x_scale: float, device: torch.device = torch.device("cpu")):
        """self.prepare(x_scale) — weights in their kernels' form and epilogues — for inputs on
        `device`, cached until the input scale, the device, the output qparams or a buffer (replaced
        or modified in place) change."""
        key = (x_scale, device, *[(id(t), t._version) for t in self._buffers.values() if t is not None])
        cache = self._prepared
        if cache is not None and cache[0] == key:
            return cache[1]
        for name, t in self._buffers.items():
            if t is not None and t.device != device:
                raise RuntimeError(f"fakequant: {type(self).__name__}.{name} is on {t.device} but the input is on "
                                   f"{device}; move the model with .to('{device}')")
        self._prepared = (key, self.prepare(x_scale))
        return self._prepared[1]

    def __getstate__(self):
        """Copies and pickles leave the prepared-weight cache behind (it is rebuilt on first use)."""
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        return {**state, "_prepared": None}

    def get_extra_state(self):
        return {"scale": self.scale, "zero_point": self.zero_point, "quant_min": self.quant_min,
                "quant_max": self.quant_max}

    def set_extra_state(self, state):
        self.set_output_qparams(state["scale"], state["zero_point"], state["quant_min"], state["quant_max"])

    def extra_repr(self) -> str:
        return f"scale={self.scale}, zero_point={self.zero_point}, quant_range=({self.quant_min}, {self.quant_max})"


def weight_qparams(scale, zero_point, channels: int):
    """Per-channel float32 scales and int32 zero points from floats / ints or 1-D tensors."""
    s = torch.as_tensor(scale).detach().to(torch.float32).reshape(-1)
    z = torch.as_tensor(zero_point).detach().reshape(-1)
    if z.is_floating_point() and not torch.equal(z, z.round()):
        raise ValueError("fakequant: weight_zero_point must hold integers (round a learned zero point first)")
    if s.numel() == 1:
        s = s.expand(channels)
    if z.numel() == 1:
        z = z.expand(channels)
    if s.numel() != channels or z.numel() != channels:
        raise ValueError(f"fakequant: weight qparams need one entry or one per output channel ({channels}), got "
                         f"{s.numel()} scales and {z.numel()} zero points")
    return s.contiguous().clone(), z.to(torch.int32).contiguous().clone()


def quantize_weight(weight: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, quant_min: int,
                    quant_max: int) -> torch.Tensor:
    """int8 weight, per output channel (axis 0), with the quantize primitive of fake quant."""
    if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
        raise TypeError("fakequant: weight must be a float tensor")
    return _C.quantize_per_channel(weight.detach(), scale, zero_point, 0, quant_min, quant_max, True)


def float_bias(bias, channels: int):
    if bias is None:
        return None
    b = torch.as_tensor(bias).detach().to(torch.float32).reshape(-1)
    if b.numel() != channels:
        raise ValueError(f"fakequant: bias must have {channels} entries, got {b.numel()}")
    return b.contiguous().clone()
