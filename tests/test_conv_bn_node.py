"""A QAT ConvBn layer as one C++ autograd node (_ConvBnNd._conv_bn) against the same module run op by op
(_bn_folded: folded-weight node, torch's conv, torch's BatchNorm): output, every buffer and every gradient
bit for bit, while BN trains and once it is frozen (the node calls the same kernels in the same order)."""
import copy

import pytest
import torch

import fakequant.nn.intrinsic.qat as nniqat
import fakequant.quantization as fqq
from fakequant.quantization import _ops
from helpers import assert_bitwise_equal

QCONFIG = fqq.get_default_qat_qconfig("x86")

# class -> (input shape, constructor arguments after in / out channels)
CASES = {
    "2d": (nniqat.ConvBn2d, (5, 4, 9, 9), dict(kernel_size=3, stride=2, padding=1)),
    "2d depthwise, bias": (nniqat.ConvBn2d, (3, 6, 7, 7), dict(kernel_size=3, padding=1, groups=6, bias=True)),
    "2d relu, dilated": (nniqat.ConvBnReLU2d, (4, 3, 10, 10), dict(kernel_size=3, padding=2, dilation=2)),
    "1d relu, bias": (nniqat.ConvBnReLU1d, (4, 3, 12), dict(kernel_size=3, padding=1, bias=True)),
    "3d": (nniqat.ConvBn3d, (2, 3, 5, 6, 6), dict(kernel_size=(1, 3, 3), stride=(1, 2, 1))),
}


def layer(case, momentum=0.1):
    cls, shape, kwargs = CASES[case]
    out_channels = shape[1] if kwargs.get("groups", 1) > 1 else 6
    torch.manual_seed(3)
    mod = cls(shape[1], out_channels, momentum=momentum, qconfig=QCONFIG, **kwargs).train()
    mod.activation_post_process = QCONFIG.activation()  # as prepare_qat sets it
    with torch.no_grad():
        mod.bn.weight.uniform_(0.5, 1.5)
        mod.bn.bias.normal_()
    return mod, shape


def node_names(y):
    """The autograd nodes from y back along first inputs."""
    names, node = [], y.grad_fn
    while node is not None:
        names.append(node.name())
        node = node.next_functions[0][0] if node.next_functions else None
    return names


def op_by_op(mod, x):
    """The module's forward with the layer run through _bn_folded (the path conv_bn_node replaces)."""
    y = mod._bn_folded(x, mod._conv_forward)
    if isinstance(mod, nniqat.ConvBnReLU2d | nniqat.ConvBnReLU1d):
        return mod.activation_post_process.forward_relu(y)
    return mod.activation_post_process(y)


@pytest.mark.parametrize("post", ["in the node", "fake quant off", "outside the node"])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("case", list(CASES))
def test_node_matches_op_by_op(isa, case, momentum, post):
    """post: the output fake quant runs in the node, runs in the node with its fake quant off (a ReLU then
    goes through torch's relu and its backward), or stays a separate module call (a hook on it)."""
    ours, shape = layer(case, momentum)
    if post == "fake quant off":
        ours.activation_post_process.disable_fake_quant()
    theirs = copy.deepcopy(ours)
    if post == "outside the node":
        ours.activation_post_process.register_forward_hook(lambda *args: None)
    g = torch.Generator().manual_seed(7)
    for step in range(5):
        if step == 2:
            ours.apply(fqq.disable_observer), theirs.apply(fqq.disable_observer)
        if step == 3:  # BN frozen: the folded bias
            ours.apply(nniqat.freeze_bn_stats), theirs.apply(nniqat.freeze_bn_stats)
        x = torch.randn(shape, generator=g) * (step + 1)
        xs = [x.clone().requires_grad_() for _ in range(2)]
        y, ty = ours(xs[0]), op_by_op(theirs, xs[1])
        assert "ConvBnFoldedBackward" in node_names(y)[:1 if post != "outside the node" else 3]
        assert_bitwise_equal(y.detach(), ty.detach())
        dy = torch.randn(y.shape, generator=g)
        leaves = [[m] + [p for _, p in mod.named_parameters()] for m, mod in ((xs[0], ours), (xs[1], theirs))]
        grads = torch.autograd.grad(y, leaves[0], dy)
        tgrads = torch.autograd.grad(ty, leaves[1], dy)
        for a, b in zip(grads, tgrads):
            assert_bitwise_equal(a, b)
        for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            assert_bitwise_equal(a, b)


def test_channels_last():
    ours, shape = layer("2d relu, dilated")
    ours = ours.to(memory_format=torch.channels_last)
    theirs = copy.deepcopy(ours)
    g = torch.Generator().manual_seed(2)
    for _ in range(2):
        x = torch.randn(shape, generator=g).to(memory_format=torch.channels_last)
        xs = [x.clone().requires_grad_() for _ in range(2)]
        y, ty = ours(xs[0]), op_by_op(theirs, xs[1])
        assert y.grad_fn.name() == "ConvBnFoldedBackward" and y.is_contiguous(memory_format=torch.channels_last)
        assert_bitwise_equal(y.detach(), ty.detach())
        dy = torch.randn(y.shape, generator=g)
        grads = torch.autograd.grad(y, [xs[0], *ours.parameters()], dy)
        for a, b in zip(grads, torch.autograd.grad(ty, [xs[1], *theirs.parameters()], dy)):
            assert_bitwise_equal(a, b)


def test_runs_op_by_op_where_the_node_does_not_apply():
    """float64, non-zero padding modes and BN hooks keep the op-by-op path (same values as before)."""
    mod, shape = layer("2d")
    hooked = copy.deepcopy(mod)
    hooked.bn.register_forward_hook(lambda *args: None)
    assert hooked._node_args(torch.randn(shape)) is None
    assert mod.double()._node_args(torch.randn(shape, dtype=torch.float64)) is None
    reflect, _ = layer("2d")
    reflect.padding_mode = "reflect"
    assert reflect._node_args(torch.randn(shape)) is None
    assert "ConvBnFoldedBackward" not in node_names(reflect(torch.randn(shape, requires_grad=True)))


def test_eval_and_no_grad():
    mod, shape = layer("2d")
    x = torch.randn(shape)
    mod(x)
    with torch.no_grad():
        assert mod(x).grad_fn is None
    ref = copy.deepcopy(mod).eval()
    mod.eval()
    assert_bitwise_equal(mod(x), op_by_op(ref, x))


def test_saved_tensors_are_checked():
    mod, shape = layer("2d")
    y = mod(torch.randn(shape))
    y.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.sum().backward()
    x = torch.randn(shape, requires_grad=True)
    y = mod(x)
    with torch.no_grad():
        x.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_bad_arguments():
    mod, shape = layer("2d")
    args = list(mod._node_args(torch.randn(shape)))
    with pytest.raises(TypeError, match="input"):
        _ops.conv_bn_node(torch.randn(shape, dtype=torch.float64), *args)
    bad = list(args)
    bad[2] = torch.ones(5)  # gamma
    with pytest.raises(ValueError, match="gamma"):
        _ops.conv_bn_node(torch.randn(shape), *bad)
    bad = list(args)
    bad[10] = (1, 1, 1)  # stride of a 3d conv on a 2d layer
    with pytest.raises(ValueError, match="stride"):
        _ops.conv_bn_node(torch.randn(shape), *bad)
    with pytest.raises(RuntimeError):  # torch's convolution names the mismatch
        _ops.conv_bn_node(torch.randn(5, 3, 9, 9), *args)
    with pytest.raises(ValueError, match="fused-op arguments"):
        _ops.conv_bn_node(torch.randn(shape), *args[:-1])


def test_gradient_held_elsewhere_is_not_overwritten():
    """The nodes write grad * mask over the incoming gradient only when they hold its only reference."""
    mod, shape = layer("2d relu, dilated")
    act = fqq.get_default_qat_qconfig("x86").activation()
    x = torch.randn(shape, requires_grad=True)
    for forward in (mod, act):
        dy = torch.randn(forward(x).shape)
        kept = dy.clone()
        torch.autograd.grad(forward(x), x, dy)
        assert_bitwise_equal(dy, kept)
        views = torch.randn(2, *dy.shape)  # views[0] shares its storage
        kept = views.clone()
        torch.autograd.grad(forward(x), x, views[0])
        assert_bitwise_equal(views, kept)
