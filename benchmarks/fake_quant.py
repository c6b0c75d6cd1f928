"""Benchmark: fakequant's fake-quant ops against torch's, same run, with bandwidth against copy."""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakequant as fq  # noqa: E402
from common import bench, copy_gbps, machine, table  # noqa: E402

SHAPES = {"weight 256x256x3x3": (256, 256, 3, 3), "act 8x64x112x112": (8, 64, 112, 112),
          "act 32x128x56x56": (32, 128, 56, 56)}


def cases(shape, axis):
    c = shape[axis]
    s = torch.rand(c) * 0.02 + 0.001
    zp_w = torch.zeros(c, dtype=torch.int32)
    per_tensor = ("per-tensor", lambda m, x: m.fake_quantize_per_tensor_affine(x, 0.02, 128, 0, 255))
    per_channel = ("per-channel", lambda m, x: m.fake_quantize_per_channel_affine(x, s, zp_w, axis, -128, 127))
    return [per_tensor, per_channel]


def floor_alloc(x):
    """Allocating and writing an output plus a bool mask (torch's cachemask outputs): the floor
    set by fresh allocations (page faults above 32 MB) for any op that returns new tensors."""
    def run():
        torch.empty_like(x).fill_(1.0)
        torch.empty_like(x, dtype=torch.bool).fill_(True)
    return bench(run)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="only the weight-sized tensor")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# fake quant, {machine()}; fakequant ISA {fq.backend_info()['fake_quant']}\n")
    rows = []
    for name, shape in SHAPES.items():
        if args.quick and not name.startswith("weight"):
            continue
        torch.manual_seed(0)
        x = torch.randn(shape)
        axis = 0 if name.startswith("weight") else 1
        gbps_copy, t_copy = copy_gbps(x)
        t_floor = floor_alloc(x)
        nbytes = x.numel() * x.element_size()
        for op, f in cases(shape, axis):
            t_torch = bench(lambda: f(torch, x))
            t_fq = bench(lambda: f(fq, x))
            gbps = 2 * nbytes / t_fq / 1e9
            rows.append([name, op, "fwd", f"{t_torch*1e3:.2f}", f"{t_fq*1e3:.3f}", f"{t_torch/t_fq:.1f}x",
                         f"{gbps:.1f}", f"{100*gbps/gbps_copy:.0f}%", f"{t_copy*1e3:.2f}", f"{t_floor*1e3:.2f}",
                         f"{t_fq/t_floor:.2f}"])
            xg = x.clone().requires_grad_()
            g = torch.randn(shape)

            def fwd_bwd(m):
                return lambda: torch.autograd.grad(f(m, xg), xg, g)
            t_torch = bench(fwd_bwd(torch))
            t_fq = bench(fwd_bwd(fq))
            gbps = (4 * nbytes + nbytes / 32) / t_fq / 1e9  # x, y, g, dx + 1-bit mask
            rows.append([name, op, "fwd+bwd", f"{t_torch*1e3:.2f}", f"{t_fq*1e3:.3f}", f"{t_torch/t_fq:.1f}x",
                         f"{gbps:.1f}", f"{100*gbps/gbps_copy:.0f}%", f"{t_copy*1e3:.2f}", f"{2*t_floor*1e3:.2f}",
                         f"{t_fq/(2*t_floor):.2f}"])
    print(table(["tensor", "op", "pass", "torch ms", "fakequant ms", "speedup", "GB/s", "% of copy GB/s",
                 "copy ms", "alloc floor ms", "vs floor"], rows))
    print("\nGB/s counts bytes read + written (fp32 in/out, 1-bit mask). 'alloc floor' = allocating and "
          "writing an output + bool mask in the same run (twice for fwd+bwd).")


if __name__ == "__main__":
    main()
