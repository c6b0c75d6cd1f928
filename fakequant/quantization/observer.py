"""Min/max observers whose qparams follow the fused fake-quant kernel's rule, so training and convert agree.

torch.ao's observers compute qparams with `_calculate_qparams` (eps floor, zero point from `round(min/scale)`),
while its FusedMovingAvgObsFakeQuantize trains with fbgemm's ChooseQuantizationParams rule; the two differ, so
torch's converted model drifts from the model it trained. Here every observer uses the fused kernel's rule
(`qparams` below), so the scale a fake-quant module trained with is the scale `calculate_qparams` reports.
"""
import functools
import warnings

import torch
from torch import nn

from ._ops import KERNEL_MIN_SCALE, choose_qparams

_UINT8 = (torch.quint8, torch.uint8)
_INT8 = (torch.qint8, torch.int8)
_INT32 = (torch.qint32, torch.int32)
PER_TENSOR = (torch.per_tensor_affine, torch.per_tensor_symmetric)
PER_CHANNEL = (torch.per_channel_affine, torch.per_channel_symmetric)
SYMMETRIC = (torch.per_tensor_symmetric, torch.per_channel_symmetric)


def with_args(cls_or_ctor, **kwargs):
    """A constructor with some keyword arguments bound (torch's `with_args`); chains."""
    return functools.partial(cls_or_ctor, **kwargs)


def quant_range(dtype, quant_min=None, quant_max=None, reduce_range=False):
    """(quant_min, quant_max) as torch's observers derive it: the dtype's range or a custom one, halved
    (floor) by reduce_range."""
    if dtype in _UINT8:
        lo, hi = 0, 255
    elif dtype in _INT8:
        lo, hi = -128, 127
    elif dtype in _INT32:
        lo, hi = -(2**31), 2**31 - 1
    else:
        raise TypeError(f"dtype must be torch.quint8, torch.qint8 or torch.qint32, got {dtype}")
    if (quant_min is None) != (quant_max is None):
        raise ValueError("quant_min and quant_max must be given together")
    if quant_min is not None:
        if not quant_min <= 0 <= quant_max or quant_min == quant_max:
            raise ValueError(f"quant_min < quant_max with 0 in [quant_min, quant_max] is required, "
                             f"got [{quant_min}, {quant_max}]")
        if quant_min < lo or quant_max > hi:
            raise ValueError(f"[quant_min, quant_max] = [{quant_min}, {quant_max}] does not fit {dtype} ({lo}..{hi})")
        lo, hi = quant_min, quant_max
    if reduce_range:
        lo, hi = lo // 2, hi // 2
    return lo, hi


def qparams(min_val, max_val, quant_min, quant_max, symmetric, eps=0.0):
    """Scale (float32) and zero point (int32), one per element of min_val / max_val, by the fused kernel's rule.

    `eps` floors the scale. The rule already floors it at KERNEL_MIN_SCALE (fbgemm's 6.1e-5), so only a
    larger eps acts: the observed range is widened about zero until the scale reaches eps, keeping the
    zero point."""
    mn, mx = min_val.detach().reshape(-1).float(), max_val.detach().reshape(-1).float()
    scale, zero_point = choose_qparams(mn, mx, quant_min, quant_max, symmetric)
    if eps > KERNEL_MIN_SCALE:
        small = scale < eps
        if bool(small.any()):
            widen = torch.where(small, eps / scale.double(), 1.0)
            scale, zero_point = choose_qparams((mn.clamp(max=0) * widen).float(), (mx.clamp(min=0) * widen).float(),
                                               quant_min, quant_max, symmetric)
            scale = scale.clamp(min=eps)
    return scale, zero_point


class ObserverBase(nn.Module):
    """Shared state of the min/max observers: dtype, quantized range, qscheme and eps (torch's arguments)."""

    _QSCHEMES = PER_TENSOR
    with_args = classmethod(with_args)

    def __init__(self, dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=False, quant_min=None,
                 quant_max=None, eps=torch.finfo(torch.float32).eps, is_dynamic=False, factory_kwargs=None):
        super().__init__()
        if is_dynamic:
            raise NotImplementedError("is_dynamic: dynamic-quantization observers are not supported")
        if qscheme not in self._QSCHEMES:
            raise ValueError(f"qscheme must be one of {self._QSCHEMES} for {type(self).__name__}, got {qscheme}")
        self.dtype = dtype
        self.qscheme = qscheme
        self.reduce_range = reduce_range
        self.is_dynamic = False
        self.has_customized_qrange = quant_min is not None
        self.quant_min, self.quant_max = quant_range(dtype, quant_min, quant_max, reduce_range)
        factory_kwargs = dict(factory_kwargs or {})
        self.register_buffer("eps", torch.tensor([eps], **factory_kwargs))
        self._init_min_max(factory_kwargs)

    @property
    def symmetric(self):
        return self.qscheme in SYMMETRIC

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        cur_min, cur_max = self._reduce(x_orig.detach().to(self.min_val.dtype))
        if self.min_val.shape != cur_min.shape:
            self.min_val.resize_(cur_min.shape).fill_(float("inf"))
            self.max_val.resize_(cur_max.shape).fill_(float("-inf"))
        self.min_val.copy_(self._combine(self.min_val, cur_min, torch.minimum))
        self.max_val.copy_(self._combine(self.max_val, cur_max, torch.maximum))
        return x_orig

    def _combine(self, running, current, pick):
        return pick(running, current)

    def _observed(self):
        return self.min_val.numel() > 0 and not bool(torch.isinf(self.min_val).all() & torch.isinf(self.max_val).all())

    @torch.jit.export
    def calculate_qparams(self):
        """(scale, zero_point) for the range seen so far; scale [1.0], zero point [0] with a warning if none."""
        if not self._observed():
            warnings.warn(f"{type(self).__name__} has not observed any data yet: calculate_qparams returns the "
                          "default scale 1.0 and zero point 0; run the observer on data first.", stacklevel=2)
            return (torch.tensor([1.0], device=self.min_val.device),
                    torch.tensor([0], dtype=torch.int32, device=self.min_val.device))
        return qparams(self.min_val, self.max_val, self.quant_min, self.quant_max, self.symmetric,
                       float(self.eps.max()))

    @torch.jit.export
    def reset_min_max_vals(self):
        self.min_val.copy_(torch.full_like(self.min_val, float("inf")))
        self.max_val.copy_(torch.full_like(self.max_val, float("-inf")))

    def extra_repr(self):
        return (f"min_val={self.min_val}, max_val={self.max_val}, dtype={self.dtype}, qscheme={self.qscheme}, "
                f"quant_min={self.quant_min}, quant_max={self.quant_max}")


class MinMaxObserver(ObserverBase):
    """Running minimum and maximum of everything observed (per tensor)."""

    def _init_min_max(self, factory_kwargs):
        self.register_buffer("min_val", torch.tensor(float("inf"), **factory_kwargs))
        self.register_buffer("max_val", torch.tensor(float("-inf"), **factory_kwargs))

    def _reduce(self, x):
        return torch.aminmax(x)


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Moving average of per-batch min / max: m = m + c * (cur - m); the first batch sets m (as the fused op)."""

    def __init__(self, averaging_constant=0.01, dtype=torch.quint8, qscheme=torch.per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, eps=torch.finfo(torch.float32).eps,
                 is_dynamic=False, **kwargs):
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range, quant_min=quant_min,
                         quant_max=quant_max, eps=eps, is_dynamic=is_dynamic, **kwargs)
        self.averaging_constant = averaging_constant

    def _combine(self, running, current, pick):
        return torch.where(torch.isinf(running), current, running + self.averaging_constant * (current - running))


class PerChannelMinMaxObserver(ObserverBase):
    """Running min / max per slice along ch_axis; the buffers take the channel count on first use or on load."""

    _QSCHEMES = PER_CHANNEL

    def __init__(self, ch_axis=0, dtype=torch.quint8, qscheme=torch.per_channel_affine, reduce_range=False,
                 quant_min=None, quant_max=None, eps=torch.finfo(torch.float32).eps, is_dynamic=False, **kwargs):
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range, quant_min=quant_min,
                         quant_max=quant_max, eps=eps, is_dynamic=is_dynamic, **kwargs)
        self.ch_axis = ch_axis

    def _init_min_max(self, factory_kwargs):
        self.register_buffer("min_val", torch.tensor([], **factory_kwargs))
        self.register_buffer("max_val", torch.tensor([], **factory_kwargs))

    def _reduce(self, x):
        if x.dim() == 0 or not -x.dim() <= self.ch_axis < x.dim():
            raise ValueError(f"ch_axis {self.ch_axis} is out of range for an input of shape {tuple(x.shape)}")
        rows = x.movedim(self.ch_axis, 0)
        return torch.aminmax(rows.reshape(rows.shape[0], -1), dim=1)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        for name in ("min_val", "max_val"):
            if prefix + name in state_dict:
                getattr(self, name).resize_(state_dict[prefix + name].shape)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """Per-channel moving average of min / max (same update rule as MovingAverageMinMaxObserver)."""

    def __init__(self, averaging_constant=0.01, ch_axis=0, dtype=torch.quint8, qscheme=torch.per_channel_affine,
                 reduce_range=False, quant_min=None, quant_max=None, eps=torch.finfo(torch.float32).eps,
                 is_dynamic=False, **kwargs):
        super().__init__(ch_axis=ch_axis, dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps, is_dynamic=is_dynamic, **kwargs)
        self.averaging_constant = averaging_constant

    _combine = MovingAverageMinMaxObserver._combine
