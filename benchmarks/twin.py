"""The QAT example's network written for torch.ao (its stubs and FloatFunctional, fused by torch.ao), so
benchmarks can run torch.ao's workflow on the same float weights."""
import copy

import torch.ao.nn.quantized as tnnq
import torch.ao.quantization as tq
from torch import nn

import fakequant.quantization as fq


class TorchMean(nn.Module):
    """torch.ao's FloatFunctional has no mean: there the pooled mean stays a plain, unobserved op."""

    def mean(self, x, dim, keepdim=False):
        return x.mean(dim, keepdim)


def torch_fused_twin(model):
    """A copy of a float TinyMobileNetV2 with torch.ao's stubs, fused by torch.ao's fuse_modules_qat."""
    model = copy.deepcopy(model)
    for m in list(model.modules()):
        for name, child in list(m.named_children()):
            new = {fq.QuantStub: tq.QuantStub, fq.DeQuantStub: tq.DeQuantStub}.get(type(child))
            if type(child) is fq.FloatFunctional:
                new = TorchMean if name == "pool" else tnnq.FloatFunctional
            if new is not None:
                setattr(m, name, new())
    for m in model.modules():
        if type(m).__name__ == "ConvBNReLU":
            tq.fuse_modules_qat(m, ["0", "1", "2"], inplace=True)
        elif type(m).__name__ == "InvertedResidual":
            last = len(m.conv) - 2
            tq.fuse_modules_qat(m.conv, [str(last), str(last + 1)], inplace=True)
    return model
