"""The CPU output cache: large outputs reuse freed blocks, keep their layout, resize and release."""
import os
import subprocess
import sys
from pathlib import Path

import torch

import fakequant
from fakequant import _C


def big(shape=(8, 64, 32, 32)):
    return torch.randn(shape)


def test_freed_output_block_serves_the_next_output_of_its_size():
    x = big()
    y = fakequant.fake_quantize_per_tensor_affine(x, 0.1, 0, -128, 127)
    ptr = y.data_ptr()
    del y
    assert _C.cached_output_bytes() >= x.nbytes
    y2 = fakequant.fake_quantize_per_tensor_affine(x, 0.1, 0, -128, 127)
    assert y2.data_ptr() == ptr
    assert torch.equal(y2, torch.fake_quantize_per_tensor_affine(x, 0.1, 0, -128, 127))


def test_cached_outputs_keep_layout_and_resize_like_any_tensor():
    x = big().contiguous(memory_format=torch.channels_last)
    y = fakequant.fake_quantize_per_tensor_affine(x, 0.1, 0, -128, 127)
    assert y.stride() == x.stride()
    xg = x.clone().requires_grad_()
    fakequant.fake_quantize_per_tensor_affine(xg, 0.1, 0, -128, 127).sum().backward()
    assert xg.grad.stride() == x.stride()
    y.resize_(2 * y.numel())  # the storage grows through the same allocator
    y.fill_(1.0)
    assert float(y.sum()) == 2 * x.numel()


def test_small_outputs_use_torchs_allocator_and_release_frees_the_cache():
    before = _C.cached_output_bytes()
    y = fakequant.fake_quantize_per_tensor_affine(torch.randn(10), 0.1, 0, -128, 127)
    del y
    assert _C.cached_output_bytes() == before
    fakequant.fake_quantize_per_tensor_affine(big(), 0.1, 0, -128, 127)
    assert _C.cached_output_bytes() > 0
    assert fakequant.release_cached_outputs() > 0
    assert _C.cached_output_bytes() == 0
    assert fakequant.backend_info()["cached_output_bytes"] == 0


def run_with_cache_limit(mb: int, code: str) -> str:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "FAKEQUANT_CPU_CACHE_MB": str(mb),
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    prelude = "import torch, fakequant; from fakequant import _C; fq = fakequant.fake_quantize_per_tensor_affine; "
    out = subprocess.run([sys.executable, "-c", prelude + code], env=env, capture_output=True, text=True,
                         check=True, cwd=root)
    return out.stdout.strip()


def test_cache_limit_from_the_environment():
    assert run_with_cache_limit(0, "y = fq(torch.randn(1 << 20), 0.1, 0, -128, 127); del y; "
                                   "print(_C.cached_output_bytes())") == "0"


def test_a_full_cache_evicts_sizes_no_longer_asked_for():
    # 6 MB blocks of two sizes under an 8 MB cap: the second size evicts the first instead of being refused.
    code = ("a = fq(torch.randn(3 << 19), 0.1, 0, -128, 127); del a; first = _C.cached_output_bytes(); "
            "b = fq(torch.randn((3 << 19) + (1 << 16)), 0.1, 0, -128, 127); del b; "
            "print(first, _C.cached_output_bytes())")
    first, after = map(int, run_with_cache_limit(8, code).split())
    assert first >= 6 << 20 and after > first
