"""fakequant.quantization — the eager QAT workflow of torch.ao.quantization on fakequant's kernels:
observers, fake-quant modules, qconfigs, fusion, prepare_qat and the switches used while training."""
from ..nn.intrinsic.qat import freeze_bn_stats, update_bn_stats
from .convert import FloatIsland, convert, fake_quant_qparams
from .fake_quantize import (FakeQuantize, FakeQuantizeBase, FusedMovingAvgObsFakeQuantize, LearnableFakeQuantize,
                            disable_fake_quant, disable_observer, enable_fake_quant, enable_observer)
from .fuse import fuse_known_modules, fuse_modules, fuse_modules_qat, get_fuser_method
from .observer import (MinMaxObserver, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
                       ObserverBase, PerChannelMinMaxObserver, qparams)
from .prepare import get_default_qat_module_mappings, prepare_qat, propagate_qconfig_, swap_module
from .qconfig import (BACKENDS, QConfig, default_fake_quant, default_fused_act_fake_quant,
                      default_fused_per_channel_wt_fake_quant, default_fused_wt_fake_quant,
                      default_per_channel_weight_fake_quant, default_weight_fake_quant,
                      get_activation_only_qat_qconfig, get_default_qat_qconfig, get_lsq_qat_qconfig,
                      get_qat_qconfig_nbits, get_weight_only_qat_qconfig, to_fakequant_qconfig)
from .stubs import DeQuantStub, FloatFunctional, QuantStub, QuantWrapper

__all__ = [
    "BACKENDS", "FloatIsland", "convert", "fake_quant_qparams", "DeQuantStub", "FakeQuantize", "FakeQuantizeBase", "FloatFunctional", "FusedMovingAvgObsFakeQuantize",
    "LearnableFakeQuantize", "MinMaxObserver", "MovingAverageMinMaxObserver", "MovingAveragePerChannelMinMaxObserver",
    "ObserverBase", "PerChannelMinMaxObserver", "QConfig", "QuantStub", "QuantWrapper", "default_fake_quant",
    "default_fused_act_fake_quant", "default_fused_per_channel_wt_fake_quant", "default_fused_wt_fake_quant",
    "default_per_channel_weight_fake_quant", "default_weight_fake_quant", "disable_fake_quant", "disable_observer",
    "enable_fake_quant", "enable_observer", "freeze_bn_stats", "fuse_known_modules", "fuse_modules",
    "fuse_modules_qat", "get_activation_only_qat_qconfig", "get_default_qat_module_mappings",
    "get_default_qat_qconfig", "get_fuser_method", "get_lsq_qat_qconfig", "get_qat_qconfig_nbits",
    "get_weight_only_qat_qconfig", "prepare_qat", "propagate_qconfig_", "qparams", "swap_module",
    "to_fakequant_qconfig", "update_bn_stats",
]
