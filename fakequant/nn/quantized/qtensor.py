"""QTensor: the int8 modules' activation, a plain uint8 (or int8) tensor with a scale and zero point.

Real value = (data - zero_point) * scale. Never a torch quantized dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...ops import _kernel


class QTensor:
    """data: uint8 / int8 tensor; scale: float; zero_point: int.

    Its methods flatten / reshape / view / size / dim / relu / mean and the torch functions
    torch.flatten, torch.reshape, torch.relu, F.relu and torch.mean accept it, so a converted
    model's forward code runs as written; any other torch function raises TypeError (dequantize()
    first)."""

    __slots__ = ("data", "scale", "zero_point")

    def __init__(self, data: torch.Tensor, scale: float, zero_point: int):
        if not isinstance(data, torch.Tensor) or data.dtype not in (torch.uint8, torch.int8):
            raise TypeError(f"fakequant: QTensor data must be a uint8 or int8 tensor, got {_describe(data)}")
        self.data = data
        self.scale = float(scale)
        self.zero_point = int(zero_point)

    @classmethod
    def _of(cls, data: torch.Tensor, scale: float, zero_point: int) -> QTensor:
        """A QTensor of a kernel's uint8 / int8 output and qparams that are already a float and an
        int (the modules' own): no checks or conversions, for the per-layer hot path."""
        q = object.__new__(cls)
        q.data, q.scale, q.zero_point = data, scale, zero_point
        return q

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def device(self) -> torch.device:
        return self.data.device

    def size(self, dim=None):
        return self.data.size() if dim is None else self.data.size(dim)

    def dim(self) -> int:
        return self.data.dim()

    def numel(self) -> int:
        return self.data.numel()

    def dequantize(self) -> torch.Tensor:
        """float32 (data - zero_point) * scale, exactly a fake quant's output for the same q."""
        return _kernel("dequantize_per_tensor", self.data)(self.data, self.scale, self.zero_point)

    def _like(self, data: torch.Tensor) -> QTensor:
        return QTensor(data, self.scale, self.zero_point)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> QTensor:
        return self._like(self.data.flatten(start_dim, end_dim))

    def reshape(self, *shape) -> QTensor:
        return self._like(self.data.reshape(*shape))

    def view(self, *shape) -> QTensor:
        return self._like(self.data.view(*shape))

    def relu(self) -> QTensor:
        """max(q, zero_point): ReLU of the real values, same qparams."""
        return self._like(torch.clamp_min(self.data, self.zero_point))

    def mean(self, dim=None, keepdim: bool = False) -> QTensor:
        """quantize(mean(dequantize())) with the same qparams (as adaptive average pooling)."""
        x = self.dequantize()
        m = x.mean() if dim is None else x.mean(dim, keepdim)
        return quantize(m, self.scale, self.zero_point, -128 if self.dtype == torch.int8 else 0,
                        127 if self.dtype == torch.int8 else 255)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        handler = _HANDLED.get(func)
        if handler is None:
            name = getattr(func, "__name__", str(func))
            raise TypeError(f"fakequant: {name} does not take a QTensor; call .dequantize() first or use "
                            "fakequant.nn.quantized's int8 modules")
        return handler(*args, **kwargs)

    def __repr__(self) -> str:
        return (f"QTensor(shape={tuple(self.shape)}, dtype={self.dtype}, scale={self.scale}, "
                f"zero_point={self.zero_point})")


def _relu(x, inplace=False):
    return x.relu()


_HANDLED = {torch.flatten: QTensor.flatten, torch.reshape: QTensor.reshape, torch.relu: _relu, F.relu: _relu,
            torch.mean: QTensor.mean}


def _describe(x) -> str:
    return f"a {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__


def check_qtensor(x, name: str = "input") -> QTensor:
    """x itself when it is a QTensor; TypeError otherwise."""
    if not isinstance(x, QTensor):
        raise TypeError(f"fakequant: {name} must be a QTensor (quantize it first), got {_describe(x)}")
    return x


def quantize(x: torch.Tensor, scale: float, zero_point: int, quant_min: int = 0, quant_max: int = 255) -> QTensor:
    """clamp(round_half_even(x * (1/scale)) + zero_point, quant_min, quant_max) — the rounding of
    fake quant — as uint8 (int8 when quant_min < 0). 4-D inputs come out channels-last, the int8
    convolutions' layout."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"fakequant: input must be a float tensor, got {type(x).__name__}")
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    scale, zero_point = float(scale), int(zero_point)
    data = _kernel("quantize_per_tensor", x)(x, scale, zero_point, quant_min, quant_max, quant_min < 0)
    return QTensor._of(data, scale, zero_point)
