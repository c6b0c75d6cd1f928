"""LearnableFakeQuantize's one-call C++ forward and the CPU LSQ autograd node against the op-by-op path and the
Python autograd Function they replace: outputs, buffers, parameters and every gradient with zero tolerance."""
import copy
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fakequant as fq
import fakequant.quantization as fqq
from fakequant import lsq
from helpers import assert_bitwise_equal


def python_function(x, scale, zp, axis, qmin, qmax, gf):
    """The Python autograd Function the CPU node replaces (still CUDA's), run on the CPU kernels."""
    return lsq._LearnableFakeQuant.apply(x, scale, zp, axis, qmin, qmax, gf)


def grads(op, x, scale, zp, dy, *args):
    x, s, z = (t.detach().clone().requires_grad_(True) for t in (x, scale, zp))
    y = op(x, s, z, *args)
    return (y.detach(),) + torch.autograd.grad(y, (x, s, z), dy)


@given(seed=st.integers(0, 2**31 - 1), per_channel=st.booleans(), gf=st.sampled_from([1.0, 0.3]),
       qr=st.sampled_from([(0, 15), (-8, 7), (0, 255)]))
def test_node_matches_python_function(seed, per_channel, gf, qr):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, 5, generator=g) * 3
    x.view(-1)[:4] = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.5])
    dy = torch.randn(x.shape, generator=g)
    n = 3 if per_channel else 1
    scale, zp = torch.rand(n, generator=g) * 0.5 + 0.05, torch.randn(n, generator=g) * 4
    if per_channel:
        ours = grads(fq.fake_quantize_learnable_per_channel_affine, x, scale, zp, dy, 1, *qr, gf)
        ref = grads(python_function, x, scale, zp, dy, 1, *qr, gf)
    else:
        ours = grads(fq.fake_quantize_learnable_per_tensor_affine, x, scale, zp, dy, *qr, gf)
        ref = grads(python_function, x, scale, zp, dy, None, *qr, gf)
    for a, b in zip(ours, ref):
        assert_bitwise_equal(a, b)


def test_node_gradients_only_where_needed():
    x, s, z = torch.randn(3, 4, requires_grad=True), torch.tensor([0.1]), torch.tensor([2.0], requires_grad=True)
    y = fq.fake_quantize_learnable_per_tensor_affine(x, s, z, 0, 15)
    assert y.grad_fn.name() == "LearnableFakeQuantBackward"
    y.sum().backward()
    assert x.grad is not None and z.grad is not None and s.grad is None
    with torch.no_grad():
        assert fq.fake_quantize_learnable_per_tensor_affine(x, s, z, 0, 15).grad_fn is None


def test_node_checks_its_saved_tensors():
    """A second backward through a freed graph and an input / parameter changed in place both raise."""
    s, z = torch.tensor([0.1], requires_grad=True), torch.tensor([2.0], requires_grad=True)
    y = fq.fake_quantize_learnable_per_tensor_affine(torch.randn(3, 4), s, z, 0, 15)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.sum().backward()
    for changed in ("input", "scale"):
        x, s = torch.randn(3, 4, requires_grad=True), torch.full((4,), 0.1, requires_grad=True)
        x_in = x * 1
        y = fq.fake_quantize_learnable_per_channel_affine(x_in, s, torch.zeros(4), 1, 0, 15)
        with torch.no_grad():
            (x_in if changed == "input" else s).add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def module(per_channel, symmetric, **kw):
    if per_channel:
        obs = fqq.MovingAveragePerChannelMinMaxObserver
        kw = dict(dtype=torch.qint8, quant_min=-8, quant_max=7, ch_axis=1, channel_len=3,
                  qscheme=torch.per_channel_symmetric if symmetric else torch.per_channel_affine, **kw)
    else:
        obs = fqq.MovingAverageMinMaxObserver
        kw = dict(dtype=torch.quint8, quant_min=0, quant_max=15,
                  qscheme=torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine, **kw)
    return fqq.LearnableFakeQuantize(observer=obs, **kw)


def step(m, x, dy, ops):
    """One forward / backward; the module's state and every gradient afterwards."""
    x = x.detach().clone().requires_grad_(True)
    y = m._forward_ops(x) if ops else m(x)
    if not ops and y is not x and y.requires_grad:
        assert y.grad_fn.name() == "LearnableFakeQuantBackward"
    out = [y.detach().clone()]
    if y.requires_grad:
        y.backward(dy)
        out += [x.grad, m.scale.grad, m.zero_point.grad]
    out += [t.detach().clone() for t in list(m.parameters()) + list(m.buffers())]
    for p in m.parameters():
        p.grad = None
    return out


def assert_same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert (u is None) == (v is None)
        if u is not None:
            assert_bitwise_equal(u, v)


PHASES = ["static", "learn", "observe_only", "static", "no_fake_quant_learn", "learn"]


def set_phase(m, phase):
    if phase == "static":
        m.enable_static_estimate()
    elif phase == "learn":
        m.enable_param_learning()
    elif phase == "observe_only":
        m.enable_static_observation()
    else:
        m.enable_param_learning()
        m.toggle_fake_quant(False)


@settings(max_examples=40)
@given(seed=st.integers(0, 2**31 - 1), per_channel=st.booleans(), symmetric=st.booleans(),
       grad_scaling=st.booleans(), averaging=st.sampled_from([0.01, 1.0]), eps=st.sampled_from([None, 2.0**-9]),
       values=st.sampled_from(["normal", "one_signed", "tiny", "constant", "special"]))
def test_module_matches_op_by_op(seed, per_channel, symmetric, grad_scaling, averaging, eps, values):
    g = torch.Generator().manual_seed(seed)
    kw = dict(use_grad_scaling=grad_scaling, averaging_constant=averaging)
    if eps is not None:
        kw["eps"] = eps
    ours = module(per_channel, symmetric, **kw)
    ref = copy.deepcopy(ours)
    reduced = []  # the observer's own forward runs only where the one-call path hands over
    reduce = ours.activation_post_process._reduce
    ours.activation_post_process._reduce = lambda t: reduced.append(1) or reduce(t)
    for i, phase in enumerate(PHASES):
        set_phase(ours, phase)
        set_phase(ref, phase)
        x = torch.randn(4, 3, 5, generator=g) * 3
        if values == "one_signed":
            x = x.abs() * (1 if i % 2 else -1)
        elif values == "tiny":
            x = x * 1e-6
        elif values == "constant":
            x = torch.full_like(x, 0.25 * (i - 2))
        elif values == "special":
            x.view(-1)[i] = (float("inf"), -float("inf"), float("nan"), 3e38, -0.0, 1e-30)[i]
        dy = torch.randn(x.shape, generator=g)
        assert_same(step(ours, x, dy, False), step(ref, x, dy, True))
    assert len(reduced) == (1 if per_channel else 0)  # the first per-channel call sizes the buffers


def test_module_hands_the_op_by_op_path_what_it_does_not_run():
    """A first per-channel call sizes the buffers, an unobserved range warns, hooks run: all op by op."""
    m = fqq.get_qat_qconfig_nbits(4, 4, lsq=True).weight()
    ref = copy.deepcopy(m)
    x = torch.randn(6, 2, 3)
    for _ in range(2):
        assert_same(step(m, x, torch.ones_like(x), False), step(ref, x, torch.ones_like(x), True))
    assert m.scale.shape == (6,)
    a = module(False, False)
    with pytest.warns(UserWarning, match="has not observed"):
        a(torch.full((2, 3), float("inf")))
    seen = []
    a.activation_post_process.register_forward_hook(lambda *args: seen.append(1))
    a(torch.randn(2, 3))
    assert seen == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = module(False, False)
        b(torch.randn(2, 3))


def test_module_other_dtypes_run_op_by_op():
    m = module(False, False)
    ref = copy.deepcopy(m)
    x = torch.randn(3, 4, dtype=torch.float64)
    assert_same(step(m, x, torch.ones_like(x), False), step(ref, x, torch.ones_like(x), True))
