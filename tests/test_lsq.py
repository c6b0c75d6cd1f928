"""Learnable (LSQ) fake quant against torch's _fake_quantize_learnable_* ops on every ISA path:
forward bit for bit, dX bit for bit, dScale / dZeroPoint within float summation error."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fakequant as fq
from helpers import LAYOUTS, assert_bitwise_equal, float_tensors, log_uniform_scales, with_layout

RANGES = [(-128, 127), (0, 255), (-8, 7), (0, 15), (-32768, 32767), (0, 0), (-1, 0)]


def run_lsq(op, x, scale, zp, *args, dy, grad_dtype=None):
    """Output and (dx, dscale, dzero_point) of op for upstream gradient dy."""
    x = x.detach().requires_grad_(True)
    s, z = scale.detach().clone().requires_grad_(True), zp.detach().clone().requires_grad_(True)
    y = op(x, s, z, *args)
    dx, ds, dz = torch.autograd.grad(y, (x, s, z), dy)
    return y.detach(), dx, ds, dz


def sum_bound(x, dy, scale, zp, axis, qmin, qmax, g):
    """Per-channel sums of |dScale term| and |dZeroPoint term| bounds, for summation tolerances."""
    dims = [d for d in range(x.dim()) if d != axis] if axis is not None else list(range(x.dim()))
    ady = dy.double().abs().sum(dims) if dims else dy.double().abs()
    zr = zp.double().round().clamp(qmin, qmax)
    edge = torch.maximum((qmin - zr).abs(), (qmax - zr).abs()).clamp(min=1.0)
    return ady * edge * abs(g), ady * scale.double().abs() * abs(g)


def assert_sums_close(actual, expected, bound, rel=3e-5):
    a, e = actual.double(), expected.double()
    same = (a == e) | (torch.isnan(a) & torch.isnan(e))  # also infinities and overflowed sums
    err = torch.where(same, torch.zeros_like(a), (a - e).abs())
    tol = rel * bound.reshape(err.shape) + 1e-30
    assert bool((err <= tol).all()), f"max err {err.max().item()} vs tol {tol.min().item()}: {actual} {expected}"


def make_qparams(draw, c, qmin, qmax, g):
    scale = log_uniform_scales(c, g) * draw(st.sampled_from([1.0, 0.01, 100.0]))
    zp = torch.empty(c).uniform_(qmin - 3, qmax + 3, generator=g)
    if draw(st.booleans()):  # halves: the forward rounds them to even, the per-tensor backward up
        zp = torch.round(zp * 2) / 2
    return scale, zp


def check_against_torch(x, scale, zp, axis, qmin, qmax, gf, dy):
    if axis is None:
        ours_op, torch_op, args = fq.fake_quantize_learnable_per_tensor_affine, \
            torch._fake_quantize_learnable_per_tensor_affine, (qmin, qmax, gf)
    else:
        ours_op, torch_op, args = fq.fake_quantize_learnable_per_channel_affine, \
            torch._fake_quantize_learnable_per_channel_affine, (axis, qmin, qmax, gf)
    y, dx, ds, dz = run_lsq(ours_op, x, scale, zp, *args, dy=dy)
    with torch.no_grad():
        assert_bitwise_equal(y, torch_op(x, scale, zp, *args))  # torch's forward takes every float dtype
    # torch's backward takes float32 only: compare the others with it on exact float32 copies. On a
    # 1-D input its per-channel backward fails (the sums over no dims come back 0-dim): give it 2-D.
    if axis is not None and x.dim() == 1:
        ty, tdx, tds, tdz = run_lsq(torch_op, x.float()[None], scale, zp, 1, *args[1:], dy=dy.float()[None])
        tdx = tdx[0]
    else:
        ty, tdx, tds, tdz = run_lsq(torch_op, x.float(), scale, zp, *args, dy=dy.float())
    assert_bitwise_equal(dx, tdx.to(x.dtype))
    bs, bz = sum_bound(x, dy, scale, zp, axis, qmin, qmax, gf)
    assert ds.shape == scale.shape and dz.shape == zp.shape
    assert_sums_close(ds, tds, bs)
    assert_sums_close(dz, tdz, bz)


@given(x=float_tensors(max_side=40), qr=st.sampled_from(RANGES), data=st.data())
def test_per_tensor_matches_torch(isa, x, qr, data):
    qmin, qmax = qr
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    scale, zp = make_qparams(data.draw, 1, qmin, qmax, g)
    scale = scale * x.abs().nan_to_num(0, 0, 0).max().clamp(min=1e-3) / max(qmax - qmin, 1)
    gf = data.draw(st.sampled_from([1.0, 0.5, 1 / math.sqrt(x.numel() * max(qmax, 1))]))
    dy = torch.randn(x.shape, generator=g)
    check_against_torch(x, scale, zp, None, qmin, qmax, gf, dy)


@given(x=float_tensors(max_side=40), qr=st.sampled_from(RANGES), data=st.data())
def test_per_channel_matches_torch(isa, x, qr, data):
    qmin, qmax = qr
    # torch's per-channel ops cast NaN / inf to int64: an x86 quirk both sides share.
    x = torch.nan_to_num(x, nan=0.0, posinf=1e4, neginf=-1e4)
    axis = data.draw(st.integers(0, x.dim() - 1))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    scale, zp = make_qparams(data.draw, x.shape[axis], qmin, qmax, g)
    gf = data.draw(st.sampled_from([1.0, 0.25]))
    dy = torch.randn(x.shape, generator=g)
    check_against_torch(x, scale, zp, axis, qmin, qmax, gf, dy)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@given(x=float_tensors(max_side=40, special=False), data=st.data())
def test_half_dtypes_match_torch(isa, dtype, x, data):
    x = x.to(dtype)
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    dy = torch.randn(x.shape, generator=g).to(dtype)
    s = x.float().abs().max().clamp(min=1e-3).reshape(1) / 100
    check_against_torch(x, s, torch.tensor([2.5]), None, -128, 127, 1.0, dy)
    axis = data.draw(st.integers(0, x.dim() - 1))
    scale, zp = make_qparams(data.draw, x.shape[axis], 0, 255, g)
    check_against_torch(x, scale, zp, axis, 0, 255, 1.0, dy)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_long_rows_and_grad_layouts(isa, layout):
    g = torch.Generator().manual_seed(2)
    x = with_layout(torch.randn(3, 40, 9, 37, generator=g) * 3, layout)
    dys = [torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g).transpose(0, 2).contiguous()
           .transpose(0, 2), torch.randn(1, 1, 1, 1).expand(x.shape)]
    for dy in dys:
        check_against_torch(x, torch.tensor([0.05]), torch.tensor([-3.4]), None, -128, 127, 0.7, dy)
        for axis in range(4):
            scale, zp = torch.rand(x.shape[axis], generator=g) * 0.1 + 0.01, torch.randn(x.shape[axis]) * 5
            check_against_torch(x, scale, zp, axis, -128, 127, 1.0, dy)


def test_special_values(isa):
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 0.25, 0.75, -0.25, 2.5, -0.0] * 5)
    dy = torch.linspace(-1, 1, x.numel())
    for scale in (0.5, 0.0, -0.5, 1e-30):
        check_against_torch(x, torch.tensor([scale]), torch.tensor([3.5]), None, 0, 255, 1.0, dy)
    xc = torch.nan_to_num(x, nan=0.0, posinf=1e4, neginf=-1e4).reshape(5, 10)
    check_against_torch(xc, torch.tensor([0.5, 1e-30, 2.0, 0.1, 3.0]), torch.tensor([0.5, 1.5, -2.5, 300.0, -7.0]),
                        0, -128, 127, 1.0, dy.reshape(5, 10))


def test_sums_do_not_depend_on_thread_count(isa):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 16, 40, 40, generator=g) * 2
    dy = torch.randn(x.shape, generator=g)
    cases = [(fq.fake_quantize_learnable_per_tensor_affine, torch.tensor([0.02]), torch.tensor([1.0]), ()),
             (fq.fake_quantize_learnable_per_channel_affine, torch.rand(16, generator=g) * 0.03 + 0.01,
              torch.zeros(16), (1,)),
             (fq.fake_quantize_learnable_per_channel_affine, torch.rand(40, generator=g) * 0.03 + 0.01,
              torch.zeros(40), (3,))]
    threads = torch.get_num_threads()
    try:
        for op, s, z, axis in cases:
            results = []
            for n in (1, 2, 3):
                torch.set_num_threads(n)
                results.append(run_lsq(op, x, s, z, *axis, -128, 127, 1.0, dy=dy)[2:])
            for ds, dz in results[1:]:
                assert_bitwise_equal(ds, results[0][0])
                assert_bitwise_equal(dz, results[0][1])
    finally:
        torch.set_num_threads(threads)


def ste_lsq(x, scale, zp, axis, qmin, qmax):
    """LSQ in float64 through autograd, rounding straight through and with the float32 1/scale our
    kernels use: its gradients are LSQ's formulas. Returns y and the in-range mask."""
    shape = [1] * x.dim()
    if axis is not None:
        shape[axis] = -1
    s, z = scale.reshape(shape), zp.reshape(shape)
    inv_value = (1.0 / scale.detach().float()).double().reshape(shape)
    inv = 1.0 / s + (inv_value - 1.0 / s).detach()
    t = x * inv + z
    q = t + (torch.round(t) - t).detach()
    return (torch.clamp(q, qmin, qmax) - z) * s, (q >= qmin) & (q <= qmax)


def with_grad_factor(t, gf):
    """t in value, gf * its gradient in the backward: LSQ's grad_factor."""
    return t * gf + (t - t * gf).detach()


@pytest.mark.parametrize("per_channel", [False, True])
def test_float64_gradients_match_straight_through_reference(isa, per_channel):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 6, 7, 5, generator=g, dtype=torch.float64) * 4
    dy = torch.randn(x.shape, generator=g, dtype=torch.float64)
    qmin, qmax, gf = -8, 7, 0.3
    if per_channel:
        axis, scale, zp = 1, torch.rand(6, generator=g) * 0.5 + 0.1, torch.tensor([-9.0, -2.5, 0.4, 1.5, 3.0, 7.6])
        y, dx, ds, dz = run_lsq(fq.fake_quantize_learnable_per_channel_affine, x, scale, zp, axis, qmin, qmax, gf,
                                dy=dy)
        ty = torch._fake_quantize_learnable_per_channel_affine(x, scale, zp, axis, qmin, qmax, gf)
        zp_int = zp.round().clamp(qmin, qmax)
    else:
        axis, scale, zp = None, torch.tensor([0.37]), torch.tensor([-1.7])
        y, dx, ds, dz = run_lsq(fq.fake_quantize_learnable_per_tensor_affine, x, scale, zp, qmin, qmax, gf, dy=dy)
        ty = torch._fake_quantize_learnable_per_tensor_affine(x, scale, zp, qmin, qmax, gf)
        zp_int = torch.trunc((zp + 0.5).clamp(qmin, qmax))  # torch's per-tensor backward zero point
    assert_bitwise_equal(y, ty)
    s64, z64 = scale.double().requires_grad_(True), zp_int.double().requires_grad_(True)
    ry, in_range = ste_lsq(x, with_grad_factor(s64, gf), with_grad_factor(z64, gf), axis, qmin, qmax)
    rds, rdz = torch.autograd.grad(ry, (s64, z64), dy)
    assert_bitwise_equal(dx, dy * in_range)
    bs, bz = sum_bound(x, dy, scale, zp_int, axis, qmin, qmax, gf)
    assert_sums_close(ds, rds.float(), bs, rel=1e-6)
    assert_sums_close(dz, rdz.float(), bz, rel=1e-6)


@pytest.mark.parametrize("call, error, match", [
    (lambda x: fq.fake_quantize_learnable_per_tensor_affine(x, torch.tensor([0.1]), torch.tensor([0.]), 1, 255),
     ValueError, "must contain 0"),
    (lambda x: fq.fake_quantize_learnable_per_tensor_affine(x, torch.tensor([0.1]), torch.tensor([0.]), 5, 3),
     ValueError, "quant_min"),
    (lambda x: fq.fake_quantize_learnable_per_tensor_affine(x, torch.tensor([0.1]).double(), torch.tensor([0.]),
                                                            0, 255), TypeError, "scale"),
    (lambda x: fq.fake_quantize_learnable_per_tensor_affine(x, torch.tensor([0.1]), torch.tensor([0]), 0, 255),
     TypeError, "zero_point"),
    (lambda x: fq.fake_quantize_learnable_per_tensor_affine(x, torch.tensor([0.1, 0.2]), torch.tensor([0.]), 0, 255),
     ValueError, "scale must hold one element"),
    (lambda x: fq.fake_quantize_learnable_per_tensor_affine(x, torch.tensor([0.1]), torch.tensor([float("nan")]),
                                                            0, 255), ValueError, "NaN"),
    (lambda x: fq.fake_quantize_learnable_per_channel_affine(x, torch.ones(4), torch.zeros(4), 2, 0, 255),
     ValueError, "axis"),
    (lambda x: fq.fake_quantize_learnable_per_channel_affine(x, torch.ones(4), torch.zeros(4), -1, 0, 255),
     ValueError, "axis"),
    (lambda x: fq.fake_quantize_learnable_per_channel_affine(x, torch.ones(3), torch.zeros(4), 1, 0, 255),
     ValueError, "scale must have one element per channel"),
    (lambda x: fq.fake_quantize_learnable_per_channel_affine(x, torch.ones(4), torch.zeros(4, 1), 1, 0, 255),
     ValueError, "zero_point must be a 1-D tensor"),
    (lambda x: fq.fake_quantize_learnable_per_channel_affine(x.int(), torch.ones(4), torch.zeros(4), 1, 0, 255),
     TypeError, "input"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(torch.randn(3, 4))


def test_backward_checks_grad():
    x, s, z = torch.randn(3, 4), torch.tensor([0.1]), torch.tensor([0.0])
    with pytest.raises(ValueError, match="grad must have the shape of input"):
        fq._C.lsq_per_tensor_backward(torch.randn(4, 3), x, s, z, 0, 255, 1.0)
    with pytest.raises(TypeError, match="grad must have dtype"):
        fq._C.lsq_per_tensor_backward(torch.randn(3, 4).double(), x, s, z, 0, 255, 1.0)


def test_empty_input():
    x = torch.empty(0, 4, requires_grad=True)
    s, z = torch.tensor([0.1], requires_grad=True), torch.tensor([1.0], requires_grad=True)
    y = fq.fake_quantize_learnable_per_tensor_affine(x, s, z, 0, 255)
    y.sum().backward()
    assert y.shape == x.shape and s.grad.item() == 0 and z.grad.item() == 0


def test_more_channels_than_a_block(isa):
    """Blocks grow to hold every channel of a row; channels innermost take the per-lane path."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3, 20001, generator=g) * 3
    dy = torch.randn(x.shape, generator=g)
    scale, zp = torch.rand(20001, generator=g) * 0.1 + 0.01, torch.randn(20001, generator=g) * 5
    check_against_torch(x, scale, zp, 1, -128, 127, 1.0, dy)
    check_against_torch(x.t(), scale, zp, 0, -128, 127, 1.0, dy.t())
