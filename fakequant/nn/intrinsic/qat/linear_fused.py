"""QAT linear + relu and linear + bn1d (BN folded into the fake-quantized weight)."""
import torch.nn.functional as F
from torch import nn

from ...qat.base import relu_then
from ...qat.linear import Linear
from .. import fused as nni
from .conv_fused import BnFold

__all__ = ["LinearReLU", "LinearBn1d"]


class LinearReLU(Linear):
    """QAT Linear, then ReLU."""

    _FLOAT_MODULE = nni.LinearReLU

    def forward(self, x):
        return relu_then(self.activation_post_process, F.linear(x, self.weight_fake_quant(self.weight), self.bias),
                         inplace=True)


class LinearBn1d(BnFold, nn.Linear):
    """Linear + BatchNorm1d folded for QAT (torch.ao's LinearBn1d arguments)."""

    _FLOAT_MODULE = nni.LinearBn1d

    def __init__(self, in_features, out_features, bias=True, eps=1e-05, momentum=0.1, freeze_bn=False, qconfig=None):
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_bn(nn.BatchNorm1d, out_features, eps, momentum, freeze_bn, bias)
        self._init_qat(qconfig)

    def forward(self, x):
        return self.activation_post_process(self._bn_folded(x, F.linear))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT module sharing the fused container's linear and BN parameters and buffers."""
        def make(linear, bn, qconfig):
            return cls(linear.in_features, linear.out_features, linear.bias is not None, bn.eps, bn.momentum, False,
                       qconfig)
        return cls._from_float_bn(mod, make)
