"""convert(): a trained QAT model to an int8 model (fakequant.nn.quantized) with the exact scales and zero
points it trained with, BN folded from running statistics, and the same quantize primitive."""
import copy

import torch
from torch import nn

from ..nn import qat as nnqat
from ..nn import quantized as nnq
from ..nn.intrinsic import qat as nniqat
from . import stubs
from .fake_quantize import FakeQuantizeBase, LearnableFakeQuantize

_LINEAR = {nnqat.Linear: nnq.Linear, nniqat.LinearBn1d: nnq.Linear, nniqat.LinearReLU: nnq.LinearReLU}
_CONV2D = {nnqat.Conv2d: nnq.Conv2d, nniqat.ConvBn2d: nnq.Conv2d, nniqat.ConvReLU2d: nnq.ConvReLU2d,
           nniqat.ConvBnReLU2d: nnq.ConvReLU2d}


def fake_quant_qparams(fq):
    """(scale float32 tensor, zero_point int32 tensor, quant_min, quant_max) that `fq` applies now; None
    when it is not a fake-quant module (nn.Identity: no qconfig for that tensor)."""
    if not isinstance(fq, FakeQuantizeBase):
        return None
    if isinstance(fq, LearnableFakeQuantize):  # float zero point: rounded and clamped, as its forward does
        scale, zero_point = fq.calculate_qparams()
    else:
        scale, zero_point = fq.scale.detach(), fq.zero_point.detach()
    return scale.float(), zero_point.to(torch.int32), int(fq.quant_min), int(fq.quant_max)


def _output_qparams(mod):
    """The output's (scale, zero_point, quant_min, quant_max) as Python numbers, from its
    activation_post_process."""
    qp = fake_quant_qparams(getattr(mod, "activation_post_process", None))
    if qp is None:
        raise ValueError(f"convert: {type(mod).__name__} has no output fake quant (its qconfig has no activation); "
                         "an int8 model needs one")
    scale, zero_point, qmin, qmax = qp
    return dict(scale=float(scale.reshape(-1)[0]), zero_point=int(zero_point.reshape(-1)[0]), quant_min=qmin,
                quant_max=qmax)


def _weighted(mod):
    """Linear / Conv2d QAT module -> int8 module, or None when it has no int8 counterpart here."""
    kind = type(mod)
    wq = fake_quant_qparams(mod.weight_fake_quant)
    if wq is None or (kind not in _LINEAR and kind not in _CONV2D):
        return None
    weight, bias = mod.folded_weight_bias()
    w_scale, w_zp, w_min, w_max = wq
    args = dict(weight_quant_min=w_min, weight_quant_max=w_max, **_output_qparams(mod))
    if kind in _LINEAR:
        return _LINEAR[kind].from_float(weight, bias, w_scale, w_zp, **args)
    return _CONV2D[kind].from_float(weight, bias, w_scale, w_zp, stride=mod.stride, padding=mod.padding,
                                    dilation=mod.dilation, groups=mod.groups, **args)


class FloatIsland(nn.Module):
    """A module with no int8 kernel: dequantize, run it in float (weights still fake quantized), quantize
    its output with the qparams it trained with."""

    def __init__(self, module, scale, zero_point, quant_min, quant_max):
        super().__init__()
        self.module = module
        self.quant = nnq.Quantize(scale, zero_point, quant_min, quant_max)

    def forward(self, x):
        return self.quant(self.module(x.dequantize() if isinstance(x, nnq.QTensor) else x))


def _island(mod):
    qparams = _output_qparams(mod)
    float_mod = copy.deepcopy(mod)
    float_mod.activation_post_process = nn.Identity()
    float_mod._forward_hooks.clear()
    return FloatIsland(float_mod.eval(), **qparams)


def _convert_one(mod):
    """The int8 replacement of one module, or None to recurse into / keep it."""
    if isinstance(mod, stubs.QuantStub):
        return nnq.Quantize(**_output_qparams(mod))
    if isinstance(mod, stubs.DeQuantStub):
        return nnq.DeQuantize()
    if isinstance(mod, stubs.FloatFunctional):
        return nnq.QFunctional(**_output_qparams(mod))
    if isinstance(mod, nnqat.QATModule):
        return _weighted(mod) or _island(mod)
    if isinstance(getattr(mod, "activation_post_process", None), FakeQuantizeBase):
        return _island(mod)  # an observed leaf (BatchNorm, ReLU6, ...) with no int8 kernel
    if isinstance(mod, nn.Dropout):  # identity in inference
        return nn.Identity()
    if type(mod) is nn.ReLU:
        return nnq.ReLU()
    if type(mod) is nn.MaxPool2d:
        return nnq.MaxPool2d(mod.kernel_size, mod.stride, mod.padding, mod.dilation, ceil_mode=mod.ceil_mode)
    if type(mod) is nn.AdaptiveAvgPool2d:
        return nnq.AdaptiveAvgPool2d(mod.output_size)
    if type(mod) is nn.Flatten:
        return nnq.Flatten(mod.start_dim, mod.end_dim)
    return None


def _convert(module):
    for name, child in list(module.named_children()):
        new = _convert_one(child)
        if new is None:
            _convert(child)
        else:
            setattr(module, name, new)


def convert(model, inplace=False):
    """The int8 model of a QAT model prepared by prepare_qat: QuantStub -> Quantize, DeQuantStub ->
    DeQuantize, Linear / Conv2d QAT modules (with BN folded from running statistics and ReLU fused) ->
    int8 Linear / Conv2d with the weight fake quant's scales and zero points and the output fake quant's
    qparams, FloatFunctional -> QFunctional, pooling / ReLU / flatten -> their int8 forms; a module with no
    int8 kernel runs in float between a dequantize and a quantize with its trained output qparams.
    Returns the converted model in eval mode (a deep copy unless inplace), on the device the QAT model
    is on: weights are quantized on the CPU, then the int8 model moves there (CPU or CUDA). The deep copy
    is made where the model is, so a GPU model needs room for a second copy while it converts."""
    if not inplace:
        model = copy.deepcopy(model)
    device = next((t.device for t in [*model.parameters(), *model.buffers()]), torch.device("cpu"))
    model.cpu().eval()
    with torch.no_grad():
        top = _convert_one(model)
        if top is not None:
            model.to(device)  # with inplace, the caller's module stays where it was
            return top.eval().to(device)
        _convert(model)
    return model.to(device)
