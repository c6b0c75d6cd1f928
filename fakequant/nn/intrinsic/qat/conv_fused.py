"""QAT conv + bn (BN folded into the fake-quantized weight), conv + bn + relu and conv + relu, 1d / 2d / 3d."""
import math

import torch
from torch import nn
from torch.nn import init

from ....quantization import _ops
from ....quantization.fake_quantize import bn_folded_weight
from ...qat.base import QATModule, relu_then
from ...qat.conv import Conv1d, Conv2d, Conv3d
from .. import fused as nni

__all__ = ["ConvBn1d", "ConvBn2d", "ConvBn3d", "ConvBnReLU1d", "ConvBnReLU2d", "ConvBnReLU3d", "ConvReLU1d",
           "ConvReLU2d", "ConvReLU3d", "BnFold", "freeze_bn_stats", "update_bn_stats"]


class BnFold(QATModule):
    """BN folding (torch.ao's ConvBn*d forward), shared by conv and linear:
        sf = bn.weight / sqrt(bn.running_var + bn.eps)
        y = bn(op(x, weight_fake_quant(W * sf)) / sf + bias)
    computed as bn(op(x, weight_fake_quant(W * sf) / sf, bias)): op is linear per output channel, so the
    1 / sf moves onto the weight (equal up to float rounding, and no pass over the activation). bn uses
    batch statistics and updates its running ones while its stats are not frozen. Once BN uses its
    running statistics (frozen, or eval mode) that expression is the folded layer itself,
        y = op(x, weight_fake_quant(W * sf), bn.bias + (bias - running_mean) * sf),
    which is what runs then (the int8 model computes the same)."""

    def _init_bn(self, bn_class, num_features, eps, momentum, freeze_bn, bias):
        self.freeze_bn = freeze_bn if self.training else True
        self.bn = bn_class(num_features, eps, momentum, True, True)
        if bias:
            self.bias = nn.Parameter(torch.empty(num_features))
        else:
            self.register_parameter("bias", None)
        self.reset_bn_parameters()
        if self.training and not freeze_bn:
            self.update_bn_stats()
        else:
            self.freeze_bn_stats()

    def reset_running_stats(self):
        self.bn.reset_running_stats()

    def reset_bn_parameters(self):
        self.bn.reset_running_stats()
        init.uniform_(self.bn.weight)
        init.zeros_(self.bn.bias)
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def update_bn_stats(self):
        self.freeze_bn = False
        self.bn.training = True
        return self

    def freeze_bn_stats(self):
        self.freeze_bn = True
        self.bn.training = False
        return self

    def train(self, mode=True):
        """A frozen BN stays in eval mode under model.train()."""
        self.training = mode
        if not self.freeze_bn:
            for module in self.children():
                module.train(mode)
        return self

    def _scale_factor(self):
        return self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)

    def _folded_bias(self, sf):
        bias = self.bn.bias - self.bn.running_mean * sf
        return bias if self.bias is None else bias + self.bias * sf

    def _bn_folded(self, x, op):
        # While BN trains: op(x, w) / sf + bias, with the per-output-channel 1 / sf applied to the (small)
        # weight instead of the output: the same value up to float rounding, no pass over the activation.
        bn, fake_quant = self.bn, self.weight_fake_quant
        live = bn.training
        fold = getattr(fake_quant, "forward_folded", None)
        args = (self.weight, bn.weight, bn.running_var, bn.eps, live)
        w = fold(*args) if fold is not None else bn_folded_weight(fake_quant, *args)
        if live:
            return bn(op(x, w, self.bias))
        return op(x, w, self._trained_folded_bias())

    def _trained_folded_bias(self):
        """_folded_bias(_scale_factor()) with gradients: one C++ node for float32 CPU parameters."""
        bn = self.bn
        parts = (bn.weight, bn.bias, bn.running_mean, bn.running_var) + (() if self.bias is None else (self.bias,))
        if all(t.is_cpu and t.dtype == torch.float32 for t in parts):
            return _ops.bn_folded_bias(bn.weight, bn.bias, bn.running_mean, bn.running_var, self.bias, bn.eps)
        return self._folded_bias(self._scale_factor())

    def folded_weight_bias(self):
        """BN folded in from its running statistics: (W * sf, bn.bias + (bias - running_mean) * sf), detached;
        W * sf is the tensor weight_fake_quant quantizes."""
        with torch.no_grad():
            sf = self._scale_factor()
            weight = self.weight * sf.reshape((-1,) + (1,) * (self.weight.dim() - 1))
            return weight.detach(), self._folded_bias(sf).detach()

    @classmethod
    def _from_float_bn(cls, mod, make):
        qconfig, parts = cls._float_parts(mod)
        bn = parts[1]
        qat = make(parts[0], bn, qconfig)
        qat.weight, qat.bias = parts[0].weight, parts[0].bias
        qat.bn.weight, qat.bn.bias = bn.weight, bn.bias
        qat.bn.running_mean, qat.bn.running_var = bn.running_mean, bn.running_var
        qat.bn.num_batches_tracked = bn.num_batches_tracked
        return qat


class _ConvBnNd(BnFold):
    """Takes torch.ao's ConvBn*d constructor arguments."""

    _CONV: type = None
    _BN: type = None
    _RELU = False  # ConvBnReLU: a ReLU before the output fake quant

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=None,
                 padding_mode="zeros", eps=1e-05, momentum=0.1, freeze_bn=False, qconfig=None):
        self._CONV.__init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, False,
                            padding_mode)
        self._init_bn(self._BN, out_channels, eps, momentum, freeze_bn, bias)
        self._init_qat(qconfig)

    def forward(self, x):
        """post(_bn_folded(x, conv)) (post: the output fake quant, after a ReLU in ConvBnReLU) as one C++ autograd
        node where it can run so (see _node_args): the same values, with the work of four nodes (folded weight,
        conv, batch norm, output fake quant) in one; the output fake quant stays outside when it does not run
        fused."""
        post = self._modules["activation_post_process"]
        args = self._node_args(x)
        if args is not None:
            post_args = getattr(post, "_fused_args", None)
            if post_args is not None and post._runs_fused(x):
                return _ops.conv_bn_node(x, *args, *post_args(), self._RELU)
            y = _ops.conv_bn_node(x, *args)
        else:
            y = self._bn_folded(x, self._conv_forward)
        return relu_then(post, y, inplace=True) if self._RELU else post(y)

    def _node_args(self, x):
        """conv_bn_node's arguments after the input, or None where the layer runs op by op: the weight's fake
        quant is not the fused one (or does not run fused), a tensor is not float32, the padding is not plain
        zeros, or BN has hooks to call. Runs on every step, so it reads the module dicts directly."""
        fake_quant, bn = self._modules["weight_fake_quant"], self._modules["bn"]
        fused_args = getattr(fake_quant, "_fused_args", None)
        weight, bn_params, bn_buffers = self._parameters["weight"], bn._parameters, bn._buffers
        gamma, running_var = bn_params["weight"], bn_buffers["running_var"]
        if (fused_args is None or not fake_quant._runs_fused(x) or self.padding_mode != "zeros"
                or isinstance(self.padding, str) or bn._forward_hooks or bn._forward_pre_hooks or running_var is None
                or not x.dtype == weight.dtype == gamma.dtype == running_var.dtype == torch.float32):
            return None
        return (weight, self._parameters["bias"], gamma, bn_params["bias"], bn_buffers["running_mean"], running_var,
                bn_buffers["num_batches_tracked"], bn.eps, bn.momentum, bn.training, self.stride, self.padding,
                self.dilation, self.groups) + fused_args()

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT module sharing the fused container's conv and BN parameters and buffers."""
        def make(conv, bn, qconfig):
            return cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode, bn.eps, bn.momentum,
                       False, qconfig)
        return cls._from_float_bn(mod, make)


class _ConvBnReLUNd(_ConvBnNd):
    _RELU = True


class ConvBn1d(_ConvBnNd, nn.Conv1d):
    """Conv1d + BatchNorm1d folded for QAT."""

    _CONV, _BN, _FLOAT_MODULE = nn.Conv1d, nn.BatchNorm1d, nni.ConvBn1d


class ConvBn2d(_ConvBnNd, nn.Conv2d):
    """Conv2d + BatchNorm2d folded for QAT."""

    _CONV, _BN, _FLOAT_MODULE = nn.Conv2d, nn.BatchNorm2d, nni.ConvBn2d


class ConvBn3d(_ConvBnNd, nn.Conv3d):
    """Conv3d + BatchNorm3d folded for QAT."""

    _CONV, _BN, _FLOAT_MODULE = nn.Conv3d, nn.BatchNorm3d, nni.ConvBn3d


class ConvBnReLU1d(_ConvBnReLUNd, nn.Conv1d):
    """Conv1d + BatchNorm1d folded, then ReLU."""

    _CONV, _BN, _FLOAT_MODULE = nn.Conv1d, nn.BatchNorm1d, nni.ConvBnReLU1d


class ConvBnReLU2d(_ConvBnReLUNd, nn.Conv2d):
    """Conv2d + BatchNorm2d folded, then ReLU."""

    _CONV, _BN, _FLOAT_MODULE = nn.Conv2d, nn.BatchNorm2d, nni.ConvBnReLU2d


class ConvBnReLU3d(_ConvBnReLUNd, nn.Conv3d):
    """Conv3d + BatchNorm3d folded, then ReLU."""

    _CONV, _BN, _FLOAT_MODULE = nn.Conv3d, nn.BatchNorm3d, nni.ConvBnReLU3d


class _ConvReLU:
    def forward(self, x):
        return relu_then(self.activation_post_process,
                         self._conv_forward(x, self.weight_fake_quant(self.weight), self.bias), inplace=True)


class ConvReLU1d(_ConvReLU, Conv1d):
    """QAT Conv1d, then ReLU."""

    _FLOAT_MODULE = nni.ConvReLU1d


class ConvReLU2d(_ConvReLU, Conv2d):
    """QAT Conv2d, then ReLU."""

    _FLOAT_MODULE = nni.ConvReLU2d


class ConvReLU3d(_ConvReLU, Conv3d):
    """QAT Conv3d, then ReLU."""

    _FLOAT_MODULE = nni.ConvReLU3d


def freeze_bn_stats(mod):
    """`model.apply(freeze_bn_stats)`: BN-folding modules keep their running statistics and use them."""
    if isinstance(mod, BnFold):
        mod.freeze_bn_stats()


def update_bn_stats(mod):
    """`model.apply(update_bn_stats)`: BN-folding modules use batch statistics and update running ones."""
    if isinstance(mod, BnFold):
        mod.update_bn_stats()
