"""CUDA kernels against torch's ops and fakequant's CPU kernels; the CUDA cases skip without a GPU.

Fake-quant checks run on every device (the CPU cases check the test logic itself). Where torch's
CUDA op computes differently from its CPU op (float zero points and float64 per-channel outputs in
float; NaN/inf through an int64 cast), fakequant follows the CPU rule on every device, so those cases
compare exactly against fakequant's CPU kernels and within one quantization step against torch.
"""
import types

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import fakequant
import fakequant.nn.quantized as fnq
from fakequant import _C, ops
from fakequant.int8 import int8_gemm, pack_weight

HAS_GPU = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not (HAS_GPU and _C.cuda_built), reason="needs a GPU and fakequant built with CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]
FLOATS = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
RANGES = [(0, 255), (-128, 127), (0, 127), (-8, 7), (0, 1), (-1000, 1000)]
LAYOUTS = ["contiguous", "offset", "transposed", "channels_last", "strided"]


def exact(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def make(values, layout, device):
    """values (CPU) laid out as `layout` on `device`: a leaf tensor with the same logical content."""
    shape = values.shape
    if layout == "offset":  # storage starts one element in: no 16-byte alignment
        base = torch.empty(values.numel() + 1, dtype=values.dtype, device=device)
        x = base[1:].view(shape)
        x.copy_(values)
        return x
    if layout == "transposed" and values.dim() >= 2:
        return values.transpose(0, -1).contiguous().transpose(0, -1).to(device)
    if layout == "channels_last" and values.dim() == 4:
        return values.to(device).contiguous(memory_format=torch.channels_last)
    if layout == "strided":  # every other element of the last dim
        x = torch.zeros(*shape[:-1], 2 * shape[-1], dtype=values.dtype, device=device)[..., ::2]
        x.copy_(values)
        return x
    return values.to(device)


def same_layout_cpu(x):
    """x on the CPU with the same sizes and strides (so walk orders and mask bits match)."""
    c = torch.empty_strided(x.size(), x.stride(), dtype=x.dtype)
    c.copy_(x)
    return c


@st.composite
def fq_case(draw, max_dims=4):
    ndim = draw(st.integers(1, max_dims))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    if draw(st.booleans()):  # long rows: the vector path and many mask words
        shape = shape[:-1] + (draw(st.integers(60, 700)),)
    qmin, qmax = draw(st.sampled_from(RANGES))
    layout = draw(st.sampled_from(LAYOUTS))
    seed = draw(st.integers(0, 2**31 - 1))
    return shape, qmin, qmax, layout, seed


def values(shape, dtype, seed, spread=4.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * spread).to(dtype)


def test_cuda_kernels_built():
    """A machine with a GPU must get the CUDA kernels (otherwise every CUDA test would skip)."""
    if not HAS_GPU:
        pytest.skip("no GPU")
    assert _C.cuda_built, "torch sees a GPU but fakequant was built without CUDA"


def test_cuda_input_without_cuda_build_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(ops._C, "cuda_built", False)
    with pytest.raises(RuntimeError, match="no CUDA kernels"):
        ops._kernel("fake_quant_per_tensor", types.SimpleNamespace(device=torch.device("cuda")))


@needs_cuda
def test_cuda_smoke_every_kernel():
    """Every CUDA kernel once on odd shapes (the compute-sanitizer target, .ci/cuda_sanitize.sh)."""
    v = values((3, 5, 7, 11), torch.float32, 0)
    for dtype in FLOATS:
        x = make(v.to(dtype), "offset", "cuda").requires_grad_()
        xc = same_layout_cpu(x.detach()).requires_grad_()
        y, yc = (fakequant.fake_quantize_per_tensor_affine(t, 0.07, 3, -128, 127) for t in (x, xc))
        g = values(v.shape, dtype, 1)
        y.backward(g.cuda())
        yc.backward(g)
        exact(y.cpu(), yc.detach())
        exact(x.grad.cpu(), xc.grad)
        s, z = torch.rand(5) + 0.01, torch.randint(-3, 4, (5,), dtype=torch.int32)
        exact(fakequant.fake_quantize_per_channel_affine(x.detach(), s.cuda(), z.cuda(), 1, -128, 127).cpu(),
              fakequant.fake_quantize_per_channel_affine(xc.detach(), s, z, 1, -128, 127))
    x, dy = v.cuda(), values(v.shape, torch.float32, 2).cuda()
    s, z = torch.tensor([0.05], device="cuda"), torch.tensor([3.3], device="cuda")
    exact(_C.cuda_lsq_per_tensor(x, s, z, -128, 127),
          torch._fake_quantize_learnable_per_tensor_affine(x, s, z, -128, 127, 1.0))
    _C.cuda_lsq_per_tensor_backward(dy, x, s, z, -128, 127, 0.5)
    sc, zc = torch.rand(7, device="cuda") + 0.01, torch.rand(7, device="cuda") * 5
    exact(_C.cuda_lsq_per_channel(x, sc, zc, 2, -128, 127),
          torch._fake_quantize_learnable_per_channel_affine(x, sc, zc, 2, -128, 127, 1.0))
    _C.cuda_lsq_per_channel_backward(dy, x, sc, zc, 2, -128, 127, 0.5)
    on = torch.ones(1, dtype=torch.long, device="cuda")
    _C.cuda_fused_obs_fake_quant(x, on, on, *fused_buffers(1, "cuda", False), 0.01, 0, 255, 0, False,
                                            False, True)
    _C.cuda_fused_obs_fake_quant(x, on, on, *fused_buffers(7, "cuda", False), 0.01, -128, 127, 2, True,
                                            True, True)
    for m, n, k in [(33, 17, 48), (33, 17, 45)]:  # tensor-core kernel, dp4a kernel
        a, w = int8_operands(m, n, k, torch.uint8, k)
        exact(_C.cuda_int8_mm(a.cuda(), w.cuda()).cpu(), (a.long() @ w.long().T).int())
        epi = _C.Int8Epilogue(torch.ones(n, device="cuda"), torch.zeros(n, dtype=torch.int32, device="cuda"), None,
                              0.1, 0.5, 2, relu=True, out_dtype="uint8")
        _C.cuda_int8_gemm(a.cuda(), w.cuda(), 3, epi)
    qx = torch.randint(0, 256, (2, 6, 9, 7), dtype=torch.uint8).cuda().contiguous(memory_format=torch.channels_last)
    wd = torch.randint(-128, 128, (6, 1, 3, 3), dtype=torch.int8).cuda()
    epi = _C.Int8Epilogue(torch.ones(6, device="cuda"), torch.ones(6, dtype=torch.int32, device="cuda"), None, 0.1,
                          0.5, 2, out_dtype="uint8")
    _C.cuda_int8_dwconv(qx, wd, [2, 1], [1, 1], [1, 2], 5, epi)
    q = _C.cuda_quantize_per_tensor(v.cuda(), 0.1, 3, 0, 255, False)
    _C.cuda_dequantize_per_tensor(q, 0.1, 3)
    _C.cuda_int8_elementwise("add", q, 0.1, 3, q[:1], 0.2, 4, 0.3, 5, 0, 255)
    torch.cuda.synchronize()


# ---- fake quant, per tensor ----


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOATS)
@given(case=fq_case(), scale=st.floats(1e-3, 2.0), zp_frac=st.floats(0, 1))
def test_per_tensor_forward_backward_match_torch(device, dtype, case, scale, zp_frac):
    shape, qmin, qmax, layout, seed = case
    zp = round(qmin + zp_frac * (qmax - qmin))
    v = values(shape, dtype, seed)
    xr, xf = make(v, layout, device).requires_grad_(), make(v, layout, device).requires_grad_()
    ref = torch.fake_quantize_per_tensor_affine(xr, scale, zp, qmin, qmax)
    out = fakequant.fake_quantize_per_tensor_affine(xf, scale, zp, qmin, qmax)
    exact(out, ref)
    grad = values(shape, dtype, seed + 1)
    ref.backward(grad.to(device))
    out.backward(grad.to(device))
    exact(xf.grad, xr.grad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@given(case=fq_case(), scale=st.floats(1e-3, 2.0), zp=st.integers(-3, 3))
def test_per_tensor_tensor_qparams_match_torch(device, dtype, case, scale, zp):
    shape, qmin, qmax, layout, seed = case
    zp = min(max(zp, qmin), qmax)
    x = make(values(shape, dtype, seed), layout, device)
    s = torch.tensor([scale], device=device)
    z = torch.tensor([zp], dtype=torch.int32, device=device)
    exact(fakequant.fake_quantize_per_tensor_affine(x, s, z, qmin, qmax),
          torch.fake_quantize_per_tensor_affine(x, s, z, qmin, qmax))


# ---- fake quant, per channel ----


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("zp_dtype", [torch.int32, torch.float32])
@given(case=fq_case(), data=st.data())
def test_per_channel_forward_backward_match_torch(device, dtype, zp_dtype, case, data):
    shape, qmin, qmax, layout, seed = case
    axis = data.draw(st.integers(0, len(shape) - 1))
    c = shape[axis]
    g = torch.Generator().manual_seed(seed + 2)
    scale = torch.rand(c, generator=g) * 0.5 + 0.01
    if zp_dtype == torch.int32:
        zp = torch.randint(qmin, qmax + 1, (c,), generator=g, dtype=torch.int32)
    else:
        zp = torch.rand(c, generator=g) * (qmax - qmin) + qmin
    v = values(shape, dtype, seed)
    xr, xf = make(v, layout, device).requires_grad_(), make(v, layout, device).requires_grad_()
    s, z = scale.to(device), zp.to(device)
    ref = torch.fake_quantize_per_channel_affine(xr, s, z, axis, qmin, qmax)
    out = fakequant.fake_quantize_per_channel_affine(xf, s, z, axis, qmin, qmax)
    grad = values(shape, dtype, seed + 1).to(device)
    out.backward(grad)
    torch_differs = device == "cuda" and (dtype == torch.float64 or zp_dtype == torch.float32)
    if not torch_differs:
        exact(out, ref)
        ref.backward(grad)
        exact(xf.grad, xr.grad)
        return
    # torch's CUDA op computes these in float (and may contract into FMAs): same within one step.
    rtol = {torch.bfloat16: 8e-3, torch.float16: 1e-3}.get(dtype, 1e-6)
    torch.testing.assert_close(out, ref, rtol=rtol, atol=float(scale.max()) * 1.001, equal_nan=True)
    xc = same_layout_cpu(xf.detach()).requires_grad_()
    cpu = fakequant.fake_quantize_per_channel_affine(xc, scale, zp, axis, qmin, qmax)
    cpu.backward(grad.cpu())
    exact(out.cpu(), cpu)
    exact(xf.grad.cpu(), xc.grad)


# ---- CUDA against fakequant's CPU kernels: mask bits, special values ----


@needs_cuda
@pytest.mark.parametrize("dtype", FLOATS)
@given(case=fq_case(), scale=st.floats(1e-3, 2.0), data=st.data())
def test_cuda_masks_equal_cpu_masks(dtype, case, scale, data):
    """Element i of the walk owns bit i of the mask on both devices: the words are identical."""
    shape, qmin, qmax, layout, seed = case
    x = make(values(shape, dtype, seed), layout, "cuda")
    xc = same_layout_cpu(x)
    y, mask, order = _C.cuda_fake_quant_per_tensor(x, scale, 0 if qmin <= 0 <= qmax else qmin, qmin, qmax, True)
    yc, maskc, orderc = _C.fake_quant_per_tensor(xc, scale, 0 if qmin <= 0 <= qmax else qmin, qmin, qmax, True)
    assert order == orderc
    exact(y.cpu(), yc)
    exact(mask.cpu(), maskc)
    axis = data.draw(st.integers(0, len(shape) - 1))
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(shape[axis], generator=g) + 0.01
    z = torch.randint(qmin, qmax + 1, (shape[axis],), generator=g, dtype=torch.int32)
    y, mask, order = _C.cuda_fake_quant_per_channel(x, s.cuda(), z.cuda(), axis, qmin, qmax, True)
    yc, maskc, orderc = _C.fake_quant_per_channel(xc, s, z, axis, qmin, qmax, True)
    assert order == orderc
    exact(y.cpu(), yc)
    exact(mask.cpu(), maskc)


@needs_cuda
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("zp_dtype", [torch.int32, torch.float32])
def test_cuda_special_values_equal_cpu(dtype, zp_dtype):
    """NaN, +-inf, huge values and exact rounding ties follow the CPU rule on the GPU too."""
    special = torch.tensor([float("nan"), float("inf"), -float("inf"), 3e38, -3e38, 0.0, -0.0, 0.25, 0.75, -0.25,
                            1.25, 2.5, -2.5, 127.5, 128.5, -128.5])
    x = special.repeat(37)[:555].to(dtype).reshape(5, 111)
    y, mask, _ = _C.cuda_fake_quant_per_tensor(x.cuda(), 0.5, 3, -128, 127, True)
    yc, maskc, _ = _C.fake_quant_per_tensor(x, 0.5, 3, -128, 127, True)
    exact(y.cpu(), yc)
    exact(mask.cpu(), maskc)
    s = torch.full((111,), 0.5)
    z = torch.full((111,), 3, dtype=zp_dtype) + (0.3 if zp_dtype == torch.float32 else 0)
    y, mask, _ = _C.cuda_fake_quant_per_channel(x.cuda(), s.cuda(), z.cuda(), 1, -128, 127, True)
    yc, maskc, _ = _C.fake_quant_per_channel(x, s, z, 1, -128, 127, True)
    exact(y.cpu(), yc)
    exact(mask.cpu(), maskc)


@needs_cuda
def test_cuda_runs_on_the_current_stream_and_in_graphs():
    x = torch.randn(64, 130, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        y = fakequant.fake_quantize_per_tensor_affine(x, 0.1, 3, 0, 255)
    torch.cuda.current_stream().wait_stream(side)
    exact(y, torch.fake_quantize_per_tensor_affine(x, 0.1, 3, 0, 255))
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fakequant.fake_quantize_per_tensor_affine(x, 0.1, 3, 0, 255)
    x.copy_(torch.randn_like(x))
    graph.replay()
    exact(out, torch.fake_quantize_per_tensor_affine(x, 0.1, 3, 0, 255))
    # Per channel with int32 zero points: the eager call checks their range on the host (as torch does);
    # inside a capture it skips that synchronisation.
    s, z = torch.rand(130, device="cuda") * 0.1 + 0.01, torch.randint(0, 256, (130,), device="cuda", dtype=torch.int32)
    with pytest.raises(ValueError, match="zero_point"):
        fakequant.fake_quantize_per_channel_affine(x, s, z + 300, 1, 0, 255)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fakequant.fake_quantize_per_channel_affine(x, s, z, 1, 0, 255)
    x.copy_(torch.randn_like(x))
    graph.replay()
    exact(out, torch.fake_quantize_per_channel_affine(x, s, z, 1, 0, 255))


# ---- learnable (LSQ) ----


def lsq_case(draw_seed, per_channel, dtype, qmin, qmax, shape, axis):
    g = torch.Generator().manual_seed(draw_seed)
    c = shape[axis] if per_channel else 1
    x = (torch.randn(shape, generator=g) * 3).to(dtype)
    dy = torch.randn(shape, generator=g).to(dtype)
    scale = torch.rand(c, generator=g) * 0.2 + 0.02
    zp = torch.rand(c, generator=g) * (qmax - qmin) * 0.6 + qmin + (qmax - qmin) * 0.2
    return x, dy, scale, zp


@needs_cuda
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@given(shape=st.lists(st.integers(1, 24), min_size=1, max_size=4).map(tuple), data=st.data(),
       qrange=st.sampled_from([(0, 255), (-128, 127), (-8, 7), (0, 15)]), grad_factor=st.floats(0.1, 1.0))
def test_lsq_matches_torch(per_channel, dtype, shape, data, qrange, grad_factor):
    """Against torch's CPU op (the rule fakequant follows on every device: torch's CUDA backward adds the
    zero point before rounding, its CPU one after, so the two disagree at rounding ties) and against
    fakequant's CPU kernels; the sums over elements differ from both only in their order."""
    qmin, qmax = qrange
    axis = data.draw(st.integers(0, len(shape) - 1))
    x, dy, scale, zp = lsq_case(data.draw(st.integers(0, 2**31 - 1)), per_channel, dtype, qmin, qmax, shape, axis)
    xg, dyg, sg, zg = x.cuda(), dy.cuda(), scale.cuda(), zp.cuda()
    args = (axis, qmin, qmax) if per_channel else (qmin, qmax)
    kind = "lsq_per_channel" if per_channel else "lsq_per_tensor"
    y = getattr(_C, "cuda_" + kind)(xg, sg, zg, *args)
    grads = getattr(_C, f"cuda_{kind}_backward")(dyg, xg, sg, zg, *args, grad_factor)
    again = getattr(_C, f"cuda_{kind}_backward")(dyg, xg, sg, zg, *args, grad_factor)
    n = x.numel() // scale.numel()
    bound = float(dy.abs().max()) * (qmax - qmin + float(scale.max())) * grad_factor * n
    cpu_grads = getattr(_C, f"{kind}_backward")(dy, x, scale, zp, *args, grad_factor)
    exact(y.cpu(), getattr(_C, kind)(x, scale, zp, *args))
    exact(grads[0].cpu(), cpu_grads[0])
    for ours, cpu in zip(grads[1:], cpu_grads[1:]):
        torch.testing.assert_close(ours.cpu(), cpu, rtol=1e-4, atol=1e-6 * bound)
    for a, b in zip(grads, again):  # fixed-order reductions: bit for bit reproducible
        exact(a, b)
    if per_channel and len(shape) == 1:
        return  # torch's per-channel learnable backward fails on 1-D inputs (an empty dscale)
    # torch's learnable ops take float32 only; float16 / bfloat16 inputs compute in float here too.
    xr, sr, zr = x.float().requires_grad_(), scale.clone().requires_grad_(), zp.clone().requires_grad_()
    if per_channel:
        ref = torch._fake_quantize_learnable_per_channel_affine(xr, sr, zr, axis, qmin, qmax, grad_factor)
    else:
        ref = torch._fake_quantize_learnable_per_tensor_affine(xr, sr, zr, qmin, qmax, grad_factor)
    ref.backward(dy.float())
    exact(y.cpu(), ref.detach().to(dtype))
    exact(grads[0].cpu(), xr.grad.to(dtype))
    torch.testing.assert_close(grads[1].cpu(), sr.grad, rtol=1e-4, atol=1e-6 * bound)
    torch.testing.assert_close(grads[2].cpu(), zr.grad, rtol=1e-4, atol=1e-6 * bound)


@needs_cuda
def test_lsq_backward_needs_zero_in_range_and_one_device():
    x = torch.randn(4, 3, device="cuda")
    s, z = torch.ones(1, device="cuda"), torch.zeros(1, device="cuda")
    with pytest.raises(ValueError, match="must contain 0"):
        _C.cuda_lsq_per_tensor_backward(x, x, s, z, 1, 255, 1.0)
    with pytest.raises(RuntimeError, match="grad is on cpu"):
        _C.cuda_lsq_per_tensor_backward(x.cpu(), x, s, z, 0, 255, 1.0)


# ---- fused moving-average observer + fake quant ----


def fused_buffers(c, device, init):
    if init:
        return [torch.full((c,), -1.0, device=device), torch.full((c,), 2.0, device=device),
                torch.ones(c, device=device), torch.zeros(c, dtype=torch.int32, device=device)]
    return [torch.full((c,), float("inf"), device=device), torch.full((c,), -float("inf"), device=device),
            torch.ones(c, device=device), torch.zeros(c, dtype=torch.int32, device=device)]


@needs_cuda
@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("symmetric", [False, True])
@given(shape=st.lists(st.integers(1, 20), min_size=1, max_size=4).map(tuple), seed=st.integers(0, 2**31 - 1),
       qrange=st.sampled_from([(0, 255), (-128, 127), (0, 127), (0, 15)]),
       flags=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=3),
       spread=st.sampled_from([1e-4, 1e-2, 1.0, 50.0]), init=st.booleans())
def test_fused_matches_torch_cpu(per_row, symmetric, shape, seed, qrange, flags, spread, init):
    """torch's CPU op (fbgemm's qparams, no FMA) is the exact oracle; its CUDA op lacks the small-scale rule.

    torch's CPU per-row op reduces dim 1 only, so it sees the input as [channels, -1].
    """
    qmin, qmax = qrange
    c = shape[0] if per_row else 1
    cpu, gpu = fused_buffers(c, "cpu", init), fused_buffers(c, "cuda", init)
    if not init:  # torch cannot choose qparams from never-observed buffers
        flags[0] = (1, flags[0][1])
    for step, (obs, fq) in enumerate(flags):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(seed + step)) * spread + spread / 3
        xo = x.reshape(c, -1) if per_row else x
        ref = torch.fused_moving_avg_obs_fake_quant(xo, torch.tensor([obs]), torch.tensor([fq]), *cpu, 0.01, qmin,
                                                    qmax, 0, per_row, symmetric).reshape(shape)
        y, mask, _ = _C.cuda_fused_obs_fake_quant(
            x.cuda(), torch.tensor([obs], device="cuda"), torch.tensor([fq], device="cuda"), *gpu, 0.01, qmin, qmax,
            0, per_row, symmetric, True)
        exact(y.cpu(), ref)
        for a, b in zip(gpu, cpu):
            exact(a.cpu(), b)
        if fq:
            expect = (_C.fake_quant_per_channel(x, cpu[2], cpu[3], 0, qmin, qmax, True) if per_row
                      else _C.fake_quant_per_tensor_tq(x, cpu[2], cpu[3], qmin, qmax, True))[1]
            exact(mask.cpu(), expect)
        else:  # every bit set
            words, full, rem = mask.cpu(), x.numel() // 64, x.numel() % 64
            assert bool((words[:full] == -1).all())
            assert rem == 0 or int(words[full]) & ((1 << rem) - 1) == (1 << rem) - 1


@needs_cuda
def test_fused_other_axis_dtypes_and_graph_capture():
    x = torch.randn(5, 7, 9, device="cuda")
    bufs = fused_buffers(7, "cuda", False)
    on = torch.ones(1, dtype=torch.long, device="cuda")
    y, _, _ = _C.cuda_fused_obs_fake_quant(x, on, on, *bufs, 0.01, -128, 127, 1, True, True, False)
    ref_bufs = fused_buffers(7, "cpu", False)
    xo = x.cpu().movedim(1, 0).reshape(7, -1)
    ref = torch.fused_moving_avg_obs_fake_quant(xo, on.cpu(), on.cpu(), *ref_bufs, 0.01, -128, 127, 0, True, True)
    exact(y.cpu(), ref.reshape(7, 5, 9).movedim(0, 1))
    for a, b in zip(bufs, ref_bufs):
        exact(a.cpu(), b)
    for dtype in (torch.float16, torch.bfloat16):  # same qparams from the exactly widened values
        xb = x.to(dtype)
        b16, b32 = fused_buffers(7, "cuda", False), fused_buffers(7, "cuda", False)
        y16, _, _ = _C.cuda_fused_obs_fake_quant(xb, on, on, *b16, 0.01, 0, 255, 1, True, False, False)
        y32, _, _ = _C.cuda_fused_obs_fake_quant(xb.float(), on, on, *b32, 0.01, 0, 255, 1, True, False,
                                                            False)
        exact(y16, y32.to(dtype))
    # No host synchronisation: the whole op captures into a CUDA graph.
    bufs = fused_buffers(1, "cuda", False)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out, _, _ = _C.cuda_fused_obs_fake_quant(x, on, on, *bufs, 0.01, 0, 255, 0, False, False, True)
    graph.replay()
    ref_bufs = fused_buffers(1, "cpu", False)
    exact(out.cpu(), torch.fused_moving_avg_obs_fake_quant(x.cpu(), on.cpu(), on.cpu(), *ref_bufs, 0.01, 0, 255, 0,
                                                           False, False))


@needs_cuda
def test_fused_errors():
    x = torch.randn(4, 3, device="cuda")
    on = torch.ones(1, dtype=torch.long, device="cuda")
    bufs = fused_buffers(1, "cuda", False)
    with pytest.raises(RuntimeError, match="running_min is on cpu"):
        _C.cuda_fused_obs_fake_quant(x, on, on, bufs[0].cpu(), *bufs[1:], 0.01, 0, 255, 0, False, False,
                                                False)
    with pytest.raises(ValueError, match="averaging_const"):
        _C.cuda_fused_obs_fake_quant(x, on, on, *bufs, -0.5, 0, 255, 0, False, False, False)
    with pytest.raises(ValueError, match="running_min must be a 1-D tensor|one element per channel"):
        _C.cuda_fused_obs_fake_quant(x, on, on, *bufs, 0.01, 0, 255, 0, True, False, False)


# ---- int8 GEMM ----

# Small tiles, big tiles (>= one CTA per SM) with M / N / K tails, the dp4a kernel (K % 16 != 0).
GEMM_SHAPES = [(1, 1, 1), (1, 8, 16), (3, 5, 7), (17, 33, 48), (64, 64, 64), (65, 130, 96), (128, 96, 160),
               (200, 130, 1000), (257, 300, 4096), (1, 768, 3072), (4, 64, 30), (1537, 1550, 80),
               (1600, 1630, 96), (2304, 2310, 400)]  # the last two: enough CTAs for the big tile


def int_product(a, w):
    """a @ w.T exactly, as int32 (float64 holds every partial sum of these sizes exactly)."""
    return (a.double() @ w.double().T).int()


def int8_operands(m, n, k, a_dtype, seed):
    g = torch.Generator().manual_seed(seed)
    lo, hi = (0, 256) if a_dtype == torch.uint8 else (-128, 128)
    a = torch.randint(lo, hi, (m, k), generator=g, dtype=torch.int32).to(a_dtype)
    w = torch.randint(-128, 128, (n, k), generator=g, dtype=torch.int32).to(torch.int8)
    return a, w


# FAKEQUANT_CUDA_GEMM settings: every kernel (wgmma runs only on a 9.0 device).
GEMM_KERNELS = ["wgmma", "wgmma_only", "mma", "dp4a"]


def expected_kernel(setting, k):
    """The kernel FAKEQUANT_CUDA_GEMM=setting must run for a [*, k] x [*, k] product of aligned tensors."""
    major, minor = torch.cuda.get_device_capability()
    if setting == "dp4a" or k % 16 or major < 8:
        return "dp4a"
    if setting == "wgmma_only" and (major, minor) == (9, 0):
        return "wgmma"  # a 9.0 device must have the sm_90a build
    return "mma" if setting == "mma" else None  # wgmma: chosen by shape


@needs_cuda
@pytest.mark.parametrize("kernels", GEMM_KERNELS)
@pytest.mark.parametrize("a_dtype", [torch.uint8, torch.int8])
@pytest.mark.parametrize("shape", GEMM_SHAPES)
def test_int8_mm_exact(a_dtype, shape, kernels, monkeypatch):
    monkeypatch.setenv("FAKEQUANT_CUDA_GEMM", kernels)
    m, n, k = shape
    a, w = int8_operands(m, n, k, a_dtype, sum(shape))
    exact(_C.cuda_int8_mm(a.cuda(), w.cuda()).cpu(), int_product(a, w))
    extreme_a = torch.full((m, k), 255 if a_dtype == torch.uint8 else -128, dtype=a_dtype)
    extreme_w = torch.full((n, k), -128, dtype=torch.int8)
    exact(_C.cuda_int8_mm(extreme_a.cuda(), extreme_w.cuda()).cpu(), int_product(extreme_a, extreme_w))
    expected = expected_kernel(kernels, k)
    if expected is not None:
        assert _C.cuda_int8_mm_kernel(a.cuda(), w.cuda()) == expected


@needs_cuda
def test_int8_mm_large_shapes_pick_wgmma_on_hopper():
    a, w = int8_operands(4096, 4096, 512, torch.int8, 1)
    kernel = _C.cuda_int8_mm_kernel(a.cuda(), w.cuda())
    assert kernel == ("wgmma" if torch.cuda.get_device_capability() == (9, 0) else "mma")
    exact(_C.cuda_int8_mm(a.cuda(), w.cuda()).cpu(), int_product(a, w))


@needs_cuda
def test_int8_mm_kernel_setting_is_checked(monkeypatch):
    a, w = int8_operands(4, 5, 16, torch.uint8, 0)
    monkeypatch.setenv("FAKEQUANT_CUDA_GEMM", "cublas")
    with pytest.raises(ValueError, match="FAKEQUANT_CUDA_GEMM must be one of"):
        _C.cuda_int8_mm(a.cuda(), w.cuda())


@needs_cuda
def test_int8_mm_any_strides():
    a, w = int8_operands(70, 50, 64, torch.uint8, 0)
    at, wt = a.cuda().t().contiguous().t(), w.cuda().t().contiguous().t()  # column-major views
    exact(_C.cuda_int8_mm(at, wt).cpu(), (a.long() @ w.long().T).int())
    exact(_C.cuda_int8_mm(a.cuda()[:, 3:40], w.cuda()[:, 3:40]).cpu(), (a[:, 3:40].long() @ w[:, 3:40].long().T).int())


def epilogue_reference(a, za, w, zw, sw, bias, sa, sy, zy, qmin, qmax, relu, out_dtype):
    """The CPU int8 epilogue in float32 torch ops on the CPU (no FMA, round half to even)."""
    acc = ((a.long() - za) @ (w.long() - zw.long()[:, None]).T).to(torch.int32)
    if out_dtype == "int32":
        return acc
    s = torch.tensor(sa, dtype=torch.float32) * sw
    b = bias if bias is not None else torch.zeros_like(sw)
    if out_dtype == "float32":
        return acc.float() * s + b
    v = (acc.float() + b / s) * (s / torch.tensor(sy, dtype=torch.float32))
    return (torch.round(v).long() + zy).clamp(max(qmin, zy) if relu else qmin, qmax).to(torch.uint8)


@needs_cuda
@pytest.mark.parametrize("kernels", GEMM_KERNELS)
@pytest.mark.parametrize("a_dtype", [torch.uint8, torch.int8])
@pytest.mark.parametrize("shape", [(1, 8, 16), (3, 5, 7), (65, 130, 96), (200, 130, 1000)])
@pytest.mark.parametrize("out_dtype", ["int32", "uint8", "float32"])
def test_int8_gemm_epilogue_matches_formula(a_dtype, shape, out_dtype, kernels, monkeypatch):
    monkeypatch.setenv("FAKEQUANT_CUDA_GEMM", kernels)  # every kernel ends in the same epilogue
    m, n, k = shape
    a, w = int8_operands(m, n, k, a_dtype, m + n + k)
    g = torch.Generator().manual_seed(k)
    sw = torch.rand(n, generator=g) * 0.01 + 0.001
    zw = torch.randint(-3, 4, (n,), generator=g, dtype=torch.int32)
    za = 7 if a_dtype == torch.uint8 else -5
    sa, sy, zy, qmin, qmax = 0.05, 0.2, 11, 3, 250
    for relu, bias in [(False, None), (False, torch.randn(n, generator=g)), (True, torch.randn(n, generator=g))]:
        relu = relu and out_dtype == "uint8"  # relu is fused into uint8 outputs only
        epi = _C.Int8Epilogue(sw.cuda(), zw.cuda(), bias.cuda() if bias is not None else None, sa, sy, zy, qmin,
                              qmax, relu, out_dtype)
        out = _C.cuda_int8_gemm(a.cuda(), w.cuda(), za, epi).cpu()
        exact(out, epilogue_reference(a, za, w, zw, sw, bias, sa, sy, zy, qmin, qmax, relu, out_dtype))
        cpu_epi = _C.Int8Epilogue(sw, zw, bias, sa, sy, zy, qmin, qmax, relu, out_dtype)
        exact(out, int8_gemm(a, pack_weight(w), za, cpu_epi))  # the CPU GEMM, same epilogue


@needs_cuda
def test_cuda_device_mixups_are_clear_errors():
    x = torch.randn(4, 3, device="cuda")
    with pytest.raises(RuntimeError, match="scale is on cpu but input is on cuda"):
        fakequant.fake_quantize_per_channel_affine(x, torch.ones(3), torch.zeros(3, dtype=torch.int32), 1, 0, 255)
    with pytest.raises(RuntimeError, match="input is on cpu"):
        _C.cuda_fake_quant_per_tensor(x.cpu(), 0.1, 0, 0, 255, False)
    _, mask, order = _C.cuda_fake_quant_per_tensor(x, 0.1, 0, 0, 255, True)
    with pytest.raises(RuntimeError, match="mask is on cpu"):
        _C.cuda_mask_grad(x, mask.cpu(), order)
    a, w = int8_operands(4, 5, 16, torch.uint8, 0)
    with pytest.raises(RuntimeError, match="w is on cpu"):
        _C.cuda_int8_mm(a.cuda(), w)
    with pytest.raises(TypeError, match="w must have dtype"):
        _C.cuda_int8_mm(a.cuda(), a.cuda())
    with pytest.raises(ValueError, match="K differs"):
        _C.cuda_int8_mm(a.cuda(), w[:, :8].cuda())
    with pytest.raises(RuntimeError, match="weight scale is on cpu"):
        _C.cuda_int8_gemm(a.cuda(), w.cuda(), 0, _C.Int8Epilogue(torch.ones(5), out_dtype="uint8"))
    with pytest.raises(ValueError, match="out_dtype"):
        _C.cuda_int8_gemm(a.cuda(), w.cuda(), 0, _C.Int8Epilogue(out_dtype="int8"))
    with pytest.raises(ValueError, match="relu is fused into uint8 outputs only"):
        _C.cuda_int8_gemm(a.cuda(), w.cuda(), 0, _C.Int8Epilogue(relu=True, out_dtype="float32"))
    with pytest.raises(RuntimeError, match="input is on cpu"):
        _C.cuda_quantize_per_tensor(x.cpu(), 0.1, 0, 0, 255, False)
    q = _C.cuda_quantize_per_tensor(x, 0.1, 0, 0, 255, False)
    with pytest.raises(RuntimeError, match="other is on cpu"):
        _C.cuda_int8_elementwise("add", q, 0.1, 0, q.cpu(), 0.1, 0, 0.1, 0, 0, 255)
    mod = fnq.Linear.from_float(torch.randn(5, 3), None, 0.01, 0, 0.1, 0)
    with pytest.raises(RuntimeError, match=r"Linear.weight is on cpu but the input is on cuda:0; move the model"):
        mod(fnq.quantize(x, 0.1, 0))
