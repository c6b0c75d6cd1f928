"""benchmarks/cuda_bench.py — fakequant's CUDA kernels against same-run baselines (copy, torch's CUDA ops, cuBLAS).

Tables: fake-quant GB/s against a device-to-device copy and torch's ops; LSQ and the fused observer
against torch; int8 GEMM TOPS against torch._int_mm (cuBLASLt) and fp16 / bf16 matmul; CUDA graph
replay against eager launches for small shapes. Exits with a message when there is no GPU.
Usage: python benchmarks/cuda_bench.py [--quick]
"""
import argparse
import copy
import os
import statistics
import sys

import torch  # noqa: E402

import fakequant  # noqa: E402
from fakequant import _C  # noqa: E402


def timed(fn, iters, warmup=5, repeat=10):
    """Median milliseconds of one call (each timed sample runs fn `repeat` times back to back between
    events, so the host's launch overhead overlaps the kernels unless it is the longer of the two)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeat):
            fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / repeat)
    return statistics.median(samples)


def timed_graph(fn, iters, repeat=10):
    """Median milliseconds of one call inside a captured CUDA graph of `repeat` calls: the kernels'
    own time, without the host's launch overhead."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(repeat):
            fn()
    return timed(graph.replay, iters, repeat=1) / repeat


def table(title, header, rows):
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


def fake_quant_rows(iters):
    rows = []
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        x = torch.randn(32, 128, 56, 56, device="cuda").to(dtype)
        y = torch.empty_like(x)
        nbytes = 2 * x.numel() * x.element_size()
        c = x.shape[1]
        s, zi = torch.rand(c, device="cuda") * 0.1 + 0.01, torch.randint(0, 255, (c,), device="cuda", dtype=torch.int32)
        xg = x.detach().requires_grad_()
        copy_ms = timed_graph(lambda: y.copy_(x), iters)
        cases = [
            ("per tensor fwd", lambda: fakequant.fake_quantize_per_tensor_affine(x, 0.05, 128, 0, 255),
             lambda: torch.fake_quantize_per_tensor_affine(x, 0.05, 128, 0, 255)),
            ("per tensor fwd + mask", lambda: fakequant.fake_quantize_per_tensor_affine(xg, 0.05, 128, 0, 255),
             lambda: torch.fake_quantize_per_tensor_affine(xg, 0.05, 128, 0, 255)),
            ("per channel fwd", lambda: fakequant.fake_quantize_per_channel_affine(x, s, zi, 1, 0, 255),
             lambda: torch.fake_quantize_per_channel_affine(x, s, zi, 1, 0, 255)),
        ]
        # torch's per-channel op synchronises (it checks the zero points' range on the host), so it cannot be
        # captured: its "graph" time is its eager time.
        eager_only = {"per channel fwd"}
        rows.append([str(dtype).replace("torch.", ""), "copy (same run)", f"{copy_ms:.3f}", f"{nbytes / copy_ms / 1e6:.0f}",
                     "1.00", "", ""])
        for name, ours, theirs in cases:
            with torch.enable_grad():
                ours_ms = timed_graph(ours, iters)
                theirs_ms = (timed if name in eager_only else timed_graph)(theirs, iters)
                eager_ms, theirs_eager_ms = timed(ours, iters), timed(theirs, iters)
            rows.append(["", name, f"{ours_ms:.3f}", f"{nbytes / ours_ms / 1e6:.0f}", f"{copy_ms / ours_ms:.2f}",
                         f"{theirs_ms / ours_ms:.2f}", f"{eager_ms:.3f} ({theirs_eager_ms / eager_ms:.2f}x)"])
        _, mask, order = _C.cuda_fake_quant_per_tensor(x, 0.05, 128, 0, 255, True)
        grad_ms = timed_graph(lambda: _C.cuda_mask_grad(x, mask, order), iters)
        rows.append(["", "mask backward (dx = dy * mask)", f"{grad_ms:.3f}", f"{nbytes / grad_ms / 1e6:.0f}",
                     f"{copy_ms / grad_ms:.2f}", "", ""])
    table("Fake quant, 32x128x56x56 (kernel time from CUDA graph replay; GB/s = read + write of x and y, mask "
          "bytes not counted; eager = plain calls, host overhead included)",
          ["dtype", "op", "ms", "GB/s", "x copy speed", "x torch", "eager ms (x torch)"], rows)


def observer_buffers(c):
    """running_min, running_max, scale, zero_point of a fresh fused observer with c channels."""
    return [torch.full((c,), float("inf"), device="cuda"), torch.full((c,), -float("inf"), device="cuda"),
            torch.ones(c, device="cuda"), torch.zeros(c, dtype=torch.int32, device="cuda")]


def lsq_fused_rows(iters):
    x = torch.randn(8, 64, 112, 112, device="cuda")
    dy = torch.randn_like(x)
    c = x.shape[1]
    s, z = torch.rand(c, device="cuda") * 0.1 + 0.01, torch.rand(c, device="cuda") * 50 + 100
    g = 1.0 / (x.numel() / c * 255) ** 0.5

    def ours_lsq():
        _C.cuda_lsq_per_channel(x, s, z, 1, 0, 255)
        _C.cuda_lsq_per_channel_backward(dy, x, s, z, 1, 0, 255, g)

    xr, sr, zr = x.clone().requires_grad_(), s.clone().requires_grad_(), z.clone().requires_grad_()

    def torch_lsq():
        torch._fake_quantize_learnable_per_channel_affine(xr, sr, zr, 1, 0, 255, g).backward(dy)

    rows = []
    ours_ms, theirs_ms = timed(ours_lsq, iters), timed(torch_lsq, iters)
    rows.append(["LSQ per channel fwd + bwd, 8x64x112x112", f"{ours_ms:.3f}", f"{theirs_ms:.3f}",
                 f"{theirs_ms / ours_ms:.2f}"])
    on = torch.ones(1, dtype=torch.long, device="cuda")
    weight = torch.randn(256, 256, 3, 3, device="cuda")
    for name, inp, per_row, sym in [("fused observer, activation 8x64x112x112 per tensor", x, False, False),
                                    ("fused observer, weight 256x256x3x3 per channel sym", weight, True, True)]:
        ob, tb = observer_buffers(inp.shape[0] if per_row else 1), observer_buffers(inp.shape[0] if per_row else 1)
        qmin, qmax = (-128, 127) if sym else (0, 255)
        ours_ms = timed(lambda: _C.cuda_fused_obs_fake_quant(inp, on, on, *ob, 0.01, qmin, qmax, 0, per_row,
                                                                       sym, True), iters)
        theirs_ms = timed(lambda: torch.fused_moving_avg_obs_fake_quant(inp, on, on, *tb, 0.01, qmin, qmax, 0,
                                                                        per_row, sym), iters)
        rows.append([name, f"{ours_ms:.3f}", f"{theirs_ms:.3f}", f"{theirs_ms / ours_ms:.2f}"])
    table("LSQ and fused observer", ["op", "fakequant ms", "torch ms", "x torch"], rows)


GEMM_SHAPES = [  # (name, M, N, K)
    ("square", 4096, 4096, 4096),
    ("MobileNetV2 expand 1x1, 56x56, batch 8", 8 * 56 * 56, 144, 24),
    ("MobileNetV2 project 1x1, 28x28, batch 8", 8 * 28 * 28, 32, 192),
    ("MobileNetV2 last 1x1, 7x7, batch 8", 8 * 7 * 7, 1280, 320),
    ("BERT-base QKV, 8 x 128 tokens", 1024, 2304, 768),
    ("BERT-base FFN up, 8 x 128 tokens", 1024, 3072, 768),
    ("BERT-base FFN down, 8 x 128 tokens", 1024, 768, 3072),
    ("BERT-base FFN up, 1 token", 1, 3072, 768),
]


def gemm_rows(iters):
    rows = []
    for name, m, n, k in GEMM_SHAPES:
        a = torch.randint(0, 256, (m, k), device="cuda", dtype=torch.int32).to(torch.uint8)
        a8 = torch.randint(-128, 128, (m, k), device="cuda", dtype=torch.int32).to(torch.int8)
        w = torch.randint(-128, 128, (n, k), device="cuda", dtype=torch.int32).to(torch.int8)
        sw, zw = torch.rand(n, device="cuda") * 0.01, torch.zeros(n, dtype=torch.int32, device="cuda")

        def tops(ms, ops=2 * m * n * k):
            return f"{ops / ms / 1e9:.1f}"

        mm_ms = timed(lambda: _C.cuda_int8_mm(a8, w), iters)
        epi = _C.Int8Epilogue(sw, zw, None, 0.05, 0.1, 0, out_dtype="uint8")
        lin_ms = timed(lambda: _C.cuda_int8_gemm(a, w, 128, epi), iters)
        wt = w.t()
        try:
            int_mm_ms = timed(lambda: torch._int_mm(a8, wt), iters)
            int_mm = f"{tops(int_mm_ms)} ({int_mm_ms / mm_ms:.2f}x)"
        except RuntimeError:  # torch._int_mm needs M > 16 and K, N multiples of 8
            int_mm = "n/a"
        ah, wh = a8.half(), w.half()
        ab, wb = a8.bfloat16(), w.bfloat16()
        fp16_ms = timed(lambda: ah @ wh.t(), iters)
        bf16_ms = timed(lambda: ab @ wb.t(), iters)
        rows.append([name, f"{m}x{n}x{k}", _C.cuda_int8_mm_kernel(a8, w), tops(mm_ms), tops(lin_ms), int_mm,
                     f"{tops(fp16_ms)} ({fp16_ms / mm_ms:.2f}x)", f"{tops(bf16_ms)} ({bf16_ms / mm_ms:.2f}x)"])
    table("int8 GEMM, TOPS (ratio = that op's time / fakequant int8_mm time)",
          ["shape", "MxNxK", "kernel", "int8_mm", "int8_gemm u8 out", "torch._int_mm", "fp16 matmul",
           "bf16 matmul"], rows)


def gemm_kernel_rows(iters):
    """int8_mm under each FAKEQUANT_CUDA_GEMM setting: the data behind the kernel choice."""
    settings = {"mma": "mma", "wgmma_only": "wgmma"}  # setting -> the kernel it must run
    rows = []
    for name, m, n, k in GEMM_SHAPES:
        a8 = torch.randint(-128, 128, (m, k), device="cuda", dtype=torch.int32).to(torch.int8)
        w = torch.randint(-128, 128, (n, k), device="cuda", dtype=torch.int32).to(torch.int8)
        row = [name, f"{m}x{n}x{k}", _C.cuda_int8_mm_kernel(a8, w)]
        for setting, kernel in settings.items():
            os.environ["FAKEQUANT_CUDA_GEMM"] = setting
            try:
                if _C.cuda_int8_mm_kernel(a8, w) != kernel:
                    row.append("n/a")
                    continue
                ms = timed(lambda: _C.cuda_int8_mm(a8, w), iters)
                row.append(f"{2 * m * n * k / ms / 1e9:.1f}")
            finally:
                del os.environ["FAKEQUANT_CUDA_GEMM"]
        rows.append(row)
    table("int8 GEMM kernels, TOPS of int8_mm under each FAKEQUANT_CUDA_GEMM setting",
          ["shape", "MxNxK", "default pick"] + list(settings), rows)


CONV_CASES = [  # (name, batch, cin, cout, kernel, stride, groups, hw)
    ("3x3 conv 64 -> 64", 32, 64, 64, 3, 1, 1, 56),
    ("1x1 expand 24 -> 144", 32, 24, 144, 1, 1, 1, 56),
    ("3x3 depthwise 144", 32, 144, 144, 3, 1, 144, 56),
    ("3x3 depthwise 144, stride 2", 32, 144, 144, 3, 2, 144, 56),
    ("1x1 project 144 -> 24", 32, 144, 24, 1, 1, 1, 56),
]


def conv_rows(iters):
    """int8 Conv2d modules (uint8 channels-last in and out) against torch's fp16 / fp32 convs."""
    import fakequant.nn.quantized as fnq
    rows = []
    for name, n, cin, cout, k, stride, groups, hw in CONV_CASES:
        w = torch.randn(cout, cin // groups, k, k) * 0.1
        mod = fnq.Conv2d.from_float(w, torch.randn(cout), torch.rand(cout) * 0.01 + 0.001, 0, 0.1, 128,
                                    stride=stride, padding=k // 2, groups=groups).cuda()
        x = torch.randn(n, cin, hw, hw, device="cuda").contiguous(memory_format=torch.channels_last)
        qx = fnq.quantize(x, 0.05, 128)
        conv = torch.nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups).cuda().to(memory_format=torch.channels_last)
        xh, convh = x.half(), copy.deepcopy(conv).half()
        with torch.no_grad():
            ours = timed(lambda: mod(qx), iters)
            f32 = timed(lambda: conv(x), iters)
            f16 = timed(lambda: convh(xh), iters)
        ops = 2 * n * cout * (cin // groups) * k * k * (hw // stride) ** 2
        rows.append([name, f"{n}x{cin}x{hw}x{hw}", f"{ours:.3f}", f"{ops / ours / 1e9:.1f}", f"{f32 / ours:.2f}",
                     f"{f16 / ours:.2f}"])
    table("int8 Conv2d modules on CUDA (uint8 channels-last) vs torch float convs (cuDNN, channels-last)",
          ["conv", "input", "int8 ms", "int8 TOPS", "x fp32 conv", "x fp16 conv"], rows)


def graph_rows(iters):
    rows = []
    on = torch.ones(1, dtype=torch.long, device="cuda")
    for shape in [(64, 64), (256, 1024)]:
        x = torch.randn(shape, device="cuda")
        bufs = observer_buffers(1)
        cases = [("fake quant per tensor", lambda: fakequant.fake_quantize_per_tensor_affine(x, 0.05, 128, 0, 255)),
                 ("fused observer + fake quant",
                  lambda: _C.cuda_fused_obs_fake_quant(x, on, on, *bufs, 0.01, 0, 255, 0, False, False,
                                                                  True))]
        for name, fn in cases:
            eager = timed(fn, iters, repeat=20)
            fn()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                fn()
            replay = timed(graph.replay, iters, repeat=20)
            rows.append([name, "x".join(map(str, shape)), f"{eager * 1e3:.1f}", f"{replay * 1e3:.1f}",
                         f"{eager / replay:.2f}"])
    table("Small shapes: eager launch vs CUDA graph replay (us per call)",
          ["op", "shape", "eager us", "graph replay us", "speedup"], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed iterations")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks/cuda_bench.py: no CUDA GPU available; nothing to measure.")
        return 0
    if not _C.cuda_built:
        print("benchmarks/cuda_bench.py: fakequant was built without CUDA kernels; rebuild with a CUDA torch and nvcc.")
        return 0
    iters = 5 if args.quick else 30
    print(f"# fakequant CUDA benchmarks on {torch.cuda.get_device_name()} (torch {torch.__version__})")
    fake_quant_rows(iters)
    lsq_fused_rows(iters)
    gemm_rows(iters)
    gemm_kernel_rows(iters)
    conv_rows(iters)
    graph_rows(iters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
