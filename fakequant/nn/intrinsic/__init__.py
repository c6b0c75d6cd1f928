"""Fused float containers (fuse_modules' output); their QAT versions are in fakequant.nn.intrinsic.qat."""
from .fused import (BNReLU2d, BNReLU3d, ConvBn1d, ConvBn2d, ConvBn3d, ConvBnReLU1d, ConvBnReLU2d, ConvBnReLU3d,
                    ConvReLU1d, ConvReLU2d, ConvReLU3d, LinearBn1d, LinearReLU)

__all__ = ["BNReLU2d", "BNReLU3d", "ConvBn1d", "ConvBn2d", "ConvBn3d", "ConvBnReLU1d", "ConvBnReLU2d",
           "ConvBnReLU3d", "ConvReLU1d", "ConvReLU2d", "ConvReLU3d", "LinearBn1d", "LinearReLU"]
