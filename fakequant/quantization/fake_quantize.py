"""Fake-quant modules (FakeQuantize, FusedMovingAvgObsFakeQuantize, LearnableFakeQuantize) on fakequant's ops,
with torch.ao's buffers and state_dict layout."""
import torch
from torch import nn

from . import _ops
from .observer import (PER_CHANNEL, SYMMETRIC, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
                       qparams, quant_range, with_args)

_MOVING_AVERAGE = (MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver)

__all__ = ["FakeQuantizeBase", "FakeQuantize", "FusedMovingAvgObsFakeQuantize", "LearnableFakeQuantize",
           "enable_fake_quant", "disable_fake_quant", "enable_observer", "disable_observer"]


def _observer_dtype(observer, observer_kwargs):
    keywords = getattr(observer, "keywords", None) or {}
    return observer_kwargs.get("dtype", keywords.get("dtype", torch.quint8))


def _resize_on_load(module, state_dict, prefix, names):
    """Per-channel qparams start with one element: take the loaded shape first (torch does the same)."""
    for name in names:
        if prefix + name in state_dict:
            getattr(module, name).data = getattr(module, name).data.new_empty(state_dict[prefix + name].shape)


class FakeQuantizeBase(nn.Module):
    """Holds the `fake_quant_enabled` / `observer_enabled` switches (uint8 buffers, as torch for DDP)."""

    with_args = classmethod(with_args)

    def __init__(self):
        super().__init__()
        self.register_buffer("fake_quant_enabled", torch.tensor([1], dtype=torch.uint8))
        self.register_buffer("observer_enabled", torch.tensor([1], dtype=torch.uint8))

    def calculate_qparams(self):
        raise NotImplementedError

    def enable_fake_quant(self, enabled: bool = True) -> None:
        self.fake_quant_enabled[0] = 1 if enabled else 0

    def disable_fake_quant(self):
        self.enable_fake_quant(False)

    def enable_observer(self, enabled: bool = True) -> None:
        self.observer_enabled[0] = 1 if enabled else 0

    def disable_observer(self):
        self.enable_observer(False)

    def forward_relu(self, x):
        """self(torch.relu(x)); subclasses whose kernel can take the ReLU in its own pass override this."""
        return self(torch.relu(x))

    def forward_folded(self, weight, gamma, running_var, eps, divide):
        """BN folding's weight: see bn_folded_weight (subclasses may run it as one node)."""
        return bn_folded_weight(self, weight, gamma, running_var, eps, divide)


def bn_folded_weight(fake_quant, weight, gamma, running_var, eps, divide):
    """fake_quant(W * sf), divided by sf again when divide (BN still normalises with batch statistics), for
    sf = gamma / sqrt(running_var + eps) per output channel (dim 0 of the weight)."""
    sf = (gamma / torch.sqrt(running_var + eps)).reshape((-1,) + (1,) * (weight.dim() - 1))
    w = fake_quant(weight * sf)
    return w / sf if divide else w


class FakeQuantize(FakeQuantizeBase):
    """Observer + fake quant: with the observer on, scale / zero_point are refreshed from it every call."""

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=None, quant_max=None, is_dynamic=False,
                 **observer_kwargs):
        super().__init__()
        if quant_min is not None and quant_max is not None:
            quant_range(_observer_dtype(observer, observer_kwargs), quant_min, quant_max)
            observer_kwargs.update(quant_min=quant_min, quant_max=quant_max)
        observer_kwargs["is_dynamic"] = is_dynamic
        self.activation_post_process = observer(**observer_kwargs)
        obs = self.activation_post_process
        self.quant_min, self.quant_max = obs.quant_min, obs.quant_max
        self.is_dynamic = obs.is_dynamic
        self.dtype = obs.dtype
        self.qscheme = obs.qscheme
        self.is_per_channel = obs.qscheme in PER_CHANNEL
        self.ch_axis = obs.ch_axis if self.is_per_channel else -1
        self.register_buffer("scale", torch.tensor([1.0], dtype=torch.float))
        self.register_buffer("zero_point", torch.tensor([0], dtype=torch.int))

    def calculate_qparams(self):
        return self.activation_post_process.calculate_qparams()

    def forward(self, x):
        if self.observer_enabled.item():
            self.activation_post_process(x.detach())
            scale, zero_point = self.calculate_qparams()
            if self.scale.shape != scale.shape:
                self.scale.resize_(scale.shape)
                self.zero_point.resize_(zero_point.shape)
            self.scale.copy_(scale)
            self.zero_point.copy_(zero_point)
        if self.fake_quant_enabled.item():
            if self.is_per_channel:
                return _ops.fake_quantize_per_channel_affine(x, self.scale, self.zero_point, self.ch_axis,
                                                             self.quant_min, self.quant_max)
            return _ops.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, self.quant_min, self.quant_max)
        return x

    def extra_repr(self):
        return (f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled={self.observer_enabled}, "
                f"quant_min={self.quant_min}, quant_max={self.quant_max}, dtype={self.dtype}, "
                f"qscheme={self.qscheme}, ch_axis={self.ch_axis}, scale={self.scale}, zero_point={self.zero_point}")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        _resize_on_load(self, state_dict, prefix, ("scale", "zero_point"))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class FusedMovingAvgObsFakeQuantize(FakeQuantize):
    """Moving-average observer, qparams and fake quant in one fused kernel call (torch's default QAT module).

    The kernel floors the scale at KERNEL_MIN_SCALE and knows no eps; an observer eps above that floor
    runs the same steps unfused so the floor holds in training too."""

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, **observer_kwargs):
        super().__init__(observer, quant_min, quant_max, **observer_kwargs)
        if not isinstance(self.activation_post_process,
                          (MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver)):
            raise TypeError("FusedMovingAvgObsFakeQuantize needs a MovingAverageMinMaxObserver or "
                            f"MovingAveragePerChannelMinMaxObserver, got {type(self.activation_post_process).__name__}")
        self.register_buffer("fake_quant_enabled", torch.tensor([1], dtype=torch.long))
        self.register_buffer("observer_enabled", torch.tensor([1], dtype=torch.long))
        self.is_symmetric_quant = self.qscheme in SYMMETRIC
        self._kernel_floor_ok = self._floor_ok(self.activation_post_process.eps)

    @staticmethod
    def _floor_ok(eps):
        return float(eps.max()) <= _ops.KERNEL_MIN_SCALE

    def _fused_args(self):
        """The fused op's arguments after the input. These methods run for every fake-quant module on every
        step, so the buffers are read from the module dicts, not through nn.Module.__getattr__."""
        buf, obs = self._buffers, self._modules["activation_post_process"]
        return (buf["observer_enabled"], buf["fake_quant_enabled"], obs._buffers["min_val"], obs._buffers["max_val"],
                buf["scale"], buf["zero_point"], obs.averaging_constant, self.quant_min, self.quant_max, self.ch_axis,
                self.is_per_channel, self.is_symmetric_quant)

    def forward(self, x):
        if not self._kernel_floor_ok:
            return super().forward(x)
        if x.is_cuda:
            return _ops.fused_moving_avg_obs_fake_quant(x, *self._fused_args())
        return _ops.fused_obs_node(x, *self._fused_args())

    def _runs_fused(self, x):
        """The kernel takes extra work in its own pass: CPU, its scale floor holds, no hooks to call."""
        return not x.is_cuda and self._kernel_floor_ok and not self._forward_hooks and not self._forward_pre_hooks

    def forward_folded(self, weight, gamma, running_var, eps, divide):
        """bn_folded_weight as one C++ autograd node (the same forward; gradients of weight and gamma)."""
        if not (self._runs_fused(weight) and weight.dtype == gamma.dtype == running_var.dtype == torch.float32):
            return super().forward_folded(weight, gamma, running_var, eps, divide)
        return _ops.bn_folded_weight_node(weight, gamma, running_var, eps, divide, *self._fused_args())

    def forward_relu(self, x):
        """self(torch.relu(x)) with the ReLU inside the fused kernel (same output, buffers and gradient)."""
        if not self._runs_fused(x):
            return super().forward_relu(x)
        return _ops.fused_moving_avg_obs_fake_quant_relu(x, *self._fused_args())

    def extra_repr(self):
        return super().extra_repr() + f", reduce_range={self.activation_post_process.reduce_range}"

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        eps = state_dict.get(prefix + "activation_post_process.eps")
        if eps is not None:
            self._kernel_floor_ok = self._floor_ok(eps)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class LearnableFakeQuantize(FakeQuantizeBase):
    """LSQ: scale and zero point are Parameters learned by backprop (torch's _LearnableFakeQuantize layout).

    While the observer is on (`static_enabled`) it sets them every call and they are not learned;
    `disable_observer` (like `enable_param_learning`) stops it and learns them from there, so the usual
    schedule (observers frozen after a few epochs) calibrates, then learns. A per-channel module created
    without `channel_len` takes the channel count from the first observed tensor."""

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, scale=1.0, zero_point=0.0,
                 channel_len=-1, use_grad_scaling=False, **observer_kwargs):
        super().__init__()
        if quant_min >= quant_max:
            raise ValueError(f"quant_min must be < quant_max, got [{quant_min}, {quant_max}]")
        quant_range(_observer_dtype(observer, observer_kwargs), quant_min, quant_max)
        self.quant_min, self.quant_max = quant_min, quant_max
        self.use_grad_scaling = use_grad_scaling
        n = 1 if channel_len == -1 else channel_len
        if not (isinstance(n, int) and n > 0):
            raise ValueError(f"channel_len must be a positive int or -1, got {channel_len!r}")
        self.scale = nn.Parameter(torch.full((n,), float(scale)))
        self.zero_point = nn.Parameter(torch.full((n,), float(zero_point)))
        observer_kwargs.update(quant_min=quant_min, quant_max=quant_max)
        self.activation_post_process = observer(**observer_kwargs)
        obs = self.activation_post_process
        self.dtype, self.qscheme = obs.dtype, obs.qscheme
        self.is_per_channel = obs.qscheme in PER_CHANNEL
        self.ch_axis = obs.ch_axis if self.is_per_channel else -1
        self.register_buffer("fake_quant_enabled", torch.tensor([1], dtype=torch.uint8))
        self.register_buffer("static_enabled", torch.tensor([1], dtype=torch.uint8))
        self.register_buffer("learning_enabled", torch.tensor([0], dtype=torch.uint8))
        self.bitwidth = int(torch.log2(torch.tensor(quant_max - quant_min + 1).double()).item())
        self.register_buffer("eps", torch.tensor([torch.finfo(torch.float32).eps]))
        self.toggle_qparam_learning(False)

    def enable_observer(self, enabled: bool = True) -> None:
        self.toggle_observer_update(enabled).toggle_qparam_learning(not enabled)

    def toggle_observer_update(self, enabled=True):
        self.static_enabled[0] = int(enabled)
        self.observer_enabled[0] = int(enabled)
        return self

    def toggle_qparam_learning(self, enabled=True):
        self.learning_enabled[0] = int(enabled)
        self.scale.requires_grad = enabled
        self.zero_point.requires_grad = enabled
        return self

    def toggle_fake_quant(self, enabled=True):
        self.fake_quant_enabled[0] = int(enabled)
        return self

    def enable_param_learning(self):
        """Learn scale / zero point from here on (observer off, fake quant on)."""
        return self.toggle_qparam_learning(True).toggle_fake_quant(True).toggle_observer_update(False)

    def enable_static_estimate(self):
        """Take scale / zero point from the observer (no learning, fake quant on)."""
        return self.toggle_qparam_learning(False).toggle_fake_quant(True).toggle_observer_update(True)

    def enable_static_observation(self):
        """Observe only: qparams follow the observer, the output is the input."""
        return self.toggle_qparam_learning(False).toggle_fake_quant(False).toggle_observer_update(True)

    def calculate_qparams(self):
        self.scale.data.clamp_(min=self.eps.item())
        zero_point = self.zero_point.detach().round().clamp(self.quant_min, self.quant_max).to(torch.int32)
        return self.scale.detach(), zero_point

    def _static_qparams(self):
        obs = self.activation_post_process
        if self.qscheme not in SYMMETRIC or not obs._observed():
            return obs.calculate_qparams()
        # The zero point is pinned to 0 (below). The rule keeps it at 0 only when min < 0 < max; a one-signed
        # range gets the smallest opposite-signed end, so the scale still covers it with a zero point of 0.
        mn, mx, tiny = obs.min_val, obs.max_val, torch.finfo(torch.float32).tiny
        lo = torch.where((mn >= 0) & (mx > 0), -tiny, mn)
        hi = torch.where((mx <= 0) & (mn < 0), tiny, mx)
        return qparams(lo, hi, obs.quant_min, obs.quant_max, True, float(obs.eps.max()))

    def _node_args(self, x):
        """_ops.lsq_module_forward's arguments after the input, or None where forward runs op by op: a CUDA input,
        an observer other than the moving-average ones, or observer hooks to call. Runs for every module on
        every step, so it reads the module dicts directly."""
        obs = self._modules["activation_post_process"]
        if not x.is_cpu or type(obs) not in _MOVING_AVERAGE or obs._forward_hooks or obs._forward_pre_hooks:
            return None
        buf, par, obs_buf = self._buffers, self._parameters, obs._buffers
        return (buf["static_enabled"], buf["fake_quant_enabled"], buf["eps"], par["scale"], par["zero_point"],
                obs_buf["min_val"], obs_buf["max_val"], obs_buf["eps"], obs.averaging_constant, obs.quant_min,
                obs.quant_max, self.quant_min, self.quant_max, self.ch_axis, self.is_per_channel,
                self.qscheme in SYMMETRIC, self.use_grad_scaling)

    def forward(self, x):
        """One C++ call on the CPU (observer update, qparams, LSQ op: _ops.lsq_module_forward) where it can run;
        the same values as the op-by-op path below, which it hands the rest (see _node_args and the C++ side)."""
        args = self._node_args(x)
        if args is not None:
            y = _ops.lsq_module_forward(x, *args)
            if y is not None:
                return y
        return self._forward_ops(x)

    def _forward_ops(self, x):
        if self.static_enabled.item():
            self.activation_post_process(x.detach())
            scale, zero_point = self._static_qparams()
            if self.scale.shape != scale.shape:
                self.scale.data = self.scale.data.new_empty(scale.shape)
                self.zero_point.data = self.zero_point.data.new_empty(scale.shape)
            self.scale.data.copy_(scale)
            self.zero_point.data.copy_(zero_point)
        else:
            self.scale.data.clamp_(min=self.eps.item())
        if not self.fake_quant_enabled.item():
            return x
        if self.qscheme in SYMMETRIC:
            self.zero_point.data.zero_()
        grad_factor = 1.0 / (x.numel() * self.quant_max) ** 0.5 if self.use_grad_scaling else 1.0
        if self.is_per_channel:
            return _ops.fake_quantize_learnable_per_channel_affine(x, self.scale, self.zero_point, self.ch_axis,
                                                                   self.quant_min, self.quant_max, grad_factor)
        return _ops.fake_quantize_learnable_per_tensor_affine(x, self.scale, self.zero_point, self.quant_min,
                                                              self.quant_max, grad_factor)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        _resize_on_load(self, state_dict, prefix, ("scale", "zero_point"))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


def _switch(method):
    def apply(mod):
        if isinstance(mod, FakeQuantizeBase):
            getattr(mod, method)()
    apply.__name__ = method
    apply.__doc__ = f"`model.apply({method})`: calls `{method}()` on every fakequant fake-quant module."
    return apply


enable_fake_quant = _switch("enable_fake_quant")
disable_fake_quant = _switch("disable_fake_quant")
enable_observer = _switch("enable_observer")
disable_observer = _switch("disable_observer")
