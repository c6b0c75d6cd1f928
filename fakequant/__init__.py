"""fakequant — fast fake quantization for quantization-aware training in PyTorch."""
import torch  # noqa: F401  (loads libtorch before the extension)

from . import _C
from .fused_obs import choose_qparams, fused_moving_avg_obs_fake_quant
from .lsq import fake_quantize_learnable_per_channel_affine, fake_quantize_learnable_per_tensor_affine
from .int8 import PackedWeight, int8_mm, int8_mm_packed, pack_weight
from .ops import fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine


def backend_info() -> dict:
    """Which kernels run here: the ISA per op family (after FAKEQUANT_ISA), threads, CUDA build."""
    return {
        "detected_isa": _C.detected_isa(),
        "fake_quant": _C.fake_quant_isa(),
        "lsq": _C.lsq_isa(),
        "fused_obs": _C.fused_obs_isa(),
        "int8_gemm": _C.int8_gemm_isa(),
        "int8_ops": _C.int8_ops_isa(),
        "threads": _C.num_threads(),
        "cuda_built": bool(_C.cuda_built),
        "cached_output_bytes": _C.cached_output_bytes(),
    }


def release_cached_outputs() -> int:
    """Frees the memory the CPU output cache keeps for reuse (outputs of 256 KiB or more come from it,
    so that every training step does not page-fault fresh memory; FAKEQUANT_CPU_CACHE_MB caps it,
    default 1024). Returns the bytes freed; tensors still alive keep theirs."""
    return _C.release_cached_outputs()


__all__ = [
    "PackedWeight",
    "backend_info",
    "choose_qparams",
    "fake_quantize_learnable_per_channel_affine",
    "fake_quantize_learnable_per_tensor_affine",
    "fake_quantize_per_channel_affine",
    "fake_quantize_per_tensor_affine",
    "fused_moving_avg_obs_fake_quant",
    "int8_mm",
    "int8_mm_packed",
    "pack_weight",
    "release_cached_outputs",
]

# Loaded last, and always: the QAT modules (fakequant.nn) and the workflow import each other, and only this
# order works whichever of them a user imports first.
from . import quantization  # noqa: E402,F401
