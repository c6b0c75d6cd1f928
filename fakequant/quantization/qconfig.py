"""QConfig, torch's default QAT qconfigs per backend, LSQ / weight-only / activation-only / n-bit qconfigs,
and the translation of torch.ao qconfigs to fakequant's modules."""
import functools
from collections import namedtuple

import torch
from torch import nn

from . import fake_quantize as fq
from . import observer as obs

__all__ = ["QConfig", "BACKENDS", "get_default_qat_qconfig", "get_lsq_qat_qconfig", "get_weight_only_qat_qconfig",
           "get_activation_only_qat_qconfig", "get_qat_qconfig_nbits", "default_fake_quant",
           "default_weight_fake_quant", "default_per_channel_weight_fake_quant", "default_fused_act_fake_quant",
           "default_fused_wt_fake_quant", "default_fused_per_channel_wt_fake_quant", "to_fakequant_qconfig"]

BACKENDS = ("fbgemm", "x86", "qnnpack", "onednn")


class QConfig(namedtuple("QConfig", ["activation", "weight"])):
    """Constructors (not instances) of the output and weight fake-quant modules; either may be None:
    no output fake quant (weight-only) or no weight fake quant (activation-only)."""

    __slots__ = ()

    def __new__(cls, activation, weight):
        for name, ctor in (("activation", activation), ("weight", weight)):
            if isinstance(ctor, nn.Module):
                raise TypeError(f"QConfig.{name} must be a constructor (e.g. FakeQuantize.with_args(...)), "
                                "not a module instance")
        return super().__new__(cls, activation, weight)


default_fake_quant = fq.FakeQuantize.with_args(
    observer=obs.MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8,
    qscheme=torch.per_tensor_affine, reduce_range=True)
default_weight_fake_quant = fq.FakeQuantize.with_args(
    observer=obs.MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
    qscheme=torch.per_tensor_symmetric, reduce_range=False)
default_per_channel_weight_fake_quant = fq.FakeQuantize.with_args(
    observer=obs.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
    qscheme=torch.per_channel_symmetric, reduce_range=False, ch_axis=0)
default_fused_act_fake_quant = fq.FusedMovingAvgObsFakeQuantize.with_args(
    observer=obs.MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8)
default_fused_wt_fake_quant = fq.FusedMovingAvgObsFakeQuantize.with_args(
    observer=obs.MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
    qscheme=torch.per_tensor_symmetric)
default_fused_per_channel_wt_fake_quant = fq.FusedMovingAvgObsFakeQuantize.with_args(
    observer=obs.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
    qscheme=torch.per_channel_symmetric)


def _check_backend(backend):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")


def get_default_qat_qconfig(backend="x86", version=1):
    """torch's default QAT qconfig: activations quint8 0..255 (0..127 with fbgemm / x86's reduce_range),
    weights qint8 symmetric, per channel (per tensor for qnnpack). version 1 uses the fused fake-quant module,
    version 0 the unfused FakeQuantize."""
    _check_backend(backend)
    if version not in (0, 1):
        raise ValueError(f"version must be 0 or 1, got {version!r}")
    reduce_range = backend in ("fbgemm", "x86")
    per_channel = backend != "qnnpack"
    if version == 1:
        act = fq.FusedMovingAvgObsFakeQuantize.with_args(observer=obs.MovingAverageMinMaxObserver, quant_min=0,
                                                         quant_max=255, reduce_range=reduce_range)
        weight = default_fused_per_channel_wt_fake_quant if per_channel else default_fused_wt_fake_quant
    else:
        act = fq.FakeQuantize.with_args(observer=obs.MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                        reduce_range=reduce_range)
        weight = default_per_channel_weight_fake_quant if per_channel else default_weight_fake_quant
    return QConfig(activation=act, weight=weight)


def get_qat_qconfig_nbits(activation_bits=8, weight_bits=8, per_channel=True, lsq=False):
    """Other widths: activations quint8 0..2^a-1, weights symmetric -2^(w-1)..2^(w-1)-1; fused fake quant,
    or LearnableFakeQuantize (grad scaling on) with lsq=True.

    The weight observers take each step's range (averaging_constant 1.0, not torch's 0.01): on a coarse grid
    a range that lags the weights (which QAT moves, and BN folding rescales) clamps them. On the 4-bit
    digits job this gained 0.6 points over six seeds (QAT - float -0.82 against -1.41; benchmarks/RESULTS.md)."""
    for name, bits in (("activation_bits", activation_bits), ("weight_bits", weight_bits)):
        if not (isinstance(bits, int) and 2 <= bits <= 8):
            raise ValueError(f"{name} must be an int in 2..8, got {bits!r}")
    cls, extra = (fq.LearnableFakeQuantize, dict(use_grad_scaling=True)) if lsq else (
        fq.FusedMovingAvgObsFakeQuantize, {})
    act = cls.with_args(observer=obs.MovingAverageMinMaxObserver, quant_min=0, quant_max=2**activation_bits - 1,
                        dtype=torch.quint8, **extra)
    weight_observer = obs.MovingAveragePerChannelMinMaxObserver if per_channel else obs.MovingAverageMinMaxObserver
    weight = cls.with_args(
        observer=weight_observer, **extra, quant_min=-(2 ** (weight_bits - 1)), quant_max=2 ** (weight_bits - 1) - 1,
        dtype=torch.qint8, qscheme=torch.per_channel_symmetric if per_channel else torch.per_tensor_symmetric,
        averaging_constant=1.0)
    return QConfig(activation=act, weight=weight)


def get_lsq_qat_qconfig(backend="x86", use_grad_scaling=True):
    """LSQ (learned step size): LearnableFakeQuantize on the backend's default ranges. Scale and zero point
    follow the observers until `disable_observer`, then they are learned."""
    _check_backend(backend)
    act_max = 127 if backend in ("fbgemm", "x86") else 255
    act = fq.LearnableFakeQuantize.with_args(observer=obs.MovingAverageMinMaxObserver, quant_min=0,
                                             quant_max=act_max, dtype=torch.quint8, use_grad_scaling=use_grad_scaling)
    per_channel = backend != "qnnpack"
    weight = fq.LearnableFakeQuantize.with_args(
        observer=obs.MovingAveragePerChannelMinMaxObserver if per_channel else obs.MovingAverageMinMaxObserver,
        quant_min=-128, quant_max=127, dtype=torch.qint8,
        qscheme=torch.per_channel_symmetric if per_channel else torch.per_tensor_symmetric,
        use_grad_scaling=use_grad_scaling)
    return QConfig(activation=act, weight=weight)


def get_weight_only_qat_qconfig(backend="x86"):
    """Fake-quantize weights only (the backend's default weight fake quant); activations stay float."""
    return QConfig(activation=None, weight=get_default_qat_qconfig(backend).weight)


def get_activation_only_qat_qconfig(backend="x86"):
    """Fake-quantize activations only (the backend's default activation fake quant); weights stay float."""
    return QConfig(activation=get_default_qat_qconfig(backend).activation, weight=None)


# torch.ao classes a torch qconfig may name, by qualified name, and their fakequant counterparts.
_TORCH_CLASSES = {
    "torch.ao.quantization.fake_quantize.FakeQuantize": fq.FakeQuantize,
    "torch.ao.quantization.fake_quantize.FusedMovingAvgObsFakeQuantize": fq.FusedMovingAvgObsFakeQuantize,
    "torch.ao.quantization._learnable_fake_quantize._LearnableFakeQuantize": fq.LearnableFakeQuantize,
    "torch.ao.quantization.observer.MinMaxObserver": obs.MinMaxObserver,
    "torch.ao.quantization.observer.MovingAverageMinMaxObserver": obs.MovingAverageMinMaxObserver,
    "torch.ao.quantization.observer.PerChannelMinMaxObserver": obs.PerChannelMinMaxObserver,
    "torch.ao.quantization.observer.MovingAveragePerChannelMinMaxObserver": obs.MovingAveragePerChannelMinMaxObserver,
}


def _qualname(obj):
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"


def _translate(ctor):
    """A torch.ao fake-quant / observer constructor (class, partial or torch's _PartialWrapper) rebuilt on
    fakequant's classes; other values are returned unchanged."""
    partial = getattr(ctor, "p", None)  # torch's _PartialWrapper keeps its functools.partial in .p
    if isinstance(partial, functools.partial):
        if getattr(ctor, "callable_args", None):
            raise ValueError("torch qconfigs built with with_callable_args are not supported")
        ctor = partial
    if isinstance(ctor, functools.partial):
        kwargs = {k: _translate(v) for k, v in ctor.keywords.items()}
        return functools.partial(_translate(ctor.func), *ctor.args, **kwargs)
    if isinstance(ctor, type) and ctor.__module__.startswith("torch.ao"):
        if _qualname(ctor) not in _TORCH_CLASSES:
            raise ValueError(f"qconfig names {_qualname(ctor)}, which fakequant has no counterpart for "
                             f"(supported: {', '.join(sorted(_TORCH_CLASSES))})")
        return _TORCH_CLASSES[_qualname(ctor)]
    return ctor


def to_fakequant_qconfig(qconfig):
    """A qconfig whose constructors build fakequant modules: fakequant's own pass through, torch.ao's
    (e.g. torch.ao.quantization.get_default_qat_qconfig) are translated class by class."""
    if qconfig is None or isinstance(qconfig, QConfig):
        return qconfig
    if not (hasattr(qconfig, "activation") and hasattr(qconfig, "weight")):
        raise TypeError(f"qconfig must be a QConfig (activation, weight), got {type(qconfig).__name__}")
    return QConfig(activation=_translate(qconfig.activation), weight=_translate(qconfig.weight))
