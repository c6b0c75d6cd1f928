"""fakequant.fused_obs — the fused moving-average observer + fake quant (torch.fused_moving_avg_obs_fake_quant)."""
from __future__ import annotations

import torch

from . import _C
from .ops import _apply


def fused_moving_avg_obs_fake_quant(input, observer_on, fake_quant_on, running_min, running_max, scale,
                                    zero_point, averaging_const, quant_min, quant_max, ch_axis,
                                    per_row_fake_quant=False, symmetric_quant=False):
    """Same as torch.fused_moving_avg_obs_fake_quant: when observer_on, running_min / running_max take a
    moving-average step toward input's min / max (per channel of ch_axis when per_row_fake_quant, any
    axis); when fake_quant_on, scale / zero_point are chosen from them (see choose_qparams) and input
    is fake-quantized with them, else returned unchanged. All four buffers are updated in place."""
    args = (observer_on, fake_quant_on, running_min, running_max, scale, zero_point, float(averaging_const),
            quant_min, quant_max, ch_axis, bool(per_row_fake_quant), bool(symmetric_quant))
    return _apply("fused_obs_fake_quant", input, *args)


def fused_moving_avg_obs_fake_quant_relu(input, observer_on, fake_quant_on, running_min, running_max, scale,
                                         zero_point, averaging_const, quant_min, quant_max, ch_axis,
                                         per_row_fake_quant=False, symmetric_quant=False):
    """fused_moving_avg_obs_fake_quant(torch.relu(input), ...) with the ReLU inside the kernel (CPU, fake quant
    on): the same output and buffer updates without a ReLU pass either way; the gradient passes where
    input > 0 and its quantized value is in range. Elsewhere it runs torch.relu, then the fused op."""
    args = (observer_on, fake_quant_on, running_min, running_max, scale, zero_point, float(averaging_const),
            quant_min, quant_max, ch_axis, bool(per_row_fake_quant), bool(symmetric_quant))
    if input.is_cuda or not int(fake_quant_on):
        return fused_moving_avg_obs_fake_quant(torch.relu(input), *args)
    return _C.fused_obs_fake_quant_autograd(input, *args, True)


def choose_qparams(min_val, max_val, quant_min, quant_max, symmetric=False):
    """Per element of min_val / max_val, the (scale float32, zero_point int32) the fused observer
    chooses: fbgemm's ChooseQuantizationParams, symmetric meaning its preserve_sparsity."""
    return _C.choose_qparams(min_val, max_val, quant_min, quant_max, symmetric)
