"""fakequant.bn_fold — BN folding's bias for the QAT ConvBn / LinearBn modules as one C++ autograd node (CPU,
float32); the folded weight's node is _C.bn_folded_weight_fused_obs, which the fused fake-quant module calls."""
from __future__ import annotations

from . import _C


def bn_folded_bias(gamma, beta, running_mean, running_var, bias, eps):
    """beta - running_mean * sf (+ bias * sf when bias is not None), sf = gamma / sqrt(running_var + eps): the
    bias of the folded layer once BN uses running statistics, with the same value as those torch ops and
    gradients for gamma, beta and bias."""
    return _C.bn_folded_bias(gamma, beta, running_mean, running_var, bias, float(eps))
