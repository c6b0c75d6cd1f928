"""QAT Linear: F.linear on the fake-quantized weight, then the output fake quant."""
import torch.nn.functional as F
from torch import nn

from .base import QATModule


class Linear(QATModule, nn.Linear):
    """nn.Linear with weight fake quant (torch.ao.nn.qat.Linear)."""

    _FLOAT_MODULE = nn.Linear

    def __init__(self, in_features, out_features, bias=True, qconfig=None, device=None, dtype=None):
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        self._init_qat(qconfig)

    def forward(self, x):
        return self.activation_post_process(F.linear(x, self.weight_fake_quant(self.weight), self.bias))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT module sharing mod's parameters."""
        qconfig, parts = cls._float_parts(mod)
        linear = parts[0]
        qat = cls(linear.in_features, linear.out_features, linear.bias is not None, qconfig=qconfig,
                  device=linear.weight.device, dtype=linear.weight.dtype)
        qat.weight, qat.bias = linear.weight, linear.bias
        return qat
