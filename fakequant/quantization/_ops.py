"""The one import point for the fakequant ops the quantization modules run."""
from fakequant import (choose_qparams, fake_quantize_learnable_per_channel_affine,
                       fake_quantize_learnable_per_tensor_affine, fake_quantize_per_channel_affine,
                       fake_quantize_per_tensor_affine, fused_moving_avg_obs_fake_quant)
from fakequant._C import bn_folded_weight_fused_obs as bn_folded_weight_node
from fakequant._C import conv_bn_fused_obs as conv_bn_node
from fakequant._C import fused_obs_fake_quant_autograd as fused_obs_node
from fakequant._C import lsq_module_forward
from fakequant.bn_fold import bn_folded_bias
from fakequant.fused_obs import fused_moving_avg_obs_fake_quant_relu

# The fused rule's floor on the scale (fbgemm's SMALL_SCALE_THRESHOLD, 6.1e-5 as a float32).
KERNEL_MIN_SCALE = 6.0999998822808266e-05

# fused_obs_node (fused_moving_avg_obs_fake_quant's arguments), bn_folded_weight_node (weight, gamma,
# running_var, eps, divide, then the same) and conv_bn_node (a QAT ConvBn layer, see _ConvBnNd._node_args) are
# the CPU autograd nodes themselves: the fused fake-quant module's forward and forward_folded and the ConvBn
# modules' forward, run for every module on every step, call them with no Python wrapper in between; so does
# LearnableFakeQuantize's forward with lsq_module_forward.

__all__ = ["KERNEL_MIN_SCALE", "bn_folded_bias", "bn_folded_weight_node", "choose_qparams", "conv_bn_node",
           "fake_quantize_learnable_per_channel_affine", "fake_quantize_learnable_per_tensor_affine",
           "fake_quantize_per_channel_affine", "fake_quantize_per_tensor_affine", "fused_moving_avg_obs_fake_quant",
           "fused_moving_avg_obs_fake_quant_relu", "fused_obs_node", "lsq_module_forward"]
