"""fakequant.nn.quantized: the int8 modules against fake quant, the requant formula and torch.

Quantize rounding equal to fake quant, Conv2d / Linear exact to the requantization formula and
within 1 LSB of torch's quantized modules (the oracle, tests only) and of the fake-quant float
model, elementwise ops bit-exact to the fake-quant model, state_dict, errors.
"""
import io
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import fakequant.nn.quantized as fnq
from fakequant import _C
from fakequant.nn.quantized import QTensor
from fakequant.nn.quantized import functional as qF
from test_int8_gemm import requant_reference


def lsb(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.int() - b.int()).abs()


def fq(x, scale, zp, qmin=0, qmax=255):
    return torch.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)


def qt(x, scale, zp):
    return fnq.quantize(x, scale, zp)


# ---- quantize / dequantize ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1,), (7,), (33, 17), (2, 3, 5, 7), (4, 16, 9, 9)])
@pytest.mark.parametrize("qrange", [(0, 255), (0, 127), (-128, 127)])
def test_quantize_equals_fake_quant(isa, shape, qrange):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g) * 3
    x.view(-1)[0] = float("nan")
    if x.numel() > 3:
        x.view(-1)[1:4] = torch.tensor([float("inf"), -float("inf"), 0.5 * 0.037])  # a tie
    zp = 0 if qrange[0] < 0 else 37
    q = fnq.quantize(x, 0.037, zp, *qrange)
    assert q.dtype == (torch.int8 if qrange[0] < 0 else torch.uint8)
    assert torch.equal(q.dequantize(), fq(x, 0.037, zp, *qrange))
    if x.dim() == 4:
        assert q.data.is_contiguous(memory_format=torch.channels_last)


def test_quantize_strided_input(isa):
    x = torch.randn(40, 30)[::2, 1::3].T
    assert torch.equal(fnq.quantize(x, 0.1, 5).dequantize(), fq(x, 0.1, 5))


@pytest.mark.parametrize("axis", [0, 1])
def test_per_channel_weight_quantize(isa, axis):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, 5, 3, 3, generator=g)
    s = torch.rand(w.shape[axis], generator=g) + 0.01
    z = torch.randint(-5, 5, (w.shape[axis],), dtype=torch.int32, generator=g)
    q = _C.quantize_per_channel(w, s, z, axis, -128, 127, True)
    ref = torch.fake_quantize_per_channel_affine(w, s, z, axis, -128, 127)
    assert torch.equal(_C.dequantize_per_channel(q, s, z, axis), ref)


# ---- Conv2d -------------------------------------------------------------------------------------

CONVS = [  # (cin, cout, k, stride, pad, dilation, groups, hw)
    (8, 16, 3, 1, 1, 1, 1, 9), (3, 8, 3, 2, 1, 1, 1, 15), (16, 24, 1, 1, 0, 1, 1, 7), (16, 8, 1, 2, 0, 1, 1, 8),
    (8, 8, 3, 1, 1, 1, 8, 10), (24, 24, 3, 2, 1, 1, 24, 11), (32, 32, 5, 1, 2, 1, 32, 7), (8, 16, 3, 1, 0, 1, 2, 6),
    (12, 12, (3, 1), 1, (1, 0), 1, 4, 9), (6, 6, 3, 1, 2, 2, 6, 9), (5, 7, 2, 1, 0, 1, 1, 4),
    (17, 17, 3, 1, 1, 1, 17, 5),
]


def conv_case(cin, cout, k, stride, pad, dil, groups, hw, seed=0, relu=False, w_zp=0):
    g = torch.Generator().manual_seed(seed)
    kh, kw = (k, k) if isinstance(k, int) else k
    x = torch.randn(2, cin, hw, hw + 1, generator=g)
    w = torch.randn(cout, cin // groups, kh, kw, generator=g) * 0.2
    b = torch.randn(cout, generator=g) * 0.5
    w_scale = (w.abs().amax((1, 2, 3)) / 127).float() + 1e-6
    cls = fnq.ConvReLU2d if relu else fnq.Conv2d
    mod = cls.from_float(w, b, w_scale, w_zp, 0.07, 100, stride, pad, dil, groups)
    qx = qt(x, 0.03, 120)
    return x, w, b, w_scale, mod, qx


def exact_conv(mod, qx):
    """sum (x - zx) * (w - zw) in float64 (exact for these sizes), NCHW."""
    xf = qx.data.double() - qx.zero_point
    wf = mod.weight.double() - mod.weight_zero_point.double()[:, None, None, None]
    return F.conv2d(xf, wf, None, mod.stride, mod.padding, mod.dilation, mod.groups).round().long()


@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("relu", [False, True])
def test_conv_exact_to_requant_formula(isa, case, relu):
    x, w, b, w_scale, mod, qx = conv_case(*case, relu=relu)
    y = mod(qx)
    assert y.data.is_contiguous(memory_format=torch.channels_last)
    acc = exact_conv(mod, qx).permute(0, 2, 3, 1)  # channels last: the epilogue's column is the channel
    ref = requant_reference(acc, qx.scale, mod.weight_scale, mod.bias, 0.07, 100, relu=relu).permute(0, 3, 1, 2)
    assert torch.equal(y.data, ref)


@pytest.mark.parametrize("case", [CONVS[0], CONVS[4], CONVS[7]])
def test_conv_weight_zero_point_exact(isa, case):
    x, w, b, w_scale, mod, qx = conv_case(*case, seed=3, w_zp=torch.arange(case[1]) % 7 - 3)
    acc = exact_conv(mod, qx).permute(0, 2, 3, 1)
    ref = requant_reference(acc, qx.scale, mod.weight_scale, mod.bias, 0.07, 100).permute(0, 3, 1, 2)
    assert torch.equal(mod(qx).data, ref)


@pytest.fixture
def fbgemm_engine():
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "fbgemm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch.backends.quantized.engine = old


@pytest.mark.parametrize("case", CONVS[:9])
def test_conv_vs_torch_quantized(isa, fbgemm_engine, case):
    """Inputs in 0..127 (fbgemm's reduce_range contract): with 8-bit inputs torch's depthwise
    kernel saturates int16 pair sums (off by up to 5 LSB) where ours stays exact."""
    import torch.ao.nn.quantized as tq

    x, w, b, w_scale, mod, _ = conv_case(*case, seed=4)
    qx = fnq.quantize(x, 0.03, 60, 0, 127)
    cin, cout, k, stride, pad, dil, groups, _ = case
    ref_mod = tq.Conv2d(cin, cout, k, stride, pad, dil, groups)
    qw = torch.quantize_per_channel(w, w_scale.double(), torch.zeros(cout, dtype=torch.long), 0, torch.qint8)
    ref_mod.set_weight_bias(qw, b)
    ref_mod.scale, ref_mod.zero_point = 0.07, 100
    ref = ref_mod(torch._make_per_tensor_quantized_tensor(qx.data.contiguous(), 0.03, 60)).int_repr()
    assert torch.equal(mod.weight, qw.int_repr())
    diff = lsb(mod(qx).data, ref)
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01


@pytest.mark.parametrize("case", CONVS)
def test_conv_vs_fake_quant_float(case):
    x, w, b, w_scale, mod, qx = conv_case(*case, seed=5)
    cin, cout, k, stride, pad, dil, groups, _ = case
    wq = torch.fake_quantize_per_channel_affine(w, w_scale, torch.zeros(cout, dtype=torch.int32), 0, -128, 127)
    y = F.conv2d(fq(x, 0.03, 120), wq, b, stride, pad, dil, groups)
    ref = fnq.quantize(y, 0.07, 100).data
    diff = lsb(mod(qx).data, ref)
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01


def test_dwconv_int32_exact_with_zero_points(isa):
    g = torch.Generator().manual_seed(6)
    for c, k, s, p, d in [(1, 3, 1, 1, 1), (16, 3, 2, 1, 1), (19, 5, 1, 2, 2), (40, 3, 1, 0, 1), (33, 1, 3, 0, 1)]:
        x = torch.randint(0, 256, (2, c, 11, 8), dtype=torch.uint8, generator=g)
        w = torch.randint(-128, 128, (c, 1, k, k), dtype=torch.int8, generator=g)
        wz = torch.randint(-128, 128, (c,), dtype=torch.int32, generator=g)
        taps, colsum = _C.int8_pack_dw_weight(w, wz)
        epi = qF.epilogue(None, wz, None, 1.0, 1.0, 0, out_dtype="int32")
        y = _C.int8_dwconv(x, taps, colsum, k, k, [s, s], [p, p], [d, d], 77, epi)
        ref = F.conv2d(x.double() - 77, w.double() - wz.double()[:, None, None, None], None, s, p, d, c)
        assert torch.equal(y.long(), ref.round().long())


# ---- Linear -------------------------------------------------------------------------------------

@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", [(1, 16, 8), (3, 5, 100, 70), (64, 256, 10)])
def test_linear_vs_fake_quant_float(isa, shape, relu):
    g = torch.Generator().manual_seed(7)
    *lead, k, n = shape
    x = torch.randn(*lead, k, generator=g)
    w = torch.randn(n, k, generator=g) * 0.1
    b = torch.randn(n, generator=g)
    w_scale = (w.abs().amax(1) / 127).float()
    mod = (fnq.LinearReLU if relu else fnq.Linear).from_float(w, b, w_scale, 0, 0.05, 110)
    y = mod(qt(x, 0.03, 120))
    assert y.shape == (*lead, n) and (y.scale, y.zero_point) == (0.05, 110)
    wq = torch.fake_quantize_per_channel_affine(w, w_scale, torch.zeros(n, dtype=torch.int32), 0, -128, 127)
    yf = F.linear(fq(x, 0.03, 120), wq, b)
    ref = fnq.quantize(F.relu(yf) if relu else yf, 0.05, 110).data
    diff = lsb(y.data, ref)
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.02


def test_linear_float_output(isa):
    g = torch.Generator().manual_seed(8)
    w = torch.randn(20, 30, generator=g) * 0.1
    mod = fnq.Linear.from_float(w, None, 0.001, 0, 0.05, 110)
    qx = qt(torch.randn(4, 30, generator=g), 0.03, 120)
    y = qF.linear(qx, mod.packed_weight(), mod.weight_scale, mod.weight_zero_point, None, 1.0, 0,
                  out_dtype="float32")
    acc = (qx.data.long() - 120) @ mod.weight.long().T
    assert torch.equal(y, acc.float() * (torch.tensor(0.03) * mod.weight_scale))


# ---- elementwise and other modules --------------------------------------------------------------

@given(seed=st.integers(0, 2**31), zp=st.integers(0, 255), relu=st.booleans())
def test_functional_matches_fake_quant_model(seed, zp, relu):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(2, 8, 5, 5, generator=g), torch.randn(2, 8, 5, 5, generator=g) * 2
    qa, qb = qt(a, 0.02, 130), qt(b, 0.05, 90)
    fa, fb = qa.dequantize(), qb.dequantize()
    f = fnq.QFunctional(0.04, zp)
    add = f.add_relu(qa, qb) if relu else f.add(qa, qb)
    assert torch.equal(add.dequantize(), fq(F.relu(fa + fb) if relu else fa + fb, 0.04, zp))
    assert torch.equal(f.mul(qa, qb).dequantize(), fq(fa * fb, 0.04, zp))
    assert torch.equal(f.cat([qa, qb], 1).dequantize(), fq(torch.cat([fa, fb], 1), 0.04, zp))
    qs = qt(torch.randn(2, 8, 1, 1, generator=g), 0.01, 128)  # broadcast (squeeze-excite style)
    assert torch.equal(f.mul(qa, qs).dequantize(), fq(fa * qs.dequantize(), 0.04, zp))


def test_elementwise_every_isa(isa):
    g = torch.Generator().manual_seed(9)
    a, b = torch.randn(3, 37, generator=g), torch.randn(3, 37, generator=g)
    qa, qb = qt(a, 0.02, 130), qt(b, 0.05, 90)
    fa, fb = qa.dequantize(), qb.dequantize()
    assert torch.equal(qF.add(qa, qb, 0.03, 7).dequantize(), fq(fa + fb, 0.03, 7))
    assert torch.equal(qF.mul(qa, qb, 0.03, 7, 0, 127).dequantize(), fq(fa * fb, 0.03, 7, 0, 127))
    assert torch.equal(qF.requantize(qa.reshape(37, 3), 0.1, 0).dequantize(), fq(fa.reshape(37, 3), 0.1, 0))


def test_relu_pool_flatten():
    x = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(10))
    q = qt(x, 0.05, 100)
    fx = q.dequantize()
    assert torch.equal(fnq.ReLU()(q).dequantize(), F.relu(fx))
    assert torch.equal(F.relu(q).data, torch.relu(q).data)
    assert torch.equal(fnq.MaxPool2d(3, 2, 1)(q).dequantize(), F.max_pool2d(fx, 3, 2, 1))
    assert torch.equal(fnq.AdaptiveAvgPool2d(1)(q).dequantize(), fq(F.adaptive_avg_pool2d(fx, 1), 0.05, 100))
    assert torch.equal(fnq.Flatten()(q).dequantize(), torch.flatten(fx, 1))
    assert torch.equal(torch.flatten(q, 1).data, q.data.flatten(1))
    assert torch.equal(torch.mean(q, [2, 3]).dequantize(), fq(fx.mean([2, 3]), 0.05, 100))
    assert torch.equal(fnq.DeQuantize()(q), fx)


def small_net(seed=0):
    g = torch.Generator().manual_seed(seed)
    conv = fnq.ConvReLU2d.from_float(torch.randn(8, 3, 3, 3, generator=g) * 0.3, torch.randn(8, generator=g), 0.005,
                                     0, 0.05, 0, padding=1)
    dw = fnq.ConvReLU2d.from_float(torch.randn(8, 1, 3, 3, generator=g) * 0.3, None, torch.rand(8, generator=g) * 0.01
                                   + 0.001, 0, 0.05, 0, padding=1, groups=8)
    fc = fnq.Linear.from_float(torch.randn(5, 8, generator=g) * 0.3, torch.randn(5, generator=g), 0.003, 0, 0.1, 128)
    return torch.nn.Sequential(fnq.Quantize(0.02, 128), conv, dw, fnq.AdaptiveAvgPool2d(1), fnq.Flatten(), fc,
                               fnq.DeQuantize())


def test_state_dict_round_trip():
    net, fresh = small_net(0), small_net(1)
    x = torch.randn(2, 3, 10, 10, generator=torch.Generator().manual_seed(11))
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    assert not torch.equal(fresh(x), net(x))
    fresh.load_state_dict(torch.load(buf))
    assert torch.equal(fresh(x), net(x))
    assert fresh[1].scale == 0.05 and fresh[5].zero_point == 128
    lin = fnq.Linear(8, 5, bias=False)
    lin.load_state_dict({k: v for k, v in net[5].state_dict().items() if k != "bias"})
    assert lin.get_extra_state() == net[5].get_extra_state()


def test_bad_inputs():
    lin = fnq.Linear.from_float(torch.randn(5, 8), None, 0.01, 0, 0.1, 0)
    with pytest.raises(TypeError, match="QTensor"):
        lin(torch.randn(2, 8))
    with pytest.raises(ValueError, match="input has 7 columns"):
        lin(qt(torch.randn(2, 7), 0.1, 0))
    conv = fnq.Conv2d.from_float(torch.randn(4, 3, 3, 3), None, 0.01, 0, 0.1, 0)
    with pytest.raises(ValueError, match="Conv2d expects"):
        conv(qt(torch.randn(1, 4, 5, 5), 0.1, 0))
    with pytest.raises(ValueError, match="smaller than the"):
        conv(qt(torch.randn(1, 3, 2, 2), 0.1, 0))
    with pytest.raises(ValueError, match="one per output channel"):
        fnq.Linear.from_float(torch.randn(5, 8), None, torch.ones(4), 0, 0.1, 0)
    with pytest.raises(ValueError, match="scale must be"):
        fnq.Quantize(0.0, 0)
    with pytest.raises(ValueError, match="zero_point"):
        fnq.Quantize(0.1, 300)
    with pytest.raises(TypeError, match="uint8 or int8"):
        QTensor(torch.randn(3), 0.1, 0)
    with pytest.raises(TypeError, match="dequantize"):
        torch.sigmoid(qt(torch.randn(3), 0.1, 0))
    with pytest.raises(ValueError, match="broadcast"):
        qF.add(qt(torch.randn(2, 3), 0.1, 0), qt(torch.randn(2, 4), 0.1, 0), 0.1, 0)
    with pytest.raises(ValueError, match="groups"):
        fnq.Conv2d(6, 4, 3, groups=4)
    with pytest.raises(TypeError, match="float tensor"):
        fnq.quantize([1.0], 0.1, 0)
    with pytest.raises(TypeError, match="input must be a float32"):
        fnq.quantize(torch.ones(3, dtype=torch.int32), 0.1, 0)


def test_from_float_takes_fake_quant_tensors():
    """qparams as a QAT model holds them: 1-element / per-channel tensors, possibly requiring grad,
    integral float zero points (a learned one, rounded)."""
    w = torch.randn(4, 3, requires_grad=True)
    s = (torch.rand(4) * 0.01 + 0.01).requires_grad_()
    mod = fnq.Linear.from_float(w, torch.zeros(4, requires_grad=True), s, torch.tensor([0.0, 1.0, -2.0, 0.0]),
                                torch.tensor([0.05]), torch.tensor([3], dtype=torch.int32))
    assert mod.weight_zero_point.tolist() == [0, 1, -2, 0]
    assert (mod.scale, mod.zero_point) == (torch.tensor(0.05).item(), 3)
    assert torch.equal(_C.dequantize_per_channel(mod.weight, mod.weight_scale, mod.weight_zero_point, 0),
                       torch.fake_quantize_per_channel_affine(w.detach(), s.detach(), mod.weight_zero_point, 0,
                                                              -128, 127))
    with pytest.raises(ValueError, match="integers"):
        fnq.Linear.from_float(w, None, s, torch.full((4,), 0.5), 0.05, 3)
