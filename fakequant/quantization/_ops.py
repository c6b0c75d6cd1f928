"""The one import point for the fakequant ops the quantization modules run."""
from fakequant import (choose_qparams, fake_quantize_learnable_per_channel_affine,
                       fake_quantize_learnable_per_tensor_affine, fake_quantize_per_channel_affine,
                       fake_quantize_per_tensor_affine, fused_moving_avg_obs_fake_quant)
from fakequant.bn_fold import bn_folded_bias, bn_folded_weight_fake_quant
from fakequant.fused_obs import fused_moving_avg_obs_fake_quant_relu

# The fused rule's floor on the scale (fbgemm's SMALL_SCALE_THRESHOLD, 6.1e-5 as a float32).
KERNEL_MIN_SCALE = 6.0999998822808266e-05

__all__ = ["KERNEL_MIN_SCALE", "bn_folded_bias", "bn_folded_weight_fake_quant", "choose_qparams",
           "fake_quantize_learnable_per_channel_affine", "fake_quantize_learnable_per_tensor_affine",
           "fake_quantize_per_channel_affine", "fake_quantize_per_tensor_affine", "fused_moving_avg_obs_fake_quant",
           "fused_moving_avg_obs_fake_quant_relu"]
