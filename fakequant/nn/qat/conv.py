"""QAT Conv1d / Conv2d / Conv3d: convolution with the fake-quantized weight, then the output fake quant."""
from torch import nn

from .base import QATModule


class _ConvNd(QATModule):
    """Takes the torch.nn conv's constructor arguments plus qconfig (keyword)."""

    _CONV: type = None

    def __init__(self, *args, qconfig=None, **kwargs):
        self._CONV.__init__(self, *args, **kwargs)
        self._init_qat(qconfig)

    def forward(self, x):
        return self.activation_post_process(self._conv_forward(x, self.weight_fake_quant(self.weight), self.bias))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT module sharing mod's parameters (mod: a conv, or a fused conv + relu for ConvReLU)."""
        qconfig, parts = cls._float_parts(mod)
        conv = parts[0]
        qat = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                  dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
                  padding_mode=conv.padding_mode, qconfig=qconfig, device=conv.weight.device,
                  dtype=conv.weight.dtype)
        qat.weight, qat.bias = conv.weight, conv.bias
        return qat


class Conv1d(_ConvNd, nn.Conv1d):
    """nn.Conv1d with weight fake quant."""

    _CONV = _FLOAT_MODULE = nn.Conv1d


class Conv2d(_ConvNd, nn.Conv2d):
    """nn.Conv2d with weight fake quant (torch.ao.nn.qat.Conv2d)."""

    _CONV = _FLOAT_MODULE = nn.Conv2d


class Conv3d(_ConvNd, nn.Conv3d):
    """nn.Conv3d with weight fake quant (torch.ao.nn.qat.Conv3d)."""

    _CONV = _FLOAT_MODULE = nn.Conv3d
