"""The ReLU fused into the fused observer + fake quant (fused_moving_avg_obs_fake_quant_relu, forward_relu of
the fake-quant modules): torch's relu followed by torch's op on every ISA path, output, gradient and
buffers bit for bit."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fakequant as fq
import fakequant.quantization as fqq
from fakequant.fused_obs import fused_moving_avg_obs_fake_quant_relu
from helpers import LAYOUTS, assert_bitwise_equal, float_tensors, with_layout
from test_fused_obs import (RANGES, assert_same_buffers, check_per_channel, per_channel_buffers, per_tensor_buffers,
                            shape_input, step)


def relu_then(op):
    return lambda x, *args: op(torch.relu(x), *args)


@given(x=float_tensors(max_side=24), qr=st.sampled_from(RANGES), data=st.data())
def test_per_tensor_matches_torch_relu_then_op(isa, x, qr, data):
    qmin, qmax = qr
    sym = data.draw(st.booleans())
    ours = per_tensor_buffers()
    theirs = [b.clone() for b in ours]
    args = (0.01, qmin, qmax, -1, False, sym)
    for i in range(3):
        xi = shape_input(data.draw, x * (i + 1))
        flags = (data.draw(st.sampled_from([1, 1, 0])), data.draw(st.sampled_from([1, 1, 0])))
        dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
        y, dx = step(fused_moving_avg_obs_fake_quant_relu, xi, flags, ours, args, dy)
        ty, tdx = step(relu_then(torch.fused_moving_avg_obs_fake_quant), xi, flags, theirs, args, dy)
        assert_bitwise_equal(y, ty)
        assert_bitwise_equal(dx, tdx)
        assert_same_buffers(ours, theirs)


@given(x=float_tensors(max_side=24, special=False), qr=st.sampled_from(RANGES), data=st.data())
def test_per_channel_matches_torch_relu_then_op(isa, x, qr, data):
    check_per_channel(fused_moving_avg_obs_fake_quant_relu, relu_then(torch.fused_moving_avg_obs_fake_quant), x, qr,
                      data)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_dtypes_and_layouts_match_relu_then_fused_op(isa, dtype, layout):
    """Long rows (vector bodies and tails) in every layout; the unfused fakequant op is torch's on these."""
    g = torch.Generator().manual_seed(7)
    base = torch.randn(3, 40, 9, 37, generator=g) * 3
    base[0, 0, 0, :4] = torch.tensor([-0.0, 0.0, float("inf"), -float("inf")])
    x = with_layout(base.to(dtype), layout)
    dy = torch.randn(x.shape, generator=g).to(dtype)
    for per_channel, axis in ((False, -1), (True, 1), (True, 3)):
        bufs = per_channel_buffers if per_channel else per_tensor_buffers
        ours, theirs = bufs(), bufs()
        args = (0.01, 0, 255, axis, per_channel, False)
        y, dx = step(fused_moving_avg_obs_fake_quant_relu, x, (1, 1), ours, args, dy)
        ty, tdx = step(relu_then(fq.fused_moving_avg_obs_fake_quant), x, (1, 1), theirs, args, dy)
        assert_bitwise_equal(y, ty)
        assert_bitwise_equal(dx, tdx)
        assert_same_buffers(ours, theirs)


def test_kernel_refuses_relu_without_fake_quant():
    bufs = per_tensor_buffers()
    with pytest.raises(ValueError, match="relu"):
        fq._C.fused_obs_fake_quant_autograd(torch.randn(4), torch.tensor(1), torch.tensor(0), *bufs, 0.01, 0, 255,
                                            -1, False, False, relu=True)


def fake_quant_module(kind):
    if kind == "fused":
        return fqq.FusedMovingAvgObsFakeQuantize(quant_min=0, quant_max=255)
    if kind == "plain":
        return fqq.FakeQuantize(quant_min=0, quant_max=255)
    return fqq.LearnableFakeQuantize(quant_min=0, quant_max=255)


@pytest.mark.parametrize("kind", ["fused", "plain", "lsq"])
@pytest.mark.parametrize("hooked", [False, True])
def test_forward_relu_equals_module_of_relu(kind, hooked):
    ours, theirs = fake_quant_module(kind), fake_quant_module(kind)
    calls = []
    if hooked:  # a forward hook must see the call: the module runs unfused then
        ours.register_forward_hook(lambda *a: calls.append(1))
    g = torch.Generator().manual_seed(3)
    for i in range(4):
        if i == 2:
            ours.disable_observer(), theirs.disable_observer()
        if i == 3:
            ours.disable_fake_quant(), theirs.disable_fake_quant()
        x = torch.randn(4, 8, 5, 5, generator=g) * (i + 1)
        dy = torch.randn(x.shape, generator=g)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        y, ty = ours.forward_relu(xa), theirs(torch.relu(xb))
        (dx,), (tdx,) = torch.autograd.grad(y, xa, dy), torch.autograd.grad(ty, xb, dy)
        assert_bitwise_equal(y.detach(), ty.detach())
        assert_bitwise_equal(dx, tdx)
        for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            assert_bitwise_equal(a, b), name
    assert len(calls) == (4 if hooked else 0)
