"""fakequant.int8 — exact int8 matrix products: int8_mm, and the requantizing GEMM with its weight forms."""
from __future__ import annotations

from typing import NamedTuple

import torch

from . import _C
from .ops import _kernel


class PackedWeight(NamedTuple):
    """An int8 weight [n, k] in the kernels' blocked layout (see csrc/cpu/int8_gemm.h), packed once
    and reused by every product with it."""

    data: torch.Tensor    # packed bytes (int8)
    colsum: torch.Tensor  # int32 sum over k of each column, zero padded
    n: int
    k: int
    wmin: int             # value range (the AVX2 kernel checks int16 saturation against it)
    wmax: int


def pack_weight(weight: torch.Tensor) -> PackedWeight:
    """Packs an int8 weight [N, K] (nn.Linear layout, any strides)."""
    _check_tensor(weight, "weight")
    data, colsum, wmin, wmax = _C.int8_pack_weight(weight)
    return PackedWeight(data, colsum, weight.shape[0], weight.shape[1], wmin, wmax)


def prepare_weight(weight: torch.Tensor):
    """An int8 weight [N, K] in the form int8_gemm takes on its device: packed on the CPU, as it
    is on CUDA (the tensor-core kernel reads plain rows)."""
    _check_tensor(weight, "weight")
    return weight if weight.device.type == "cuda" else pack_weight(weight)


def int8_gemm(input: torch.Tensor, packed, input_zero_point: int, epilogue, out=None) -> torch.Tensor:
    """epilogue(sum_k (input[m, k] - input_zero_point) * (w[n, k] - w_zp[n])) with a
    _C.Int8Epilogue; input is uint8 or int8 [M, K] with any strides, packed the weight from
    prepare_weight (a PackedWeight on the CPU, the int8 tensor on CUDA)."""
    _check_tensor(input, "input")
    if input.device.type == "cuda":
        y = _kernel("int8_gemm", input)(input, packed, input_zero_point, epilogue)
        return y if out is None else out.copy_(y)
    if not isinstance(packed, PackedWeight):
        raise TypeError(f"fakequant: packed must be a PackedWeight (from pack_weight), got {type(packed).__name__}")
    return _C.int8_gemm(input, packed.data, packed.colsum, packed.n, packed.k, packed.wmin, packed.wmax,
                        input_zero_point, epilogue, out)


_RAW = _C.Int8Epilogue()  # int32 output, no zero points


def int8_mm_packed(input: torch.Tensor, packed: PackedWeight) -> torch.Tensor:
    """input.long() @ w.long().T as int32 for a packed int8 weight w [N, K]; exact for every value."""
    return int8_gemm(input, packed, 0, _RAW)


def int8_mm(input: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """input (uint8 or int8 [M, K], any strides) @ weight.T (int8 [N, K]) as int32 [M, N], exactly
    input.long() @ weight.long().T. Pack the weight once with pack_weight for repeated products."""
    _check_tensor(input, "input")
    if input.device.type == "cuda":
        return _kernel("int8_mm", input)(input, weight)
    return int8_mm_packed(input, pack_weight(weight))


def _check_tensor(t, name):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"fakequant: {name} must be a torch.Tensor, got {type(t).__name__}")
