"""BN folding's weight as one C++ autograd node (FusedMovingAvgObsFakeQuantize.forward_folded) against the
same expression in torch ops through the fake-quant module: forward and buffers bit for bit, gradients of
the weight and of BN's gamma to float rounding."""
import copy

import pytest
import torch

import fakequant.quantization as fqq
from fakequant.quantization import _ops
from fakequant.quantization.fake_quantize import bn_folded_weight
from helpers import assert_bitwise_equal


def weight_fake_quant(per_channel):
    if per_channel:
        return fqq.FusedMovingAvgObsFakeQuantize(observer=fqq.MovingAveragePerChannelMinMaxObserver, quant_min=-8,
                                                 quant_max=7, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    return fqq.FusedMovingAvgObsFakeQuantize(observer=fqq.MovingAverageMinMaxObserver, quant_min=-128, quant_max=127,
                                             dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)


@pytest.mark.parametrize("shape", [(6, 5), (6, 3, 3, 3), (6, 1, 3, 3, 3)])
@pytest.mark.parametrize("divide", [True, False])
@pytest.mark.parametrize("per_channel", [True, False])
def test_node_matches_torch_ops(isa, shape, divide, per_channel):
    g = torch.Generator().manual_seed(11)
    ours = weight_fake_quant(per_channel)
    theirs = copy.deepcopy(ours)
    running_var = torch.rand(shape[0], generator=g) + 0.5
    for step in range(4):
        if step == 2:
            ours.disable_observer(), theirs.disable_observer()
        if step == 3:
            ours.disable_fake_quant(), theirs.disable_fake_quant()
        weight = torch.randn(shape, generator=g) * (step + 1)
        gamma = torch.rand(shape[0], generator=g) + 0.5
        dy = torch.randn(shape, generator=g)
        leaves = [(weight.clone().requires_grad_(), gamma.clone().requires_grad_()) for _ in range(2)]
        w = ours.forward_folded(*leaves[0], running_var, 1e-5, divide)
        tw = bn_folded_weight(theirs, *leaves[1], running_var, 1e-5, divide)
        assert "BnFoldedWeight" in w.grad_fn.name()
        assert_bitwise_equal(w.detach(), tw.detach())
        grads = torch.autograd.grad(w, leaves[0], dy)
        tgrads = torch.autograd.grad(tw, leaves[1], dy)
        for a, b in zip(grads, tgrads):  # gamma's is a difference of two sums of O(10): float rounding ~1e-6
            torch.testing.assert_close(a, b, rtol=1e-5, atol=5e-5)
        for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            assert_bitwise_equal(a, b)


def test_gradient_of_one_input_only():
    fq = weight_fake_quant(True)
    weight, gamma = torch.randn(4, 2, 3, 3), torch.rand(4) + 0.5
    for wants in ((True, False), (False, True)):
        w_in, g_in = weight.clone().requires_grad_(wants[0]), gamma.clone().requires_grad_(wants[1])
        out = fq.forward_folded(w_in, g_in, torch.ones(4), 1e-5, True)
        (grad,) = torch.autograd.grad(out.sum(), w_in if wants[0] else g_in)
        assert grad.shape == (weight.shape if wants[0] else gamma.shape)


def test_float64_weights_run_the_torch_ops():
    ours = weight_fake_quant(True)
    theirs = copy.deepcopy(ours)
    weight, gamma = torch.randn(4, 2, 3, 3, dtype=torch.float64), torch.rand(4, dtype=torch.float64) + 0.5
    w = ours.forward_folded(weight, gamma, torch.ones(4, dtype=torch.float64), 1e-5, True)
    assert w.dtype == torch.float64
    assert_bitwise_equal(w, bn_folded_weight(theirs, weight, gamma, torch.ones(4, dtype=torch.float64), 1e-5, True))


def test_without_grad_and_bad_weight():
    fq = weight_fake_quant(True)
    w = fq.forward_folded(torch.randn(4, 2, 3, 3), torch.ones(4), torch.ones(4), 1e-5, True)
    assert w.grad_fn is None
    with pytest.raises(ValueError, match="weight"):
        fq.forward_folded(torch.randn(4), torch.ones(4), torch.ones(4), 1e-5, True)
    with pytest.raises(ValueError, match="gamma"):
        fq.forward_folded(torch.randn(4, 2), torch.ones(3), torch.ones(4), 1e-5, True)


@pytest.mark.parametrize("with_bias", [True, False])
def test_folded_bias_node_matches_torch_ops(with_bias):
    g = torch.Generator().manual_seed(5)
    gamma, beta, mean = torch.rand(6, generator=g) + 0.5, torch.randn(6, generator=g), torch.randn(6, generator=g)
    var, bias = torch.rand(6, generator=g) + 0.5, torch.randn(6, generator=g) if with_bias else None
    dy = torch.randn(6, generator=g)
    leaves = [[t.clone().requires_grad_() for t in (gamma, beta) + ((bias,) if with_bias else ())] for _ in range(2)]
    b = _ops.bn_folded_bias(leaves[0][0], leaves[0][1], mean, var, leaves[0][2] if with_bias else None, 1e-5)
    sf = leaves[1][0] / torch.sqrt(var + 1e-5)  # BnFold._folded_bias(_scale_factor())
    tb = leaves[1][1] - mean * sf
    if with_bias:
        tb = tb + leaves[1][2] * sf
    assert "BnFoldedBias" in b.grad_fn.name()
    assert_bitwise_equal(b.detach(), tb.detach())
    for a, t in zip(torch.autograd.grad(b, leaves[0], dy), torch.autograd.grad(tb, leaves[1], dy)):
        torch.testing.assert_close(a, t, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="beta"):
        _ops.bn_folded_bias(gamma, torch.ones(5), mean, var, None, 1e-5)
    with pytest.raises(TypeError, match="bias"):
        _ops.bn_folded_bias(gamma, beta, mean, var, torch.ones(6, dtype=torch.float64), 1e-5)


def test_nodes_check_their_saved_tensors():
    """The hand-written nodes keep autograd's rules: a second backward through a freed graph and a saved
    parameter / buffer changed in place before backward both raise."""
    fq = weight_fake_quant(True)
    weight, gamma, beta, mean = (torch.randn(4, 2, 3, 3, requires_grad=True), torch.rand(4, requires_grad=True),
                                 torch.randn(4, requires_grad=True), torch.randn(4))
    for out in (fq.forward_folded(weight, gamma, torch.ones(4), 1e-5, True),
                _ops.bn_folded_bias(gamma, beta, mean, torch.ones(4), None, 1e-5)):
        out.sum().backward()
        with pytest.raises(RuntimeError, match="second time"):
            out.sum().backward()
    w = fq.forward_folded(weight, gamma, torch.ones(4), 1e-5, True)
    b = _ops.bn_folded_bias(gamma, beta, mean, torch.ones(4), None, 1e-5)
    with torch.no_grad():
        weight.add_(1)
        mean.add_(1)
    for out in (w, b):
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()
