"""fakequant.ops — drop-in fake-quant ops over the fakequant._C kernels (C++ autograd nodes on the CPU)."""
from __future__ import annotations

import torch

from . import _C


def _kernel(name: str, x: torch.Tensor):
    """The _C function `name` for x's device: `cuda_<name>` for CUDA tensors, `name` otherwise."""
    if x.device.type != "cuda":
        return getattr(_C, name)
    if not _C.cuda_built:
        raise RuntimeError(
            "fakequant: input is a CUDA tensor but this fakequant build has no CUDA kernels "
            "(rebuild with a CUDA-enabled torch and nvcc on the PATH)"
        )
    return getattr(_C, "cuda_" + name)


def _need_mask(x: torch.Tensor) -> bool:
    return x.requires_grad and torch.is_grad_enabled()


class _MaskedFakeQuant(torch.autograd.Function):
    """CUDA: forward runs a kernel that also writes a one-bit-per-element mask; backward is grad * mask, or
    grad itself where the kernel returned no mask (the gradient passes everywhere)."""

    @staticmethod
    def forward(ctx, x, kernel, *args):
        y, mask, order = kernel(x, *args, True)
        ctx.save_for_backward(mask)
        ctx.order = order
        ctx.nargs = len(args)
        return y

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        dx = grad if mask is None else _kernel("mask_grad", grad)(grad, mask, ctx.order)
        return (dx, None) + (None,) * ctx.nargs


def _apply(name: str, x: torch.Tensor, *args):
    """The fake-quant op `name` on x: on the CPU `_C.<name>_autograd`, a C++ autograd node (backward:
    grad * mask); on CUDA the kernel under _MaskedFakeQuant."""
    if x.device.type != "cuda":
        return getattr(_C, name + "_autograd")(x, *args)
    kernel = _kernel(name, x)
    if _need_mask(x):
        return _MaskedFakeQuant.apply(x, kernel, *args)
    return kernel(x, *args, False)[0]


def fake_quantize_per_tensor_affine(input, scale, zero_point, quant_min, quant_max):
    """Same as torch.fake_quantize_per_tensor_affine (float or tensor scale / zero_point)."""
    if isinstance(scale, torch.Tensor) or isinstance(zero_point, torch.Tensor):
        if not isinstance(scale, torch.Tensor):
            scale = torch.tensor([scale], dtype=torch.float32, device=input.device)
        if not isinstance(zero_point, torch.Tensor):
            zero_point = torch.tensor([zero_point], dtype=torch.int32, device=input.device)
        return _apply("fake_quant_per_tensor_tq", input, scale, zero_point, quant_min, quant_max)
    return _apply("fake_quant_per_tensor", input, float(scale), int(zero_point), quant_min, quant_max)


def fake_quantize_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max):
    """Same as torch.fake_quantize_per_channel_affine."""
    return _apply("fake_quant_per_channel", input, scale, zero_point, axis, quant_min, quant_max)
