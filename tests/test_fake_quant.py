"""fake_quantize_per_tensor_affine / _per_channel_affine: bit-exact against torch on every ISA path."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fakequant as fq
from helpers import (LAYOUTS, assert_bitwise_equal, float_tensors, log_uniform_scales, quant_ranges, scales,
                     with_layout)


def _fwd_bwd(op, x, *args, grad_seed=0):
    """Output and input gradient of op(x, *args) for a fixed random upstream gradient."""
    x = x.detach().clone().requires_grad_(True) if x.is_contiguous() else x.detach().requires_grad_(True)
    y = op(x, *args)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(grad_seed)).to(y.dtype)
    (dx,) = torch.autograd.grad(y, x, g)
    return y.detach(), dx


@given(x=float_tensors(), qr=quant_ranges(), scale=scales(), data=st.data())
def test_per_tensor_matches_torch(isa, x, qr, scale, data):
    qmin, qmax = qr
    zp = data.draw(st.integers(qmin, qmax))
    y, dx = _fwd_bwd(fq.fake_quantize_per_tensor_affine, x, scale, zp, qmin, qmax)
    ty, tdx = _fwd_bwd(torch.fake_quantize_per_tensor_affine, x, scale, zp, qmin, qmax)
    assert_bitwise_equal(y, ty)
    assert_bitwise_equal(dx, tdx)


@given(x=float_tensors(), qr=quant_ranges(), data=st.data())
def test_per_channel_matches_torch(isa, x, qr, data):
    qmin, qmax = qr
    axis = data.draw(st.integers(0, x.dim() - 1))
    c = x.shape[axis]
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    scale = log_uniform_scales(c, g)
    if data.draw(st.booleans()):  # float zero points (added before rounding, no range check)
        zp = torch.empty(c).uniform_(qmin, qmax, generator=g)
    else:
        zp = torch.randint(qmin, qmax + 1, (c,), generator=g, dtype=torch.int32)
    if data.draw(st.booleans()):  # the per-channel op's int64 cast of NaN/inf is an x86 quirk we match
        x = torch.nan_to_num(x, nan=0.0, posinf=1e3, neginf=-1e3)
    y, dx = _fwd_bwd(fq.fake_quantize_per_channel_affine, x, scale, zp, axis, qmin, qmax)
    ty, tdx = _fwd_bwd(torch.fake_quantize_per_channel_affine, x, scale, zp, axis, qmin, qmax)
    assert_bitwise_equal(y, ty)
    assert_bitwise_equal(dx, tdx)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@given(x=float_tensors(special=False), data=st.data())
def test_other_dtypes_match_torch(isa, dtype, x, data):
    x = x.to(dtype)
    scale = data.draw(scales(allow_zero=False))
    y, dx = _fwd_bwd(fq.fake_quantize_per_tensor_affine, x, scale, 3, 0, 255)
    ty, tdx = _fwd_bwd(torch.fake_quantize_per_tensor_affine, x, scale, 3, 0, 255)
    assert_bitwise_equal(y, ty)
    assert_bitwise_equal(dx, tdx)
    axis = data.draw(st.integers(0, x.dim() - 1))
    s = torch.rand(x.shape[axis]) + 0.05
    zp = torch.randint(-128, 128, (x.shape[axis],), dtype=torch.int32)
    y, dx = _fwd_bwd(fq.fake_quantize_per_channel_affine, x, s, zp, axis, -128, 127)
    ty, tdx = _fwd_bwd(torch.fake_quantize_per_channel_affine, x, s, zp, axis, -128, 127)
    assert_bitwise_equal(y, ty)
    assert_bitwise_equal(dx, tdx)


def test_special_values_per_tensor(isa):
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 0.25, 0.75, -0.25, 2.5, -0.0])
    for scale in (0.5, 0.0, -0.5, 1e-30):
        assert_bitwise_equal(fq.fake_quantize_per_tensor_affine(x, scale, 3, 0, 255),
                             torch.fake_quantize_per_tensor_affine(x, scale, 3, 0, 255))


def test_special_values_per_channel(isa):
    x = torch.tensor([[float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 0.25, 0.75, 2.5, -0.0]] * 3)
    scale, zp = torch.tensor([0.5, 0.0, 1e-30]), torch.tensor([3, 0, 255], dtype=torch.int32)
    assert_bitwise_equal(fq.fake_quantize_per_channel_affine(x, scale, zp, 0, 0, 255),
                         torch.fake_quantize_per_channel_affine(x, scale, zp, 0, 0, 255))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_and_long_rows(isa, layout):
    g = torch.Generator().manual_seed(1)
    x = with_layout(torch.randn(3, 16, 9, 13, generator=g) * 3, layout)
    for axis in range(4):
        c = x.shape[axis]
        s, zp = torch.rand(c, generator=g) + 0.01, torch.randint(0, 256, (c,), dtype=torch.int32, generator=g)
        y, dx = _fwd_bwd(fq.fake_quantize_per_channel_affine, x, s, zp, axis, 0, 255)
        ty, tdx = _fwd_bwd(torch.fake_quantize_per_channel_affine, x, s, zp, axis, 0, 255)
        assert_bitwise_equal(y, ty)
        assert_bitwise_equal(dx, tdx)
    y, dx = _fwd_bwd(fq.fake_quantize_per_tensor_affine, x, 0.05, 7, 0, 255)
    ty, tdx = _fwd_bwd(torch.fake_quantize_per_tensor_affine, x, 0.05, 7, 0, 255)
    assert_bitwise_equal(y, ty)
    assert_bitwise_equal(dx, tdx)


def test_output_keeps_input_layout():
    x = torch.randn(2, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    y = fq.fake_quantize_per_channel_affine(x, torch.ones(8), torch.zeros(8, dtype=torch.int32), 1, 0, 255)
    assert y.stride() == x.stride()


def test_tensor_qparams_overload(isa):
    x = torch.randn(4, 5) * 10
    for scale, zp in [(torch.tensor(0.1), torch.tensor(3)), (torch.tensor([0.1], dtype=torch.float64),
                      torch.tensor([3.7])), (torch.tensor([0.25]), torch.tensor([5], dtype=torch.int32))]:
        y, dx = _fwd_bwd(fq.fake_quantize_per_tensor_affine, x, scale, zp, 0, 255)
        ty, tdx = _fwd_bwd(torch.fake_quantize_per_tensor_affine, x, scale, zp, 0, 255)
        assert_bitwise_equal(y, ty)
        assert_bitwise_equal(dx, tdx)


def test_zero_dim_and_empty(isa):
    for x in (torch.tensor(1.3), torch.empty(0, 3)):
        assert_bitwise_equal(fq.fake_quantize_per_tensor_affine(x, 0.5, 0, 0, 255),
                             torch.fake_quantize_per_tensor_affine(x, 0.5, 0, 0, 255))
    x = torch.empty(0, 3)
    s, zp = torch.ones(3), torch.zeros(3, dtype=torch.int32)
    assert fq.fake_quantize_per_channel_affine(x, s, zp, 1, 0, 255).shape == (0, 3)


def test_results_do_not_depend_on_thread_count(isa):
    x = torch.randn(4, 32, 33, 31) * 4
    s, zp = torch.rand(32) + 0.01, torch.randint(0, 256, (32,), dtype=torch.int32)
    old = torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            outs.append(_fwd_bwd(fq.fake_quantize_per_channel_affine, x, s, zp, 1, 0, 255))
            outs.append(_fwd_bwd(fq.fake_quantize_per_tensor_affine, x, 0.03, 5, 0, 255))
    finally:
        torch.set_num_threads(old)
    for a, b in zip(outs[:2] * 2, outs[2:]):
        assert_bitwise_equal(a[0], b[0])
        assert_bitwise_equal(a[1], b[1])


def test_no_grad_skips_mask_and_matches():
    x = torch.randn(100, requires_grad=True)
    with torch.no_grad():
        y = fq.fake_quantize_per_tensor_affine(x, 0.1, 0, -128, 127)
    assert y.grad_fn is None
    assert_bitwise_equal(y, torch.fake_quantize_per_tensor_affine(x.detach(), 0.1, 0, -128, 127))


def test_gradient_is_straight_through_in_float64():
    """Finite differences see a step function, so check the STE gradient directly: dy where the
    unclamped quantized value lies in range, 0 elsewhere."""
    x = (torch.randn(6, 7, dtype=torch.float64) * 40).requires_grad_()
    g = torch.randn(6, 7, dtype=torch.float64)
    (dx,) = torch.autograd.grad(fq.fake_quantize_per_tensor_affine(x, 0.37, 3, -128, 127), x, g)
    q = torch.round(x.detach() * (1 / torch.tensor(0.37, dtype=torch.float32)).double()) + 3
    assert torch.equal(dx, g * ((q >= -128) & (q <= 127)))
    s = torch.tensor([0.3, 0.7, 1.1, 0.2, 0.5, 0.9])
    (dx,) = torch.autograd.grad(fq.fake_quantize_per_channel_affine(x, s, torch.zeros(6, dtype=torch.int32), 0,
                                                                    -128, 127), x, g)
    q = torch.round(x.detach() * (1 / s).double()[:, None])
    assert torch.equal(dx, g * ((q >= -128) & (q <= 127)))


BAD_PER_TENSOR = [
    (dict(quant_min=10, quant_max=5), ValueError, "quant_min"),
    (dict(zero_point=300), ValueError, "zero_point"),
    (dict(input=torch.ones(3, dtype=torch.int32)), TypeError, "input"),
    (dict(quant_min=-2**30), ValueError, "quant_min"),
]


@pytest.mark.parametrize("override,exc,word", BAD_PER_TENSOR)
def test_bad_per_tensor_inputs(override, exc, word):
    args = dict(input=torch.randn(3), scale=0.1, zero_point=0, quant_min=0, quant_max=255)
    args.update(override)
    with pytest.raises(exc, match=word):
        fq.fake_quantize_per_tensor_affine(**args)


BAD_PER_CHANNEL = [
    (dict(quant_min=10, quant_max=5), ValueError, "quant_min"),
    (dict(zero_point=torch.full((4,), 300, dtype=torch.int32)), ValueError, "zero_point"),
    (dict(zero_point=torch.zeros(4, dtype=torch.int64)), TypeError, "zero_point"),
    (dict(scale=torch.ones(4, dtype=torch.float64)), TypeError, "scale"),
    (dict(scale=torch.ones(1, 4)), ValueError, "scale"),
    (dict(scale=torch.ones(3)), ValueError, "scale"),
    (dict(zero_point=torch.zeros(5, dtype=torch.int32)), ValueError, "zero_point"),
    (dict(axis=2), ValueError, "axis"),
    (dict(axis=-1), ValueError, "axis"),
    (dict(input=torch.tensor(1.0), scale=torch.ones(1), zero_point=torch.zeros(1, dtype=torch.int32), axis=0),
     ValueError, "0-dim"),
    (dict(input=torch.ones(3, 4, dtype=torch.int64)), TypeError, "input"),
    (dict(scale=torch.ones(4, device="meta")), RuntimeError, "scale"),
]


@pytest.mark.parametrize("override,exc,word", BAD_PER_CHANNEL)
def test_bad_per_channel_inputs(override, exc, word):
    args = dict(input=torch.randn(3, 4), scale=torch.ones(4), zero_point=torch.zeros(4, dtype=torch.int32),
                axis=1, quant_min=0, quant_max=255)
    args.update(override)
    with pytest.raises(exc, match=word):
        fq.fake_quantize_per_channel_affine(**args)


def test_bad_isa_env(monkeypatch):
    monkeypatch.setenv("FAKEQUANT_ISA", "sse9")
    with pytest.raises(ValueError, match="FAKEQUANT_ISA"):
        fq.fake_quantize_per_tensor_affine(torch.randn(3), 0.1, 0, 0, 255)


def test_backend_info_reports_cap(monkeypatch):
    info = fq.backend_info()
    assert info["threads"] >= 1 and info["fake_quant"] in ("scalar", "avx2", "avx512")
    monkeypatch.setenv("FAKEQUANT_ISA", "scalar")
    assert fq.backend_info()["fake_quant"] == "scalar"
