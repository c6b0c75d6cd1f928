"""fakequant.nn.quantized — int8 inference modules on plain uint8 tensors with a scale and zero point.

Activations are QTensors (data, scale, zero_point), never torch's quantized dtypes. Each weighted
module has a from_float constructor taking the float weight, bias and the exact qparams a QAT
model trained with.
"""
from . import functional
from .conv import Conv2d, ConvReLU2d
from .linear import Linear, LinearReLU
from .modules import AdaptiveAvgPool2d, DeQuantize, Flatten, MaxPool2d, QFunctional, Quantize, ReLU
from .qtensor import QTensor, quantize

__all__ = [
    "AdaptiveAvgPool2d",
    "Conv2d",
    "ConvReLU2d",
    "DeQuantize",
    "Flatten",
    "Linear",
    "LinearReLU",
    "MaxPool2d",
    "QFunctional",
    "QTensor",
    "Quantize",
    "ReLU",
    "functional",
    "quantize",
]
