"""Benchmark: latency of the QAT example's network converted to int8 by fakequant, against the same network
converted by torch.ao and against the float model, same run (1 image and a batch)."""
import argparse
import copy
import os
import sys
import warnings

import torch
import torch.ao.quantization as tq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakequant  # noqa: E402
import fakequant.quantization as fq  # noqa: E402
from common import bench, machine, table  # noqa: E402
from twin import torch_fused_twin  # noqa: E402
from fakequant.examples.mobilenet import TinyMobileNetV2  # noqa: E402

warnings.filterwarnings("ignore")


def calibrated(prepared, x, steps=5):
    with torch.no_grad():
        for _ in range(steps):
            prepared(x)
    return prepared.eval()


def build(in_channels, x):
    torch.manual_seed(0)
    float_model = TinyMobileNetV2(in_channels=in_channels).eval()
    models = {"float (fp32)": float_model}
    ours = copy.deepcopy(float_model).train()
    ours.fuse_model()
    ours.qconfig = fq.get_default_qat_qconfig("x86")
    models["fakequant int8"] = fq.convert(calibrated(fq.prepare_qat(ours), x))
    theirs = torch_fused_twin(float_model).train()
    theirs.qconfig = tq.get_default_qat_qconfig("x86")
    torch.backends.quantized.engine = "x86"
    models["torch.ao int8 (x86)"] = tq.convert(calibrated(tq.prepare_qat(theirs), x))
    return models


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# converted-model latency, {machine()}; int8 GEMM ISA {fakequant.backend_info()['int8_gemm']}\n")
    rows = []
    for label, (n, c, side) in {"digits 1x1x8x8": (1, 1, 8), "digits 256x1x8x8": (256, 1, 8),
                                "1x3x64x64": (1, 3, 64), "32x3x64x64": (32, 3, 64)}.items():
        x = torch.rand(n, c, side, side)
        models = build(c, torch.rand(64, c, side, side))
        times = {}
        with torch.no_grad():
            for name, model in models.items():
                times[name] = bench(lambda: model(x), reps=30)
        t_ours = times["fakequant int8"]
        for name, t in times.items():
            rows.append([label, name, f"{t*1e3:.3f}", f"{t/t_ours:.2f}x"])
    print(table(["input", "model", "ms / batch", "time vs fakequant int8"], rows))


if __name__ == "__main__":
    main()
