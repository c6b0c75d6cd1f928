"""Test helpers: bitwise tensor comparison and hypothesis strategies for tensors and layouts."""
import math

import numpy as np
import torch
from hypothesis import strategies as st

_INT_VIEW = {torch.float32: torch.int32, torch.float64: torch.int64, torch.float16: torch.int16,
             torch.bfloat16: torch.int16}


def assert_bitwise_equal(actual: torch.Tensor, expected: torch.Tensor):
    """Same shape, dtype and bits (NaNs compare equal to NaNs)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    if not actual.is_floating_point():
        assert torch.equal(actual, expected), (actual, expected)
        return
    a, e = actual.contiguous(), expected.contiguous()
    both_nan = torch.isnan(a) & torch.isnan(e)
    ai = a.view(_INT_VIEW[a.dtype])[~both_nan]
    ei = e.view(_INT_VIEW[e.dtype])[~both_nan]
    if not torch.equal(ai, ei):
        bad = (ai != ei).nonzero()[:5].flatten()
        raise AssertionError(f"{int((ai != ei).sum())} of {a.numel()} elements differ; "
                             f"first: got {a[~both_nan][bad].tolist()} expected {e[~both_nan][bad].tolist()}")


@st.composite
def float_tensors(draw, min_dims=1, max_dims=4, max_side=9, special=True):
    """A float32 tensor of random shape whose values straddle the quantization grid, with a random
    layout: contiguous, permuted, channels_last or a strided slice (no copy is hidden in the view)."""
    ndim = draw(st.integers(min_dims, max_dims))
    shape = [draw(st.integers(1, max_side)) for _ in range(ndim)]
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    magnitude = draw(st.sampled_from([1.0, 10.0, 1000.0]))
    x = torch.randn(shape, generator=g) * magnitude
    if draw(st.booleans()):  # exact ties: multiples of half a grid step
        x = torch.round(x * 4) / 4
    if special and draw(st.booleans()):
        flat = x.view(-1)
        for v in (float("nan"), float("inf"), -float("inf"), 3e38, -3e38):
            flat[draw(st.integers(0, flat.numel() - 1))] = v
    layout = draw(st.sampled_from(["contiguous", "permuted", "channels_last", "sliced"]))
    if layout == "permuted" and ndim > 1:
        perm = draw(st.permutations(range(ndim)))
        x = x.permute(*perm).contiguous().permute(*np.argsort(perm).tolist())
    elif layout == "channels_last" and ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "sliced":
        big = torch.randn([s * 2 for s in shape], generator=g) * magnitude
        x = big[tuple(slice(None, None, 2) for _ in shape)]
    return x


# The layouts the long-row tests walk (see with_layout).
LAYOUTS = ["channels_last", "transposed", "sliced", "expanded"]


def with_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """A 4-d x as a view in one of LAYOUTS: channels_last, dims 1 and 3 swapped, a strided slice, or
    one row of it expanded (zero strides) to dim 2 of size 5."""
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "transposed":
        return x.transpose(1, 3)
    if layout == "sliced":
        return x[:, 1::2, :, 2:]
    return x[:1, :, :1, :].expand(x.shape[0], x.shape[1], 5, x.shape[3])


@st.composite
def quant_ranges(draw):
    """(quant_min, quant_max): 8-bit ones most often, up to 16 bits, sometimes a single level."""
    kind = draw(st.sampled_from(["u8", "s8", "u4", "s16", "any"]))
    if kind == "u8":
        return 0, 255
    if kind == "s8":
        return -128, 127
    if kind == "u4":
        return 0, 15
    if kind == "s16":
        return -32768, 32767
    lo = draw(st.integers(-2**15, 2**15))
    return lo, draw(st.integers(lo, min(lo + 2**16, 2**16)))


def scales(allow_zero=True):
    base = st.floats(2.0**-20, 2.0**10, allow_nan=False, allow_infinity=False, width=32)
    return st.one_of(base, st.just(0.0)) if allow_zero else base


def log_uniform_scales(n, g):
    return torch.exp(torch.empty(n).uniform_(math.log(1e-4), math.log(10.0), generator=g))
