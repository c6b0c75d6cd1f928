"""int8 GEMM benchmark: fakequant's int8 Linear vs torch's quantized Linear and fp32 F.linear.

torch's fbgemm and onednn engines and fp32 F.linear, same run, same threads. Prints GOPS and
ratios per shape.

    python benchmarks/int8_gemm.py [--threads 2] [--quick] [--m 128 512]
"""
import argparse
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

import fakequant
import fakequant.nn.quantized as fnq

# (name, M, K, N): MobileNetV2 1x1 convs at batch 1 as GEMMs (M = H * W) and BERT-base layers.
MOBILENET = [("mbv2 56x56 24->144", 3136, 24, 144), ("mbv2 56x56 144->24", 3136, 144, 24),
             ("mbv2 28x28 32->192", 784, 32, 192), ("mbv2 28x28 192->32", 784, 192, 32),
             ("mbv2 14x14 64->384", 196, 64, 384), ("mbv2 14x14 384->96", 196, 384, 96),
             ("mbv2 7x7 160->960", 49, 160, 960), ("mbv2 7x7 320->1280", 49, 320, 1280),
             ("mbv2-style 3136x32x192", 3136, 32, 192)]
BERT = [(f"bert {k}->{n}", m, k, n) for m in (1, 16, 128, 512) for k, n in ((768, 768), (768, 3072), (3072, 768))]
BERT += [("bert 768->768", 3136, 768, 768)]


def bench(fns, sample_time, budget):
    """Per function, the best of many short timed samples (a loop of about sample_time seconds),
    the functions taking turns so that all see the same machine load. The best sample is the one
    least disturbed by other processes, which matters on a shared machine."""
    iters, once = {}, {}
    for key, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        once[key] = max(time.perf_counter() - t0, 1e-7)
        iters[key] = max(1, int(sample_time / once[key]))
    per_round = sum(iters[key] * once[key] for key in fns)
    reps = max(10, min(200, int(budget / per_round)))
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(reps):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(iters[key]):
                fn()
            best[key] = min(best[key], (time.perf_counter() - t0) / iters[key])
    return best


def torch_quantized_linear(engine, w, b, w_scale, out_scale, out_zp):
    import torch.ao.nn.quantized as tq

    torch.backends.quantized.engine = engine
    n, k = w.shape
    mod = tq.Linear(k, n)
    qw = torch.quantize_per_channel(w, w_scale.double(), torch.zeros(n, dtype=torch.long), 0, torch.qint8)
    mod.set_weight_bias(qw, b)
    mod.scale, mod.zero_point = out_scale, out_zp
    return mod


def run_shape(m, k, n, sample_time, budget):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, k, generator=g)
    w = torch.randn(n, k, generator=g) * 0.05
    b = torch.randn(n, generator=g)
    w_scale = (w.abs().amax(1) / 127).float()
    x_scale, x_zp, out_scale, out_zp = 0.03, 128, 0.05, 120
    ours = fnq.Linear.from_float(w, b, w_scale, 0, out_scale, out_zp)
    qx = fnq.quantize(x, x_scale, x_zp)
    tqx = torch._make_per_tensor_quantized_tensor(qx.data, x_scale, x_zp)
    fns = {"ours": lambda: ours(qx)}
    for engine in ("fbgemm", "onednn"):
        mod = torch_quantized_linear(engine, w, b, w_scale, out_scale, out_zp)
        fns[engine] = lambda mod=mod, engine=engine: _with_engine(engine, mod, tqx)
    fns["fp32"] = lambda: F.linear(x, w, b)
    return bench(fns, sample_time, budget)


def _with_engine(engine, mod, x):
    torch.backends.quantized.engine = engine
    return mod(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fewer timing samples")
    parser.add_argument("--m", type=int, nargs="*", help="only shapes with these M")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    budget = 0.5 if args.quick else 3.0
    info = fakequant.backend_info()
    print(f"threads {args.threads}, torch {torch.__version__}, int8 kernel {info['int8_gemm']} "
          f"(detected {info['detected_isa']})")
    print(f"{'shape':24s} {'M':>5s} {'K':>5s} {'N':>5s} | {'ours':>7s} {'fbgemm':>7s} {'onednn':>7s} {'fp32':>7s} "
          f"GOPS | {'/fbgemm':>7s} {'/onednn':>7s} {'/fp32':>7s}")
    ratios = []
    for name, m, k, n in MOBILENET + BERT:
        if args.m and m not in args.m:
            continue
        t = run_shape(m, k, n, 0.0005, budget)
        gops = {key: 2 * m * n * k / v / 1e9 for key, v in t.items()}
        r = [t["fbgemm"] / t["ours"], t["onednn"] / t["ours"], t["fp32"] / t["ours"]]
        if m > 1:
            ratios.append(r)
        print(f"{name:24s} {m:5d} {k:5d} {n:5d} | {gops['ours']:7.0f} {gops['fbgemm']:7.0f} {gops['onednn']:7.0f} "
              f"{gops['fp32']:7.0f}      | {r[0]:6.2f}x {r[1]:6.2f}x {r[2]:6.2f}x", flush=True)
    worst = [min(r[i] for r in ratios) for i in range(3)]
    geo = [statistics.geometric_mean([r[i] for r in ratios]) for i in range(3)]
    print(f"M > 1: worst ratio vs fbgemm {worst[0]:.2f}x, onednn {worst[1]:.2f}x, fp32 {worst[2]:.2f}x; "
          f"geomean {geo[0]:.2f}x, {geo[1]:.2f}x, {geo[2]:.2f}x")


if __name__ == "__main__":
    main()
