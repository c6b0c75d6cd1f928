"""A QAT ConvBn layer with an LSQ weight fake quant as one C++ autograd node (_C.conv_bn_lsq) against the module run
op by op (_bn_folded: W * sf, LearnableFakeQuantize, / sf, torch's conv and BatchNorm): output, buffers and
parameters bit for bit; gradients bit for bit except gamma's, whose per-channel sums run in another order."""
import copy

import pytest
import torch

import fakequant.nn.intrinsic.qat as nniqat
import fakequant.quantization as fqq
from fakequant.quantization import _ops
from helpers import assert_bitwise_equal

LSQ = fqq.get_qat_qconfig_nbits(4, 4, lsq=True)
QCONFIGS = {
    "lsq": LSQ,
    "lsq per tensor": fqq.get_qat_qconfig_nbits(4, 4, per_channel=False, lsq=True),
    # An LSQ weight with the fused output fake quant, which the node then takes in as well.
    "lsq weight, fused output": fqq.QConfig(activation=fqq.get_qat_qconfig_nbits(4, 4).activation, weight=LSQ.weight),
}

# class -> (input shape, constructor arguments after in / out channels)
CASES = {
    "2d": (nniqat.ConvBn2d, (5, 4, 9, 9), dict(kernel_size=3, stride=2, padding=1)),
    "2d depthwise, bias": (nniqat.ConvBn2d, (3, 6, 7, 7), dict(kernel_size=3, padding=1, groups=6, bias=True)),
    "2d relu, dilated": (nniqat.ConvBnReLU2d, (4, 3, 10, 10), dict(kernel_size=3, padding=2, dilation=2)),
    "1d relu, bias": (nniqat.ConvBnReLU1d, (4, 3, 12), dict(kernel_size=3, padding=1, bias=True)),
    "3d": (nniqat.ConvBn3d, (2, 3, 5, 6, 6), dict(kernel_size=(1, 3, 3), stride=(1, 2, 1))),
}

# gamma's gradient: the node sums du * W and g * fq(u) per channel in bn_fold.h's lane order and divides the second
# sum by sf^2 once, torch's autograd divides each term and reduces in its own order. The two came out equal bit
# for bit in every case here (bn_fold.h's order follows torch's, and while BN trains the fold's part nearly
# cancels beside BN's own), but nothing guarantees it: a float32 sum of a few dozen terms may differ in its last
# bits (relative ~1e-6), or by a few ulps of the terms' size where they cancel (atol against the gradients' scale).
GAMMA_RTOL, GAMMA_ATOL = 1e-5, 1e-5


def layer(case, qconfig=LSQ, momentum=0.1):
    cls, shape, kwargs = CASES[case]
    out_channels = shape[1] if kwargs.get("groups", 1) > 1 else 6
    torch.manual_seed(3)
    mod = cls(shape[1], out_channels, momentum=momentum, qconfig=qconfig, **kwargs).train()
    mod.activation_post_process = qconfig.activation()  # as prepare_qat sets it
    with torch.no_grad():
        mod.bn.weight.uniform_(0.5, 1.5)
        mod.bn.bias.normal_()
    return mod, shape


def op_by_op(mod, x):
    """The module's forward with the layer run through _bn_folded (the path the node replaces)."""
    y = mod._bn_folded(x, mod._conv_forward)
    if mod._RELU:
        return mod.activation_post_process.forward_relu(y)
    return mod.activation_post_process(y)


def warm_up(*mods):
    """One call sizes the per-channel LSQ parameters and observer buffers (a first call runs op by op)."""
    for mod in mods:
        with torch.no_grad():
            mod.weight_fake_quant(mod.weight)


def check_grads(names, grads, tgrads):
    scale = max(float(t.abs().max()) for t in tgrads if t.numel())
    for name, a, b in zip(names, grads, tgrads):
        if name == "bn.weight":
            torch.testing.assert_close(a, b, rtol=GAMMA_RTOL, atol=GAMMA_ATOL * scale)
        else:
            assert_bitwise_equal(a, b)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("qconfig", list(QCONFIGS))
@pytest.mark.parametrize("case", list(CASES))
def test_node_matches_op_by_op(isa, case, qconfig, momentum):
    """Observers on with BN live, then observers off (scale / zero point learned: updated below from the node's
    gradients, the same step on both modules), then BN frozen."""
    ours, shape = layer(case, QCONFIGS[qconfig], momentum)
    theirs = copy.deepcopy(ours)
    warm_up(ours, theirs)
    g = torch.Generator().manual_seed(7)
    for step in range(6):
        if step == 2:
            ours.apply(fqq.disable_observer), theirs.apply(fqq.disable_observer)
        if step == 4:  # BN frozen: the folded bias
            ours.apply(nniqat.freeze_bn_stats), theirs.apply(nniqat.freeze_bn_stats)
        x = torch.randn(shape, generator=g) * (step + 1)
        xs = [x.clone().requires_grad_() for _ in range(2)]
        y, ty = ours(xs[0]), op_by_op(theirs, xs[1])
        assert y.grad_fn is not None
        assert assert_node(y)
        assert_bitwise_equal(y.detach(), ty.detach())
        dy = torch.randn(y.shape, generator=g)
        named = [(n, p) for n, p in ours.named_parameters() if p.requires_grad]
        names = ["input"] + [n for n, _ in named]
        tparams = dict(theirs.named_parameters())
        grads = torch.autograd.grad(y, [xs[0]] + [p for _, p in named], dy)
        tgrads = torch.autograd.grad(ty, [xs[1]] + [tparams[n] for n, _ in named], dy)
        check_grads(names, grads, tgrads)
        if step >= 2:
            assert "weight_fake_quant.scale" in names and "weight_fake_quant.zero_point" in names
        with torch.no_grad():  # one SGD step from the node's gradients, on both
            for (n, p), gr in zip(named, grads[1:]):
                p.sub_(0.01 * gr)
                tparams[n].sub_(0.01 * gr)
        for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            assert_bitwise_equal(a, b)


def assert_node(y):
    """The ConvBn node is y's grad_fn, or (output fake quant, and ReLU, outside) one of the next two back."""
    node = y.grad_fn
    for _ in range(3):
        if node.name() == "ConvBnFoldedBackward":
            return True
        node = node.next_functions[0][0]
    return False


def test_weight_fake_quant_off():
    """With the weight's fake quant off the node passes W * sf through and gives scale / zero point nothing."""
    ours, shape = layer("2d relu, dilated")
    theirs = copy.deepcopy(ours)
    warm_up(ours, theirs)
    for mod in (ours, theirs):
        mod.weight_fake_quant.enable_param_learning().toggle_fake_quant(False)
    xs = [torch.randn(shape).requires_grad_() for _ in range(1)] * 2
    y, ty = ours(xs[0]), op_by_op(theirs, xs[1])
    assert assert_node(y)
    assert_bitwise_equal(y.detach(), ty.detach())
    wfq = ours.weight_fake_quant
    grads = torch.autograd.grad(y.sum(), [ours.weight, wfq.scale], allow_unused=True)
    assert_bitwise_equal(grads[0], torch.autograd.grad(ty.sum(), theirs.weight)[0])
    assert grads[1] is None


def test_first_call_runs_op_by_op():
    """Unsized per-channel parameters: the node hands back None, with nothing changed, and the layer runs op by op
    (which sizes them); from the second call on the node runs."""
    ours, shape = layer("2d")
    theirs = copy.deepcopy(ours)
    x = torch.randn(shape)
    count = int(ours.bn.num_batches_tracked)
    op, args = ours._node_args(x)
    assert op is _ops.conv_bn_lsq_node and op(x, *args) is None
    assert int(ours.bn.num_batches_tracked) == count
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()):
        assert_bitwise_equal(a, b)
    assert_bitwise_equal(ours(x), op_by_op(theirs, x))
    assert assert_node(ours(x.requires_grad_()))


def test_runs_op_by_op_where_the_node_does_not_apply():
    """Hooks on the weight fake quant or its observer, and float64, keep the op-by-op path."""
    mod, shape = layer("2d")
    warm_up(mod)
    x = torch.randn(shape)
    assert mod._node_args(x) is not None
    for target in (lambda m: m.weight_fake_quant, lambda m: m.weight_fake_quant.activation_post_process):
        hooked = copy.deepcopy(mod)
        target(hooked).register_forward_hook(lambda *args: None)
        assert hooked._node_args(x) is None
    assert copy.deepcopy(mod).double()._node_args(x.double()) is None


def test_eval_and_no_grad():
    mod, shape = layer("2d")
    warm_up(mod)
    x = torch.randn(shape)
    mod(x)
    with torch.no_grad():
        assert mod(x).grad_fn is None
    ref = copy.deepcopy(mod).eval()
    mod.eval()
    assert_bitwise_equal(mod(x), op_by_op(ref, x))


def test_saved_tensors_are_checked():
    mod, shape = layer("2d")
    warm_up(mod)
    mod.apply(fqq.disable_observer)  # learning: the node saves scale / zero point
    y = mod(torch.randn(shape))
    y.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.sum().backward()
    for change in (lambda x: x, lambda x: mod.weight_fake_quant.scale, lambda x: mod.weight):
        x = torch.randn(shape, requires_grad=True)
        y = mod(x)
        with torch.no_grad():
            change(x).add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_bad_arguments():
    mod, shape = layer("2d")
    warm_up(mod)
    op, args = mod._node_args(torch.randn(shape))
    with pytest.raises(ValueError, match="LSQ module arguments"):
        op(torch.randn(shape), *args[:-1])
    bad = list(args)
    bad[2] = torch.ones(5)  # gamma
    with pytest.raises(ValueError, match="gamma"):
        op(torch.randn(shape), *bad)
