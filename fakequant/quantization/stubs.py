"""QuantStub / DeQuantStub / QuantWrapper and FloatFunctional: where the float model enters and leaves the
quantized region, and tensor ops (add, mul, cat) whose outputs get their own fake quant.

Unlike torch (forward hooks), each calls its `activation_post_process` inside forward: an nn.Identity
until prepare_qat puts a fake-quant module there."""
import torch
from torch import Tensor, nn

from ..nn.qat.base import relu_then

__all__ = ["QuantStub", "DeQuantStub", "QuantWrapper", "FloatFunctional"]


class QuantStub(nn.Module):
    """Identity before prepare_qat; afterwards fake-quantizes the model input (int8 convert: quantize)."""

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig:
            self.qconfig = qconfig
        self.activation_post_process = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.activation_post_process(x)


class DeQuantStub(nn.Module):
    """Identity in float and QAT models (int8 convert: dequantize); never fake-quantized."""

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x: Tensor) -> Tensor:
        return x


class QuantWrapper(nn.Module):
    """module -> QuantStub in front, DeQuantStub behind."""

    def __init__(self, module: nn.Module):
        super().__init__()
        qconfig = getattr(module, "qconfig", None)
        self.quant = QuantStub(qconfig)
        self.dequant = DeQuantStub(qconfig)
        self.module = module
        self.train(module.training)

    def forward(self, x: Tensor) -> Tensor:
        return self.dequant(self.module(self.quant(x)))


class FloatFunctional(nn.Module):
    """Tensor ops as a module so their outputs can be fake-quantized: use `add`, `mul`, `cat`, `add_relu`,
    `matmul`, `mean` (observed) or `add_scalar`, `mul_scalar` (not observed, as in torch), never `forward`.
    `mean` is fakequant's addition: a pooled activation gets qparams of its own, so the int8 model rounds
    it exactly where the QAT model did (torch's eager int8 mean keeps the input's grid and drifts)."""

    def __init__(self):
        super().__init__()
        self.activation_post_process = nn.Identity()

    def forward(self, x):
        raise RuntimeError("FloatFunctional is not meant to be called; use its methods (add, mul, cat, ...)")

    def add(self, x: Tensor, y: Tensor) -> Tensor:
        return self.activation_post_process(torch.add(x, y))

    def add_scalar(self, x: Tensor, y: float) -> Tensor:
        return torch.add(x, y)

    def mul(self, x: Tensor, y: Tensor) -> Tensor:
        return self.activation_post_process(torch.mul(x, y))

    def mul_scalar(self, x: Tensor, y: float) -> Tensor:
        return torch.mul(x, y)

    def cat(self, x: list, dim: int = 0) -> Tensor:
        return self.activation_post_process(torch.cat(x, dim=dim))

    def add_relu(self, x: Tensor, y: Tensor) -> Tensor:
        return relu_then(self.activation_post_process, torch.add(x, y), inplace=True)

    def matmul(self, x: Tensor, y: Tensor) -> Tensor:
        return self.activation_post_process(torch.matmul(x, y))

    def mean(self, x: Tensor, dim, keepdim: bool = False) -> Tensor:
        return self.activation_post_process(torch.mean(x, dim, keepdim))
