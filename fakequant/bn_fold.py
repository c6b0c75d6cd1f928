"""fakequant.bn_fold — BN folding's weight and bias for the QAT ConvBn / LinearBn modules, each as one C++
autograd node (CPU, float32)."""
from __future__ import annotations

from . import _C


def bn_folded_weight_fake_quant(weight, gamma, running_var, eps, divide, observer_on, fake_quant_on, running_min,
                                running_max, scale, zero_point, averaging_const, quant_min, quant_max, ch_axis,
                                per_row_fake_quant=False, symmetric_quant=False):
    """fused_moving_avg_obs_fake_quant of weight * sf, divided by sf again when divide (BN still normalises
    with batch statistics), for sf = gamma / sqrt(running_var + eps) per output channel (dim 0); gradients
    reach weight and gamma. The arguments after divide are the fused op's."""
    return _C.bn_folded_weight_fused_obs(weight, gamma, running_var, float(eps), bool(divide), observer_on,
                                         fake_quant_on, running_min, running_max, scale, zero_point,
                                         float(averaging_const), quant_min, quant_max, ch_axis,
                                         bool(per_row_fake_quant), bool(symmetric_quant))


def bn_folded_bias(gamma, beta, running_mean, running_var, bias, eps):
    """beta - running_mean * sf (+ bias * sf when bias is not None), sf = gamma / sqrt(running_var + eps): the
    bias of the folded layer once BN uses running statistics, with the same value as those torch ops and
    gradients for gamma, beta and bias."""
    return _C.bn_folded_bias(gamma, beta, running_mean, running_var, bias, float(eps))
