"""Benchmark: LSQ (learnable) fake quant and the fused observer + fake quant, fakequant vs torch.

Prints median times, same-run ratios to torch and, for the activation-sized rows, GB/s of tensor
traffic. The fused activation row is also compared with its floor: the op must read the tensor twice
(min/max, then fake quant), so the floor is a same-run torch.aminmax plus allocating and writing the
output (a clone) and the one-bit mask.

    python benchmarks/lsq_fused.py [--threads 2] [--repeat 30]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import fakequant

ACT = (8, 64, 112, 112)
WEIGHT = (256, 256, 3, 3)


def median_ms(fn, repeat, warmup=5):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def lsq_step(op, x, scale, zp, dy, *args):
    def run():
        xr = x.detach().requires_grad_()
        s = scale.detach().requires_grad_()
        z = zp.detach().requires_grad_()
        op(xr, s, z, *args).backward(dy)
    return run


def fused_fwd(op, x, buffers, *args):
    def run():
        op(x, *buffers, *args)
    return run


def fused_fwd_bwd(op, x, buffers, dy, *args):
    def run():
        op(x, *buffers, *args).backward(dy)
    return run


def per_tensor_buffers():
    on = torch.ones(1, dtype=torch.long)
    return [on, on, torch.tensor(float("inf")), torch.tensor(float("-inf")), torch.tensor([1.0]),
            torch.tensor([0], dtype=torch.int)]


def per_channel_buffers():
    on = torch.ones(1, dtype=torch.long)
    return [on, on, torch.tensor([]), torch.tensor([]), torch.tensor([1.0]), torch.tensor([0], dtype=torch.int)]


def gbs(nbytes, ms):
    return nbytes / ms / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=30)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {a.threads} threads, fakequant {fakequant.backend_info()}")

    x = torch.randn(ACT) * 2
    w = torch.randn(WEIGHT) * 0.05
    nbytes = x.numel() * 4
    dy = torch.randn(ACT)
    dyw = torch.randn(WEIGHT)
    rows = []

    def row(name, t_torch, t_ours, traffic=None, note=""):
        rate = f"{gbs(traffic, t_ours):6.1f}" if traffic else "     -"
        rows.append(f"| {name} | {t_torch:8.2f} | {t_ours:8.3f} | {t_torch / t_ours:6.1f}x | {rate} | {note} |")

    # LSQ: forward reads x, writes y; backward reads x and dy, writes dx (5 tensor passes).
    s1, z1 = torch.tensor([0.02]), torch.tensor([3.0])
    sc, zc = torch.rand(ACT[1]) * 0.02 + 0.01, torch.randint(-3, 4, (ACT[1],)).float()
    for name, t_op, f_op, args in [
        ("LSQ per-tensor fwd+bwd, act", torch._fake_quantize_learnable_per_tensor_affine,
         fakequant.fake_quantize_learnable_per_tensor_affine, (s1, z1, dy, -128, 127, 1.0)),
        ("LSQ per-channel fwd+bwd, act, axis 1", torch._fake_quantize_learnable_per_channel_affine,
         fakequant.fake_quantize_learnable_per_channel_affine, (sc, zc, dy, 1, -128, 127, 1.0)),
    ]:
        s, z, g, *rest = args
        t = median_ms(lsq_step(t_op, x, s, z, g, *rest), a.repeat)
        f = median_ms(lsq_step(f_op, x, s, z, g, *rest), a.repeat)
        row(name, t, f, 5 * nbytes)
    sw, zw = torch.rand(WEIGHT[0]) * 0.002 + 0.001, torch.zeros(WEIGHT[0])
    t = median_ms(lsq_step(torch._fake_quantize_learnable_per_channel_affine, w, sw, zw, dyw, 0, -128, 127, 1.0),
                  a.repeat)
    f = median_ms(lsq_step(fakequant.fake_quantize_learnable_per_channel_affine, w, sw, zw, dyw, 0, -128, 127, 1.0),
                  a.repeat)
    row("LSQ per-channel fwd+bwd, weight, axis 0", t, f)

    # Fused observer + fake quant on an activation (per tensor, quint8 reduce_range) with the mask.
    xg = x.detach().requires_grad_()
    act_args = (0.01, 0, 127, -1, False, False)
    t = median_ms(fused_fwd(torch.fused_moving_avg_obs_fake_quant, xg, per_tensor_buffers(), *act_args), a.repeat)
    f = median_ms(fused_fwd(fakequant.fused_moving_avg_obs_fake_quant, xg, per_tensor_buffers(), *act_args), a.repeat)
    mask_words = (x.numel() + 63) // 64
    floor = (median_ms(lambda: torch.aminmax(x), a.repeat) + median_ms(lambda: x.clone(), a.repeat)
             + median_ms(lambda: torch.empty(mask_words, dtype=torch.long).fill_(-1), a.repeat))
    row("fused obs+FQ fwd, act, per tensor", t, f, 3 * nbytes, f"floor {floor:.3f} ms, ours / floor {f / floor:.2f}")
    t = median_ms(fused_fwd_bwd(torch.fused_moving_avg_obs_fake_quant, xg, per_tensor_buffers(), dy, *act_args),
                  a.repeat)
    f = median_ms(fused_fwd_bwd(fakequant.fused_moving_avg_obs_fake_quant, xg, per_tensor_buffers(), dy, *act_args),
                  a.repeat)
    row("fused obs+FQ fwd+bwd, act, per tensor", t, f, 5 * nbytes)

    # Fused op on a weight: per channel (axis 0), symmetric qint8, the default QAT weight config.
    wg = w.detach().requires_grad_()
    w_args = (0.01, -128, 127, 0, True, True)
    t = median_ms(fused_fwd(torch.fused_moving_avg_obs_fake_quant, wg, per_channel_buffers(), *w_args), a.repeat)
    f = median_ms(fused_fwd(fakequant.fused_moving_avg_obs_fake_quant, wg, per_channel_buffers(), *w_args), a.repeat)
    row("fused obs+FQ fwd, weight, per channel sym", t, f)
    t = median_ms(fused_fwd_bwd(torch.fused_moving_avg_obs_fake_quant, wg, per_channel_buffers(), dyw, *w_args),
                  a.repeat)
    f = median_ms(fused_fwd_bwd(fakequant.fused_moving_avg_obs_fake_quant, wg, per_channel_buffers(), dyw, *w_args),
                  a.repeat)
    row("fused obs+FQ fwd+bwd, weight, per channel sym", t, f)

    print(f"\nactivation {tuple(ACT)} fp32 ({nbytes / 1e6:.1f} MB), weight {tuple(WEIGHT)} fp32; times in ms (median)")
    print("| op | torch | fakequant | speedup | GB/s | note |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
