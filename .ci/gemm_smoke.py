"""gemm_smoke.py — on a GPU: each int8 GEMM kernel once on a few shapes against a float64 product; exit 1 on any mismatch."""
import os
import sys
import time

import torch

from fakequant import _C

SHAPES = [(128, 256, 128), (200, 300, 1000), (1600, 1630, 96), (4096, 4096, 4096)]


def main():
    failed = 0
    for setting in ["mma", "wgmma_only", "wgmma"]:
        os.environ["FAKEQUANT_CUDA_GEMM"] = setting
        for m, n, k in SHAPES:
            a = torch.randint(-128, 128, (m, k), device="cuda", dtype=torch.int32).to(torch.int8)
            w = torch.randint(-128, 128, (n, k), device="cuda", dtype=torch.int32).to(torch.int8)
            kernel = _C.cuda_int8_mm_kernel(a, w)
            start = time.perf_counter()
            out = _C.cuda_int8_mm(a, w)
            torch.cuda.synchronize()
            ms = (time.perf_counter() - start) * 1e3
            # Exact references: float64 holds every partial sum of these sizes.
            bad = (out != (a.double() @ w.double().t()).int()).sum().item()
            au = a.view(torch.uint8)  # the u8 x s8 kernel on the same bytes
            bad_u = (_C.cuda_int8_mm(au, w) != (au.double() @ w.double().t()).int()).sum().item()
            failed += bad > 0 or bad_u > 0
            print(f"{setting:9s} {kernel:9s} {m}x{n}x{k}: s8 wrong {bad}, u8 wrong {bad_u}, first call {ms:.1f} ms")
    print("FAILED" if failed else "ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
