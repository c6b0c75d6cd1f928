"""The int8 modules and convert on CUDA against the same modules on the CPU, bit for bit.

Every case runs the CPU model and the same model moved to the device; on "cpu" the device copy is a
deep copy (which checks the test logic itself), on "cuda" the CUDA kernels (skipped without a GPU).
"""
import copy

import pytest
import torch
from torch import nn

import fakequant.quantization as fq
from fakequant import _C
from fakequant.examples.mobilenet import TinyMobileNetV2
from fakequant.nn import quantized as nnq
from fakequant.nn.quantized import functional as qF

needs_cuda = pytest.mark.skipif(not (torch.cuda.is_available() and _C.cuda_built),
                                reason="needs a GPU and fakequant built with CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]


def exact(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    torch.testing.assert_close(a.cpu(), b.cpu(), rtol=0, atol=0, equal_nan=True)


def same_q(a: nnq.QTensor, b: nnq.QTensor):
    assert (a.scale, a.zero_point) == (b.scale, b.zero_point)
    exact(a.data, b.data)


def to(q: nnq.QTensor, device) -> nnq.QTensor:
    return nnq.QTensor(q.data.to(device), q.scale, q.zero_point)


def randq(shape, zp=120, scale=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    return nnq.quantize(torch.randn(shape, generator=g) * 2, scale, zp)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("qrange", [(0, 255), (-128, 127), (3, 250)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_quantize_dequantize_match_cpu(device, dtype, qrange, layout):
    qmin, qmax = qrange
    g = torch.Generator().manual_seed(qmin + 7)
    x = (torch.randn(3, 5, 6, 7, generator=g) * 8).to(dtype)
    x.view(-1)[:5] = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.5 * 0.07, 2.5 * 0.07]).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    xd = x.to(device)
    if layout == "strided":
        x, xd = x[:, :, ::2], xd[:, :, ::2]
    zp = (qmin + qmax) // 2
    ref = _C.quantize_per_tensor(x, 0.07, zp, qmin, qmax, qmin < 0)
    out = (_C.cuda_quantize_per_tensor if device == "cuda" else _C.quantize_per_tensor)(xd, 0.07, zp, qmin, qmax,
                                                                                      qmin < 0)
    exact(out, ref)
    exact(nnq.QTensor(out, 0.07, zp).dequantize(), nnq.QTensor(ref, 0.07, zp).dequantize())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["add", "add_relu", "mul"])
@pytest.mark.parametrize("broadcast", [False, True])
def test_elementwise_matches_cpu(device, op, broadcast):
    a = randq((2, 8, 5, 5), 100, 0.04, 1)
    b = randq((1, 8, 1, 5) if broadcast else (2, 8, 5, 5), 130, 0.03, 2)
    fn = getattr(qF, op)
    same_q(fn(to(a, device), to(b, device), 0.06, 90), fn(a, b, 0.06, 90))
    same_q(qF.requantize(to(a, device), 0.02, 10, 5, 200), qF.requantize(a, 0.02, 10, 5, 200))
    same_q(qF.cat([to(a, device), to(a, device)], 1, 0.05, 128), qF.cat([a, a], 1, 0.05, 128))


def conv_module(cin, cout, k, stride, pad, dil, groups, relu, w_zp, bias, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(cout, cin // groups, k, k, generator=g) * 0.2
    w_scale = torch.rand(cout, generator=g) * 0.01 + 0.002
    w_zero_point = torch.randint(-3, 4, (cout,), generator=g, dtype=torch.int32) if w_zp else 0
    b = torch.randn(cout, generator=g) if bias else None
    cls = nnq.ConvReLU2d if relu else nnq.Conv2d
    return cls.from_float(w, b, w_scale, w_zero_point, 0.08, 110, stride=stride, padding=pad, dilation=dil,
                          groups=groups)


CONVS = {  # cin, cout, k, stride, pad, dil, groups
    "3x3": (16, 32, 3, 1, 1, 1, 1),
    "3x3_s2_odd_channels": (3, 20, 3, 2, 1, 1, 1),
    "5x5_dilated": (8, 16, 5, 1, 3, 2, 1),
    "1x1": (32, 48, 1, 1, 0, 1, 1),
    "1x1_s2": (24, 16, 1, 2, 0, 1, 1),
    "grouped": (16, 32, 3, 1, 1, 1, 4),
    "depthwise": (32, 32, 3, 1, 1, 1, 32),
    "depthwise_s2_odd": (13, 13, 3, 2, 1, 1, 13),
    "depthwise_5x5_dilated": (24, 24, 5, 1, 4, 2, 24),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(CONVS))
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("w_zp", [False, True])
def test_conv_matches_cpu(device, case, relu, w_zp):
    cin, cout, k, stride, pad, dil, groups = CONVS[case]
    mod = conv_module(cin, cout, k, stride, pad, dil, groups, relu, w_zp, bias=not relu, seed=len(case))
    x = randq((2, cin, 11, 9), seed=cin)
    ref = mod(x)
    out = copy.deepcopy(mod).to(device)(to(x, device))
    same_q(out, ref)
    assert out.data.device.type == device
    assert out.data.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(5, 64, 48), (3, 7, 30, 17), (1, 256, 1000), (130, 96, 130)])
@pytest.mark.parametrize("relu", [False, True])
def test_linear_matches_cpu(device, shape, relu):
    *lead, k, n = shape
    g = torch.Generator().manual_seed(k)
    cls = nnq.LinearReLU if relu else nnq.Linear
    mod = cls.from_float(torch.randn(n, k, generator=g) * 0.1, torch.randn(n, generator=g),
                         torch.rand(n, generator=g) * 0.01 + 0.001, torch.randint(-2, 3, (n,), dtype=torch.int32),
                         0.1, 100)
    x = randq((*lead, k), seed=n)
    same_q(copy.deepcopy(mod).to(device)(to(x, device)), mod(x))


@pytest.mark.parametrize("device", DEVICES)
def test_pooling_and_float_ops_match_cpu(device):
    x = randq((2, 8, 9, 7), seed=3)
    xd = to(x, device)
    same_q(qF.max_pool2d(xd, 3, 2, 1), qF.max_pool2d(x, 3, 2, 1))
    same_q(qF.adaptive_avg_pool2d(xd, 1), qF.adaptive_avg_pool2d(x, 1))
    same_q(xd.mean((2, 3)), x.mean((2, 3)))
    same_q(xd.relu(), x.relu())
    f = nnq.QFunctional(0.1, 120)
    same_q(f.matmul(xd, xd.reshape(2, 8, 7, 9)), f.matmul(x, x.reshape(2, 8, 7, 9)))


def trained_tiny_mobilenet():
    torch.manual_seed(0)
    model = TinyMobileNetV2().train()
    model.fuse_model()
    model.qconfig = fq.get_default_qat_qconfig("x86")
    qat = fq.prepare_qat(model)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 8, 8, generator=g) * 2, torch.randint(0, 10, (64,), generator=g)
    opt = torch.optim.SGD(qat.parameters(), lr=0.05, momentum=0.9)
    for _ in range(4):
        loss = nn.functional.cross_entropy(qat(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return qat.eval(), x


@pytest.mark.parametrize("device", DEVICES)
def test_converted_network_on_device_matches_cpu(device):
    """A converted network moved to the device, and one converted from a QAT model on the device,
    give the CPU int8 model's outputs bit for bit."""
    qat, x = trained_tiny_mobilenet()
    int8 = fq.convert(qat)
    with torch.no_grad():
        ref = int8(x)
        moved = copy.deepcopy(int8).to(device)(x.to(device))
        direct = fq.convert(copy.deepcopy(qat).to(device))
        assert all(b.device.type == device for b in direct.buffers())
        exact(moved, ref)
        exact(direct(x.to(device)), ref)
