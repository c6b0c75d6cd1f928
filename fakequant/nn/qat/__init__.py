"""QAT versions of torch.nn layers: weight fake quant in forward, output fake quant after prepare_qat."""
from .base import QATModule
from .conv import Conv1d, Conv2d, Conv3d
from .linear import Linear

__all__ = ["QATModule", "Conv1d", "Conv2d", "Conv3d", "Linear"]
