"""What every QAT module shares: weight fake quant from qconfig.weight, the output fake quant slot that
prepare_qat fills, the float-module checks of from_float, and the weight / bias convert reads."""
import torch.nn.functional as F
from torch import nn

from ..intrinsic.fused import fused_kind, is_fused


def relu_then(post, x, inplace=False):
    """post(relu(x)): fakequant's fake-quant modules take the ReLU into their own pass (forward_relu)."""
    fused = getattr(post, "forward_relu", None)
    return fused(x) if fused is not None else post(F.relu(x, inplace=inplace))


def make_fake_quant(ctor):
    """An instance from a qconfig constructor; None (weight-only / activation-only qconfigs) -> nn.Identity."""
    return nn.Identity() if ctor is None else ctor()


class QATModule:
    """Mixin for the QAT modules (after nn.Module in the MRO's subclass list, before the torch.nn base).

    Attributes convert reads: `weight_fake_quant` (calculate_qparams(), scale / zero_point), the output fake
    quant `activation_post_process` (nn.Identity when the qconfig has no activation), and
    `folded_weight_bias()`: the float weight and bias the fake-quantized weight was computed from."""

    _FLOAT_MODULE: type = None

    def _init_qat(self, qconfig):
        from ...quantization.qconfig import to_fakequant_qconfig

        if not qconfig:
            raise ValueError(f"qconfig must be provided for {type(self).__name__} (a QAT module)")
        self.qconfig = to_fakequant_qconfig(qconfig)
        self.weight_fake_quant = make_fake_quant(self.qconfig.weight)
        self.activation_post_process = nn.Identity()

    def folded_weight_bias(self):
        """(weight, bias) as float tensors, detached; BN-folding modules fold BN's running statistics in."""
        return self.weight.detach(), None if self.bias is None else self.bias.detach()

    @classmethod
    def _float_parts(cls, mod):
        """Checks mod is this class's float module (fakequant's or torch's fused container of the same name)
        with a qconfig; returns (qconfig, its submodules as a tuple)."""
        kind = fused_kind(mod) if is_fused(mod) else type(mod)
        if kind is not cls._FLOAT_MODULE:
            raise TypeError(f"{cls.__name__}.from_float needs a {cls._FLOAT_MODULE.__name__}, got {type(mod).__name__}")
        qconfig = getattr(mod, "qconfig", None)
        if not qconfig:
            raise ValueError(f"{cls.__name__}.from_float: the float module has no qconfig")
        return qconfig, tuple(mod) if is_fused(mod) else (mod,)
