"""Benchmark: learnable (LSQ) fake quant and the fused observer + fake quant against torch, same run."""
import argparse
import ctypes
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakequant as fq  # noqa: E402
from common import bench, copy_gbps, machine, table  # noqa: E402
from fakequant.fused_obs import fused_moving_avg_obs_fake_quant_relu  # noqa: E402

ACT, WEIGHT = (8, 64, 112, 112), (256, 256, 3, 3)
INF = float("inf")


def lsq_cases(x):
    """(name, axis, scale, zero_point): weights per channel on axis 0, activations on axis 1."""
    weight = x.shape == WEIGHT
    if weight:
        return [("per-channel", 0, torch.rand(x.shape[0]) * 0.002 + 0.001, torch.zeros(x.shape[0]))]
    c = x.shape[1]
    return [("per-tensor", None, torch.tensor([0.02]), torch.tensor([3.0])),
            ("per-channel", 1, torch.rand(c) * 0.02 + 0.01, torch.randint(-3, 4, (c,)).float())]


LSQ_OPS = {(fq, False): fq.fake_quantize_learnable_per_tensor_affine,
           (fq, True): fq.fake_quantize_learnable_per_channel_affine,
           (torch, False): torch._fake_quantize_learnable_per_tensor_affine,
           (torch, True): torch._fake_quantize_learnable_per_channel_affine}


def lsq_fwd_bwd(m, x, g, axis, scale, zp):
    xg, s, z = x.clone().requires_grad_(), scale.clone().requires_grad_(), zp.clone().requires_grad_()
    op = LSQ_OPS[m, axis is not None]
    args = (-128, 127, 1.0) if axis is None else (axis, -128, 127, 1.0)
    return lambda: torch.autograd.grad(op(xg, s, z, *args), (xg, s, z), g)


def fused_args(x):
    """The default QAT configs: activations per tensor quint8 with reduce_range (0..127); weights
    per channel (axis 0) symmetric qint8. Buffers are updated in place on every call."""
    on = torch.ones(1, dtype=torch.long)
    if x.shape == WEIGHT:
        return (on, on, torch.tensor([]), torch.tensor([]), torch.tensor([1.0]), torch.zeros(1, dtype=torch.int32),
                0.01, -128, 127, 0, True, True)
    return (on, on, torch.tensor(INF), torch.tensor(-INF), torch.tensor([1.0]), torch.zeros(1, dtype=torch.int32),
            0.01, 0, 127, -1, False, False)


def fused_floor(x):
    """The activation op must read x twice (min / max, then fake quant): torch.aminmax plus
    allocating and writing the output (a clone) and the one-bit mask, measured in the same run."""
    words = (x.numel() + 63) // 64
    return bench(lambda: torch.aminmax(x)) + bench(lambda: x.clone()) + \
        bench(lambda: torch.empty(words, dtype=torch.long).fill_(-1))


def keep_freed_memory():
    """Stops glibc from returning freed blocks to the OS (mmap threshold and trim threshold at 1 GB),
    as a caching allocator (jemalloc, tcmalloc) would: with its defaults, whether a call page-faults
    its 25 MB outputs in afresh depends on the heap layout left by the previous call."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep-freed-memory", action="store_true", help=keep_freed_memory.__doc__.split(":")[0])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.keep_freed_memory:
        keep_freed_memory()
    print(f"# LSQ and fused observer + fake quant, {machine()}; fakequant ISA lsq {fq.backend_info()['lsq']}, "
          f"fused_obs {fq.backend_info()['fused_obs']}; glibc keeps freed memory: {args.keep_freed_memory}\n")
    rows = []
    for name, shape in (("act 8x64x112x112", ACT), ("weight 256x256x3x3", WEIGHT)):
        torch.manual_seed(0)
        x = torch.randn(shape) * (2.0 if shape == ACT else 0.05)
        g = torch.randn(shape)
        nbytes = x.numel() * x.element_size()
        act = shape == ACT
        gbps_copy, t_copy = copy_gbps(x)

        def row(op, pas, t_torch, t_fq, traffic, floor=None):
            gbps = traffic / t_fq / 1e9 if act else None
            rows.append([name, op, pas, f"{t_torch*1e3:.2f}", f"{t_fq*1e3:.3f}", f"{t_torch/t_fq:.1f}x",
                         f"{gbps:.1f}" if gbps else "-", f"{100*gbps/gbps_copy:.0f}%" if gbps else "-",
                         f"{floor*1e3:.2f}" if floor else "-", f"{t_fq/floor:.2f}" if floor else "-"])

        for op, axis, scale, zp in lsq_cases(x):
            t_torch = bench(lsq_fwd_bwd(torch, x, g, axis, scale, zp))
            t_fq = bench(lsq_fwd_bwd(fq, x, g, axis, scale, zp))
            row(f"LSQ {op}", "fwd+bwd", t_torch, t_fq, 5 * nbytes)  # x, y; x, g, dx
        xg = x.clone().requires_grad_()  # training: the forward writes the mask
        op = "fused obs+FQ " + ("per-channel sym" if not act else "per-tensor")
        ta, fa = fused_args(x), fused_args(x)
        t_torch = bench(lambda: torch.fused_moving_avg_obs_fake_quant(xg, *ta))
        t_fq = bench(lambda: fq.fused_moving_avg_obs_fake_quant(xg, *fa))
        row(op, "fwd", t_torch, t_fq, 3 * nbytes + nbytes / 32, fused_floor(x) if act else None)
        t_torch = bench(lambda: torch.autograd.grad(torch.fused_moving_avg_obs_fake_quant(xg, *ta), xg, g))
        t_fq = bench(lambda: torch.autograd.grad(fq.fused_moving_avg_obs_fake_quant(xg, *fa), xg, g))
        row(op, "fwd+bwd", t_torch, t_fq, 5 * nbytes + nbytes / 16)
        if act:  # a QAT module ending in a ReLU: torch runs relu, then the fused op; fakequant one kernel
            ta, fa = fused_args(x), fused_args(x)
            t_torch = bench(lambda: torch.autograd.grad(
                torch.fused_moving_avg_obs_fake_quant(torch.relu(xg), *ta), xg, g))
            t_fq = bench(lambda: torch.autograd.grad(fused_moving_avg_obs_fake_quant_relu(xg, *fa), xg, g))
            row("ReLU + " + op, "fwd+bwd", t_torch, t_fq, 5 * nbytes + nbytes / 8)
        print(f"{name}: copy {t_copy*1e3:.2f} ms ({gbps_copy:.1f} GB/s)")
    print()
    print(table(["tensor", "op", "pass", "torch ms", "fakequant ms", "speedup", "GB/s", "% of copy GB/s",
                 "floor ms", "vs floor"], rows))
    print("\nGB/s counts bytes read + written (fp32, 1-bit mask); activation rows only. 'floor' (fused fwd on "
          "the activation) = torch.aminmax + clone + one-bit mask, same run.")


if __name__ == "__main__":
    main()
