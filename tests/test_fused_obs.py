"""fused_moving_avg_obs_fake_quant and choose_qparams against torch on every ISA path: outputs and
gradients bit for bit, buffers (running min / max, scale, zero point) equal after every step."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fakequant as fq
from helpers import LAYOUTS, assert_bitwise_equal, float_tensors, with_layout

RANGES = [(0, 255), (0, 127), (-128, 127), (0, 15), (-8, 7), (-32768, 32767), (3, 9)]
INF = float("inf")


BUFFERS = ("running_min", "running_max", "scale", "zero_point")


def assert_same_buffers(ours, theirs, qparams_set=True):
    """qparams_set False: torch's per-channel scale / zero point are still uninitialised memory."""
    for name, a, b in list(zip(BUFFERS, ours, theirs))[:None if qparams_set else 2]:
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{name}: {m}\n{a}\n{b}")


def per_tensor_buffers(zero_dim=True):
    mk = (lambda v: torch.tensor(v)) if zero_dim else (lambda v: torch.tensor([v]))
    return [mk(INF), mk(-INF), torch.tensor([1.0]), torch.tensor([0], dtype=torch.int32)]


def per_channel_buffers():
    return [torch.tensor([]), torch.tensor([]), torch.tensor([1.0]), torch.tensor([0], dtype=torch.int32)]


def step(op, x, flags, buffers, args, dy):
    """One call with input gradient; returns (y, dx)."""
    x = x.detach().requires_grad_(True)
    y = op(x, torch.tensor([flags[0]]), torch.tensor([flags[1]]), *buffers, *args)
    (dx,) = torch.autograd.grad(y, x, dy)
    return y.detach(), dx


def channels_first_2d(t, axis):
    """t as torch's per-channel fused op takes it everywhere (axis 0 of a 2-D tensor)."""
    return t.movedim(axis, 0).reshape(t.shape[axis], -1)


def from_channels_first_2d(t, like, axis):
    return t.reshape(like.movedim(axis, 0).shape).movedim(0, axis)


def shape_input(draw, x):
    kind = draw(st.sampled_from(["plain", "plain", "tiny", "zeros", "positive", "negative", "constant"]))
    if kind == "tiny":
        x = x * 1e-7
    elif kind == "zeros":
        x = x * 0
    elif kind == "positive":
        x = x.abs()
    elif kind == "negative":
        x = -x.abs()
    elif kind == "constant":
        x = torch.full_like(x, draw(st.sampled_from([3.0, -2e-6, 1e-3])))
    return x


@given(x=float_tensors(max_side=24), qr=st.sampled_from(RANGES), data=st.data())
def test_per_tensor_matches_torch(isa, x, qr, data):
    qmin, qmax = qr
    sym = data.draw(st.booleans())
    c = data.draw(st.sampled_from([0.01, 0.5, 1.0, 0.0]))
    ours, theirs = per_tensor_buffers(data.draw(st.booleans())), None
    theirs = [b.clone() for b in ours]
    args = (c, qmin, qmax, -1, False, sym)
    for i in range(3):
        xi = shape_input(data.draw, x * (i + 1))
        flags = (data.draw(st.sampled_from([1, 1, 0])), data.draw(st.sampled_from([1, 1, 0])))
        dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
        y, dx = step(fq.fused_moving_avg_obs_fake_quant, xi, flags, ours, args, dy)
        ty, tdx = step(torch.fused_moving_avg_obs_fake_quant, xi, flags, theirs, args, dy)
        assert_bitwise_equal(y, ty)
        assert_bitwise_equal(dx, tdx)
        assert_same_buffers(ours, theirs)


def check_per_channel(ours_op, torch_op, x, qr, data):
    """Three calls of ours_op against torch_op along a random axis (torch's on channels_first_2d(x))."""
    qmin, qmax = qr
    sym = data.draw(st.booleans())
    axis = data.draw(st.integers(0, x.dim() - 1))
    ours, theirs = per_channel_buffers(), per_channel_buffers()
    quantized = False
    for i in range(3):
        xi = shape_input(data.draw, x * (i + 1))
        flags = (data.draw(st.sampled_from([1, 1, 0])), data.draw(st.sampled_from([1, 1, 0])))
        quantized |= flags[1] == 1
        dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
        y, dx = step(ours_op, xi, flags, ours, (0.25, qmin, qmax, axis, True, sym), dy)
        ty, tdx = step(torch_op, channels_first_2d(xi, axis), flags, theirs, (0.25, qmin, qmax, 0, True, sym),
                       channels_first_2d(dy, axis))
        assert_bitwise_equal(y, from_channels_first_2d(ty, x, axis))
        assert_bitwise_equal(dx, from_channels_first_2d(tdx, x, axis))
        assert_same_buffers(ours, theirs, quantized)


@given(x=float_tensors(max_side=24, special=False), qr=st.sampled_from(RANGES), data=st.data())
def test_per_channel_matches_torch(isa, x, qr, data):
    """torch observes per channel along axis 0 of 2-D or wider inputs only: other layouts are
    checked against it on channels_first_2d(x), which must give the same buffers and output."""
    check_per_channel(fq.fused_moving_avg_obs_fake_quant, torch.fused_moving_avg_obs_fake_quant, x, qr, data)


def torch_fake_quant(x, dy, scale, zp, axis, qmin, qmax):
    """torch's fake quant of x with given qparams: (y, dx)."""
    x = x.detach().requires_grad_(True)
    if axis is None:
        y = torch.fake_quantize_per_tensor_affine(x, scale.item(), int(zp.item()), qmin, qmax)
    else:
        y = torch.fake_quantize_per_channel_affine(x, scale, zp, axis, qmin, qmax)
    (dx,) = torch.autograd.grad(y, x, dy)
    return y.detach(), dx


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@given(x=float_tensors(max_side=24, special=False), data=st.data())
def test_other_dtypes(isa, dtype, x, data):
    """torch's fused op takes float32 only: buffers must equal its on the exact float32 copy, output
    and gradient torch's fake quant of the input's dtype with those qparams."""
    x = x.to(dtype)
    sym = data.draw(st.booleans())
    dy = torch.randn(x.shape).to(dtype)
    axis = data.draw(st.integers(0, x.dim() - 1))
    for per_channel in (False, True):
        ours, theirs = (per_channel_buffers(), per_channel_buffers()) if per_channel else \
            (per_tensor_buffers(), per_tensor_buffers())
        a = axis if per_channel else -1
        y, dx = step(fq.fused_moving_avg_obs_fake_quant, x, (1, 1), ours, (0.01, -128, 127, a, per_channel, sym), dy)
        t_axis = 0 if per_channel else -1
        xf, dyf = (channels_first_2d(x.float(), axis), channels_first_2d(dy.float(), axis)) if per_channel else \
            (x.float(), dy.float())
        step(torch.fused_moving_avg_obs_fake_quant, xf, (1, 1), theirs, (0.01, -128, 127, t_axis, per_channel, sym),
             dyf)
        assert_same_buffers(ours, theirs)
        ty, tdx = torch_fake_quant(x, dy, ours[2], ours[3], axis if per_channel else None, -128, 127)
        assert_bitwise_equal(y, ty)
        assert_bitwise_equal(dx, tdx)


def test_layouts_and_long_rows(isa):
    g = torch.Generator().manual_seed(5)
    base = torch.randn(3, 40, 9, 37, generator=g) * 3
    for x in (with_layout(base, layout) for layout in LAYOUTS):
        dy = torch.randn(x.shape, generator=g)
        ours, theirs = per_tensor_buffers(), per_tensor_buffers()
        y, dx = step(fq.fused_moving_avg_obs_fake_quant, x, (1, 1), ours, (0.01, 0, 255, -1, False, False), dy)
        ty, tdx = step(torch.fused_moving_avg_obs_fake_quant, x, (1, 1), theirs, (0.01, 0, 255, -1, False, False), dy)
        assert_bitwise_equal(y, ty)
        assert_bitwise_equal(dx, tdx)
        for axis in range(4):
            ours, theirs = per_channel_buffers(), per_channel_buffers()
            y, dx = step(fq.fused_moving_avg_obs_fake_quant, x, (1, 1), ours, (0.01, -128, 127, axis, True, True), dy)
            ty, tdx = step(torch.fused_moving_avg_obs_fake_quant, channels_first_2d(x, axis), (1, 1), theirs,
                           (0.01, -128, 127, 0, True, True), channels_first_2d(dy, axis))
            assert_bitwise_equal(y, from_channels_first_2d(ty, x, axis))
            assert_bitwise_equal(dx, from_channels_first_2d(tdx, x, axis))
            assert_same_buffers(ours, theirs)


def test_nan_and_inf_inputs_per_tensor(isa):
    for bad in (float("nan"), INF, -INF):
        x = torch.randn(5, 70)
        x[2, 33] = bad
        ours, theirs = per_tensor_buffers(), per_tensor_buffers()
        for flags in ((1, 1), (1, 1), (0, 1)):
            y = fq.fused_moving_avg_obs_fake_quant(x, torch.tensor(flags[0]), torch.tensor(flags[1]), *ours,
                                                   0.01, 0, 255, -1, False, False)
            ty = torch.fused_moving_avg_obs_fake_quant(x, torch.tensor(flags[0]), torch.tensor(flags[1]), *theirs,
                                                       0.01, 0, 255, -1, False, False)
            assert_bitwise_equal(y, ty)
            assert_same_buffers(ours, theirs)


pairs = st.floats(-1e6, 1e6, width=32) | st.sampled_from([0.0, -0.0, 1e-9, -1e-9, 3e-5, -3e-5, INF, -INF])


@given(mins=st.lists(pairs, min_size=1, max_size=16), data=st.data(), qr=st.sampled_from(RANGES),
       sym=st.booleans())
def test_choose_qparams_matches_torch(mins, data, qr, sym):
    """Against torch's per-channel fused op with the observer off: it chooses qparams per channel
    from the running min / max alone."""
    qmin, qmax = qr
    maxs = data.draw(st.lists(pairs, min_size=len(mins), max_size=len(mins)))
    lo, hi = torch.tensor(mins), torch.tensor(maxs)
    scale, zp = fq.choose_qparams(lo, hi, qmin, qmax, sym)
    buffers = [lo.clone(), hi.clone(), torch.ones(len(mins)), torch.zeros(len(mins), dtype=torch.int32)]
    try:
        torch.fused_moving_avg_obs_fake_quant(torch.zeros(len(mins), 3), torch.tensor([0]), torch.tensor([1]),
                                              *buffers, 0.01, qmin, qmax, 0, True, sym)
    except RuntimeError:  # an infinite range gives zero point INT32_MIN, which torch writes and then rejects
        assert (zp == torch.iinfo(torch.int32).min).any()
    assert_bitwise_equal(scale, buffers[2])
    assert torch.equal(zp, buffers[3])


def test_choose_qparams_nan_and_shapes():
    scale, zp = fq.choose_qparams(torch.tensor([[float("nan"), -1.0]]), torch.tensor([[1.0, float("nan")]]), 0, 255)
    assert scale.shape == (1, 2) and scale.dtype == torch.float32 and zp.dtype == torch.int32
    assert torch.isnan(scale).all() and (zp == torch.iinfo(torch.int32).min).all()
    s, z = fq.choose_qparams(torch.tensor(-1.0, dtype=torch.float64), torch.tensor(1.0), -128, 127, True)
    assert s.shape == () and z.item() == 0 and s.item() == pytest.approx(1 / 127, rel=1e-6)


def test_buffers_resized_and_written_back():
    x = torch.randn(6, 5)
    rmin, rmax = torch.tensor([]), torch.tensor([])
    scale, zp = torch.tensor([1.0]), torch.tensor([0], dtype=torch.int32)
    on = torch.tensor([1])
    fq.fused_moving_avg_obs_fake_quant(x, on, on, rmin, rmax, scale, zp, 0.01, -128, 127, 1, True, True)
    assert rmin.shape == rmax.shape == scale.shape == zp.shape == (5,)
    assert torch.equal(rmin, x.amin(0)) and torch.equal(rmax, x.amax(0))
    # Non-contiguous buffers are written back through their views.
    big = torch.zeros(2, 5)
    rmin2 = big[:, 0]
    rmin2.fill_(INF)
    rmax2, s2, z2 = torch.tensor([-INF, -INF]), torch.ones(2), torch.zeros(2, dtype=torch.int32)
    fq.fused_moving_avg_obs_fake_quant(x[:2], on, on, rmin2, rmax2, s2, z2, 0.01, -128, 127, 0, True, False)
    assert torch.equal(big[:, 0], x[:2].amin(1))


def test_first_per_channel_call_without_fake_quant_sets_defaults():
    buffers = per_channel_buffers()
    fq.fused_moving_avg_obs_fake_quant(torch.randn(3, 4), torch.tensor([0]), torch.tensor([0]), *buffers, 0.01,
                                       -128, 127, 0, True, True)
    assert torch.equal(buffers[0], torch.full((3,), INF)) and torch.equal(buffers[1], torch.full((3,), -INF))
    assert torch.equal(buffers[2], torch.ones(3)) and torch.equal(buffers[3], torch.zeros(3, dtype=torch.int32))


def test_empty_input_leaves_buffers():
    buffers = per_tensor_buffers()
    y = fq.fused_moving_avg_obs_fake_quant(torch.empty(0, 3), torch.tensor([1]), torch.tensor([1]), *buffers,
                                           0.01, 0, 255, -1, False, False)
    assert y.shape == (0, 3)
    assert buffers[0].item() == INF and buffers[2].item() == 1.0


def test_fake_quant_off_passes_gradient():
    x = torch.randn(4, 5, requires_grad=True)
    y = fq.fused_moving_avg_obs_fake_quant(x, torch.tensor([1]), torch.tensor([0]), *per_tensor_buffers(),
                                           0.01, 0, 255, -1, False, False)
    assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()
    y.backward(torch.full_like(x, 2.0))
    assert torch.equal(x.grad, torch.full_like(x, 2.0))


def _call(x=None, c=0.01, qmin=0, qmax=255, ch_axis=-1, per_row=False, buffers=None, observer_on=None):
    x = torch.randn(3, 4) if x is None else x
    buffers = per_tensor_buffers() if buffers is None else buffers
    observer_on = torch.tensor([1]) if observer_on is None else observer_on
    return fq.fused_moving_avg_obs_fake_quant(x, observer_on, torch.tensor([1]), *buffers, c, qmin, qmax, ch_axis,
                                              per_row, False)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(c=-0.1), ValueError, "averaging_const must lie in"),
    (dict(c=1.5), ValueError, "averaging_const must lie in"),
    (dict(c=float("nan")), ValueError, "averaging_const must lie in"),
    (dict(qmin=5, qmax=5), ValueError, "must differ"),
    (dict(qmin=5, qmax=3), ValueError, "quant_min"),
    (dict(ch_axis=2), ValueError, "ch_axis"),
    (dict(ch_axis=2, per_row=True, buffers=per_channel_buffers()), ValueError, "ch_axis"),
    (dict(buffers=[torch.tensor([INF, INF]), torch.tensor(-INF), torch.ones(1), torch.zeros(1, dtype=torch.int32)]),
     ValueError, "running_min must hold one element"),
    (dict(buffers=[torch.tensor(INF), torch.tensor(-INF), torch.ones(1), torch.zeros(1, dtype=torch.int64)]),
     TypeError, "zero_point must have dtype"),
    (dict(buffers=[torch.tensor(INF).double(), torch.tensor(-INF), torch.ones(1), torch.zeros(1, dtype=torch.int32)]),
     TypeError, "running_min must have dtype"),
    (dict(per_row=True, ch_axis=1, buffers=[torch.full((3,), INF), torch.full((3,), -INF), torch.ones(3),
                                            torch.zeros(3, dtype=torch.int32)]),
     ValueError, "running_min must have one element per channel"),
    (dict(per_row=True, ch_axis=1, buffers=[torch.full((4,), INF), torch.full((4,), -INF), torch.ones(1),
                                            torch.zeros(4, dtype=torch.int32)]),
     ValueError, "scale must have one element per channel"),
    (dict(x=torch.ones(3, 4, dtype=torch.int32)), TypeError, "input"),
    (dict(observer_on=torch.tensor([1, 1])), ValueError, "observer_on must hold one element"),
])
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        _call(**kwargs)


def test_more_channels_than_a_block(isa):
    x = torch.randn(3, 20001, generator=torch.Generator().manual_seed(7))
    for t, axis in ((x, 1), (x.t(), 0)):
        ours, theirs = per_channel_buffers(), per_channel_buffers()
        y = fq.fused_moving_avg_obs_fake_quant(t, torch.tensor([1]), torch.tensor([1]), *ours, 0.01, -128, 127,
                                               axis, True, False)
        ty = torch.fused_moving_avg_obs_fake_quant(channels_first_2d(t, axis), torch.tensor([1]), torch.tensor([1]),
                                                   *theirs, 0.01, -128, 127, 0, True, False)
        assert_bitwise_equal(y, from_channels_first_2d(ty, t, axis))
        assert_same_buffers(ours, theirs)
