"""int8_mm and the requantizing GEMM: exactness, requantization, torch oracle, errors.

Exact against int64 on every ISA path, fbgemm's requantization formula bit for bit, torch's
quantized Linear within 1 LSB, and clear errors for bad inputs.
"""
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fakequant
from fakequant import _C
from fakequant.int8 import int8_gemm, pack_weight
from fakequant.nn.quantized import functional as qF

SHAPES = [(1, 1, 1), (1, 64, 64), (2, 3, 5), (7, 13, 70), (6, 64, 16), (13, 4, 17), (33, 100, 130), (5, 65, 129),
          (64, 256, 64), (97, 33, 200), (50, 130, 3)]


def rand_a(m, k, dtype, gen=None):
    a = torch.randint(0, 256, (m, k), dtype=torch.uint8, generator=gen)
    return a.view(torch.int8) if dtype == torch.int8 else a


def rand_w(n, k, gen=None):
    return torch.randint(-128, 128, (n, k), dtype=torch.int8, generator=gen)


def exact(a, w):
    return a.long() @ w.long().T


@pytest.mark.parametrize("adtype", [torch.uint8, torch.int8])
@pytest.mark.parametrize("shape", SHAPES)
def test_int8_mm_exact(isa, shape, adtype):
    m, k, n = shape
    g = torch.Generator().manual_seed(m * 1000 + k * 10 + n)
    a, w = rand_a(m, k, adtype, g), rand_w(n, k, g)
    y = fakequant.int8_mm(a, w)
    assert y.dtype == torch.int32 and y.shape == (m, n)
    assert torch.equal(y.long(), exact(a, w))


@given(m=st.integers(1, 40), k=st.integers(1, 300), n=st.integers(1, 150), signed=st.booleans(),
       seed=st.integers(0, 2**31))
def test_int8_mm_exact_random_shapes(m, k, n, signed, seed):
    g = torch.Generator().manual_seed(seed)
    a, w = rand_a(m, k, torch.int8 if signed else torch.uint8, g), rand_w(n, k, g)
    assert torch.equal(fakequant.int8_mm(a, w).long(), exact(a, w))


@pytest.mark.parametrize("layout", ["transposed", "strided", "expanded", "sliced"])
def test_int8_mm_any_strides(isa, layout):
    g = torch.Generator().manual_seed(1)
    base = rand_a(70, 90, torch.uint8, g)
    a = {"transposed": base.T[:, :60], "strided": base[::3, ::2], "expanded": base[:1].expand(9, 90),
         "sliced": base[5:40, 3:80]}[layout]
    w = rand_w(37, a.shape[1], g)
    assert torch.equal(fakequant.int8_mm(a, w).long(), exact(a, w))
    assert torch.equal(fakequant.int8_mm(a, w.T.contiguous().T).long(), exact(a, w))


@pytest.mark.parametrize("k", [1, 2, 4, 64, 1000])
@pytest.mark.parametrize("aval,wval,adtype", [(255, -128, torch.uint8), (255, 127, torch.uint8),
                                              (-128, -128, torch.int8), (127, -128, torch.int8),
                                              (128, -128, torch.uint8), (129, -128, torch.uint8),
                                              (127, -128, torch.uint8)])
def test_int8_mm_saturation_worst_case(isa, k, aval, wval, adtype):
    """Every pair sum at the int16 limit (255 * -128 twice) and the vpmaddubsw boundary (128, 129)."""
    a = torch.full((9, k), aval, dtype=adtype)
    w = torch.full((70, k), wval, dtype=torch.int8)
    w[1::2, ::3] = 127 if wval < 0 else -128  # mixed signs too
    assert torch.equal(fakequant.int8_mm(a, w).long(), exact(a, w))


def test_int8_mm_seven_bit_activations(isa):
    """Activations in 0..127 (reduce_range): the AVX2 path takes vpmaddubsw, still exact."""
    g = torch.Generator().manual_seed(2)
    a = torch.randint(0, 128, (37, 200), dtype=torch.uint8, generator=g)
    w = rand_w(90, 200, g)
    w[0, :2] = -128
    a[0, :2] = 127
    assert torch.equal(fakequant.int8_mm(a, w).long(), exact(a, w))


def test_int8_mm_largest_k():
    k = 65793  # 255 * 128 * k just below 2^31
    a = torch.full((2, k), 255, dtype=torch.uint8)
    w = torch.full((3, k), -128, dtype=torch.int8)
    assert torch.equal(fakequant.int8_mm(a, w).long(), exact(a, w))


def test_packed_weight_reuse(isa):
    g = torch.Generator().manual_seed(3)
    w = rand_w(100, 77, g)
    pw = pack_weight(w)
    assert isinstance(pw, fakequant.PackedWeight) and (pw.n, pw.k) == (100, 77)
    for m in (1, 5, 64):
        a = rand_a(m, 77, torch.uint8, g)
        assert torch.equal(fakequant.int8_mm_packed(a, pw).long(), exact(a, w))


def test_empty_dims():
    assert fakequant.int8_mm(torch.zeros(0, 5, dtype=torch.uint8), rand_w(3, 5)).shape == (0, 3)
    assert fakequant.int8_mm(torch.zeros(4, 5, dtype=torch.uint8), rand_w(0, 5)).shape == (4, 0)
    y = fakequant.int8_mm(torch.ones(4, 0, dtype=torch.uint8), torch.ones(3, 0, dtype=torch.int8))
    assert torch.equal(y, torch.zeros(4, 3, dtype=torch.int32))


@pytest.mark.parametrize("shape", [(300, 200, 260), (1000, 64, 70), (20, 300, 700)])  # rows / columns split
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_count_does_not_change_results(threads, shape):
    m, k, n = shape
    g = torch.Generator().manual_seed(4)
    a, w = rand_a(m, k, torch.uint8, g), rand_w(n, k, g)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert torch.equal(fakequant.int8_mm(a, w).long(), exact(a, w))
    finally:
        torch.set_num_threads(old)


# ---- zero points and the requantization epilogue ------------------------------------------------

def raw(a, w, a_zp, w_zp):
    return (a.long() - a_zp) @ (w.long() - w_zp.long()[:, None]).T


def requant_reference(acc, x_scale, w_scale, bias, out_scale, out_zp, qmin=0, qmax=255, relu=False):
    """fbgemm's ReQuantizeOutput in float32 torch ops (no FMA): the kernels' specification."""
    a = torch.tensor(x_scale, dtype=torch.float32) * w_scale
    mult = a / torch.tensor(out_scale, dtype=torch.float32)
    bias_div = bias / a if bias is not None else torch.zeros_like(a)
    f = ((acc.to(torch.float32) + bias_div) * mult).clamp(-1024, 1024)
    q = torch.round(f).long() + out_zp
    return q.clamp(max(qmin, out_zp) if relu else qmin, qmax).to(torch.uint8)


@pytest.mark.parametrize("adtype", [torch.uint8, torch.int8])
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 13, 70), (33, 100, 130), (64, 256, 64)])
def test_zero_points_exact(isa, shape, adtype):
    m, k, n = shape
    g = torch.Generator().manual_seed(5)
    a, w = rand_a(m, k, adtype, g), rand_w(n, k, g)
    a_zp = 100 if adtype == torch.uint8 else -20
    w_zp = torch.randint(-128, 128, (n,), dtype=torch.int32, generator=g)
    epi = qF.epilogue(None, w_zp, None, 1.0, 1.0, 0, out_dtype="int32")
    assert torch.equal(int8_gemm(a, pack_weight(w), a_zp, epi).long(), raw(a, w, a_zp, w_zp))


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("has_bias", [False, True])
@pytest.mark.parametrize("shape", [(1, 768, 64), (5, 13, 70), (33, 100, 130), (128, 64, 48)])
def test_requant_matches_formula(isa, shape, has_bias, relu):
    m, k, n = shape
    g = torch.Generator().manual_seed(6)
    a, w = rand_a(m, k, torch.uint8, g), rand_w(n, k, g)
    w_zp = torch.zeros(n, dtype=torch.int32)
    w_zp[::5] = 3
    w_scale = torch.rand(n, generator=g) * 0.01 + 1e-3
    bias = torch.randn(n, generator=g) * 5 if has_bias else None
    x_scale, out_scale, out_zp = 0.02, 0.3, 90
    acc = raw(a, w, 128, w_zp)
    epi = qF.epilogue(w_scale, w_zp, bias, x_scale, out_scale, out_zp, 3, 250, relu)
    y = int8_gemm(a, pack_weight(w), 128, epi)
    assert torch.equal(y, requant_reference(acc, x_scale, w_scale, bias, out_scale, out_zp, 3, 250, relu))
    f = int8_gemm(a, pack_weight(w), 128, qF.epilogue(w_scale, w_zp, bias, x_scale, 1.0, 0, out_dtype="float32"))
    ref = acc.to(torch.float32) * (torch.tensor(x_scale, dtype=torch.float32) * w_scale)
    assert torch.equal(f, ref + bias if bias is not None else ref)


@pytest.fixture
def fbgemm_engine():
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "fbgemm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch.backends.quantized.engine = old


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", [(1, 64, 32), (16, 768, 96), (100, 32, 192), (64, 200, 70)])
def test_linear_vs_torch_quantized(isa, fbgemm_engine, shape, relu):
    """torch.ao.nn.quantized.Linear (the oracle, tests only) agrees within 1 LSB, nearly always
    exactly. Inputs in 0..127: without VNNI fbgemm's vpmaddubsw saturates on 8-bit inputs."""
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as tq

    m, k, n = shape
    g = torch.Generator().manual_seed(7)
    x = torch.randn(m, k, generator=g)
    w = torch.randn(n, k, generator=g) * 0.1
    b = torch.randn(n, generator=g)
    w_scale = (w.abs().amax(1) / 127).float()
    qw = torch.quantize_per_channel(w, w_scale.double(), torch.zeros(n, dtype=torch.long), 0, torch.qint8)
    qx = torch.quantize_per_tensor(x, 0.03, 60, torch.quint8)
    qx = torch._make_per_tensor_quantized_tensor(qx.int_repr().clamp(0, 127), 0.03, 60)
    ref_mod = (nniq.LinearReLU if relu else tq.Linear)(k, n)
    ref_mod.set_weight_bias(qw, b)
    ref_mod.scale, ref_mod.zero_point = 0.05, 110
    ref = ref_mod(qx).int_repr()

    mod = (fakequant.nn.quantized.LinearReLU if relu else fakequant.nn.quantized.Linear).from_float(
        w, b, w_scale, 0, 0.05, 110)
    assert torch.equal(mod.weight, qw.int_repr())
    y = mod(fakequant.nn.quantized.QTensor(qx.int_repr(), 0.03, 60)).data
    diff = (y.int() - ref.int()).abs()
    assert diff.max() <= 1
    assert (diff > 0).float().mean() < 0.01


# ---- bad inputs ---------------------------------------------------------------------------------

def test_bad_inputs():
    a, w = torch.zeros(4, 8, dtype=torch.uint8), torch.zeros(3, 8, dtype=torch.int8)
    with pytest.raises(TypeError, match="input"):
        fakequant.int8_mm(a.float(), w)
    with pytest.raises(TypeError, match="weight"):
        fakequant.int8_mm(a, w.to(torch.uint8))
    with pytest.raises(TypeError, match="input"):
        fakequant.int8_mm([[1]], w)
    with pytest.raises(ValueError, match="input has 7 columns but the weight has K = 8"):
        fakequant.int8_mm(a[:, :7], w)
    with pytest.raises(ValueError, match="input must have 2 dims"):
        fakequant.int8_mm(a[0], w)
    with pytest.raises(ValueError, match="weight must have 2 dims"):
        fakequant.int8_mm(a, w[0])
    with pytest.raises(ValueError, match="accumulator could overflow"):
        fakequant.int8_mm(torch.zeros(1, 65794, dtype=torch.uint8), torch.zeros(1, 65794, dtype=torch.int8))
    with pytest.raises(TypeError, match="PackedWeight"):
        fakequant.int8_mm_packed(a, w)
    pw = pack_weight(w)
    with pytest.raises(ValueError, match="out must be a \\[4, 3\\] view"):
        int8_gemm(a, pw, 0, qF.epilogue(None, None, None, 1.0, 1.0, 0, out_dtype="int32"),
                  out=torch.empty(4, 4, dtype=torch.int32))
    with pytest.raises(TypeError, match="out must have dtype"):
        int8_gemm(a, pw, 0, qF.epilogue(None, None, None, 1.0, 1.0, 0, out_dtype="int32"),
                  out=torch.empty(4, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="out_dtype"):
        int8_gemm(a, pw, 0, qF.epilogue(None, None, None, 1.0, 1.0, 0, out_dtype="int16"))
    with pytest.raises(ValueError, match="input zero_point"):
        int8_gemm(a, pw, 300, qF.epilogue(None, None, None, 1.0, 1.0, 0))
    with pytest.raises(ValueError, match="output scale"):
        int8_gemm(a, pw, 0, qF.epilogue(None, None, None, 1.0, 0.0, 0))
    with pytest.raises(ValueError, match="output zero_point"):
        int8_gemm(a, pw, 0, qF.epilogue(None, None, None, 1.0, 1.0, 256))
    with pytest.raises(ValueError, match="weight scale must have one element per channel"):
        int8_gemm(a, pw, 0, qF.epilogue(torch.ones(4), None, None, 1.0, 1.0, 0))
    with pytest.raises(TypeError, match="bias must have dtype"):
        int8_gemm(a, pw, 0, qF.epilogue(None, None, torch.ones(3, dtype=torch.float64), 1.0, 1.0, 0))


def test_backend_info_reports_int8_gemm(isa):
    assert fakequant.backend_info()["int8_gemm"] == isa


# ---- AMX ----------------------------------------------------------------------------------------

def test_amx_kernel_with_emulated_tiles(tmp_path):
    """The AMX kernel's tiling, padding and layout, run with scalar-emulated tile instructions
    against the reference kernel (tests/amx_emulation.cpp); covers AMX logic on any AVX-512 CPU."""
    import os
    import shutil
    import subprocess

    from conftest import ISAS

    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None or "avx512" not in ISAS:
        pytest.skip("needs a C++ compiler and an AVX-512 CPU (the epilogue is AVX-512 code)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = str(tmp_path / "amx_emulation")
    flags = ["-O1", "-std=c++17", "-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl",
             "-mavx512dq", "-mavx512vnni", "-w", "-I", os.path.join(root, "csrc")]
    sources = [os.path.join(root, p) for p in ("tests/amx_emulation.cpp", "csrc/cpu/int8_pack.cpp",
                                                "csrc/cpu/int8_gemm_ref.cpp")]
    subprocess.run([cxx, *flags, *sources, "-o", exe], check=True, capture_output=True)
    run = subprocess.run([exe], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_amx_path_on_hardware(isa):
    """On AMX machines the isa fixture runs every test above on the tile kernel; this one checks the
    dispatch itself (skipped where the CPU has no AMX)."""
    if isa != "amx":
        pytest.skip("runs under the amx level only")
    assert fakequant.backend_info()["int8_gemm"] == "amx"
    a, w = rand_a(100, 300, torch.uint8), rand_w(90, 300)
    assert torch.equal(fakequant.int8_mm(a, w).long(), exact(a, w))
