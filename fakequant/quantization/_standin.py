"""Temporary stand-ins (torch's aten ops) for the fused / learnable ops until fakequant's own land in main."""
import torch


def fused_moving_avg_obs_fake_quant(x, observer_on, fake_quant_on, running_min, running_max, scale, zero_point,
                                    averaging_const, quant_min, quant_max, ch_axis, per_row_fake_quant=False,
                                    symmetric_quant=False):
    return torch.fused_moving_avg_obs_fake_quant(x, observer_on, fake_quant_on, running_min, running_max, scale,
                                                 zero_point, averaging_const, quant_min, quant_max, ch_axis,
                                                 per_row_fake_quant, symmetric_quant)


def fake_quantize_learnable_per_tensor_affine(x, scale, zero_point, quant_min, quant_max, grad_factor=1.0):
    return torch._fake_quantize_learnable_per_tensor_affine(x, scale, zero_point, quant_min, quant_max, grad_factor)


def fake_quantize_learnable_per_channel_affine(x, scale, zero_point, axis, quant_min, quant_max, grad_factor=1.0):
    return torch._fake_quantize_learnable_per_channel_affine(x, scale, zero_point, axis, quant_min, quant_max,
                                                             grad_factor)


def choose_qparams(min_t, max_t, quant_min, quant_max, symmetric):
    """The fused op's qparams rule, obtained by running that op with the observer off on a dummy input."""
    mn = min_t.detach().reshape(-1).float().clone()
    mx = max_t.detach().reshape(-1).float().clone()
    n = mn.numel()
    scale = torch.ones(n, dtype=torch.float32)
    zero_point = torch.zeros(n, dtype=torch.int32)
    off, on = torch.zeros(1, dtype=torch.long), torch.ones(1, dtype=torch.long)
    torch.fused_moving_avg_obs_fake_quant(torch.zeros(n, 1), off, on, mn, mx, scale, zero_point, 1.0,
                                          quant_min, quant_max, 0, True, symmetric)
    return scale, zero_point
