"""Benchmark: one training step (forward, backward, SGD) of the same model as float, as torch.ao QAT and as
fakequant QAT, same run, with ratios."""
import argparse
import copy
import os
import statistics
import sys
import time
import warnings

import torch
import torch.ao.nn.intrinsic.qat as tnniqat
import torch.ao.quantization as tq
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakequant  # noqa: E402
import fakequant.quantization as fq  # noqa: E402
from common import machine, table  # noqa: E402
from twin import torch_fused_twin  # noqa: E402
from fakequant.examples.mobilenet import TinyMobileNetV2  # noqa: E402

warnings.filterwarnings("ignore")

PHASES = ("BN live, observers on", "BN frozen, observers off")
# name -> (batch, channels, side): the QAT example's digits batch, then larger inputs for the same network.
CASES = {"digits 16x1x8x8": (16, 1, 8), "32x3x32x32": (32, 3, 32), "64x3x64x64": (64, 3, 64)}


def torch_prepared(in_channels, backend):
    """The same network prepared by torch.ao: written with torch.ao's stubs / FloatFunctional and fused by
    torch.ao, since torch.ao's prepare_qat only recognises its own module types."""
    torch.manual_seed(0)
    model = torch_fused_twin(TinyMobileNetV2(in_channels=in_channels).train())
    model.qconfig = tq.get_default_qat_qconfig(backend)
    return tq.prepare_qat(model, inplace=True)


def interleaved(fns, rounds=9, min_time=0.15):
    """Median seconds per call of each fn, timed in alternating rounds so that load changes on a shared
    machine hit every variant alike."""
    for fn in fns.values():
        for _ in range(3):
            fn()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            n, start = 0, time.perf_counter()
            while n < 3 or time.perf_counter() - start < min_time:
                fn()
                n += 1
            times[k].append((time.perf_counter() - start) / n)
    return {k: statistics.median(v) for k, v in times.items()}


# --qconfig -> fakequant qconfig for a backend
QCONFIGS = {"default": fq.get_default_qat_qconfig,
            "lsq4": lambda backend: fq.get_qat_qconfig_nbits(4, 4, lsq=True),
            "fused4": lambda backend: fq.get_qat_qconfig_nbits(4, 4)}


def step_fn(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="x86", choices=fq.BACKENDS)
    ap.add_argument("--quick", action="store_true", help="only the digits case")
    ap.add_argument("--qconfig", default="default", choices=sorted(QCONFIGS),
                    help="fakequant's qconfig: the backend's default (torch.ao runs the same), or the example's "
                         "4-bit ones, LSQ or fused (fakequant only: torch.ao has no such default)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# QAT training step (TinyMobileNetV2, {args.backend} backend, {args.qconfig} qconfig), {machine()}; "
          f"fakequant ISA {fakequant.backend_info()['fake_quant']}\n")
    with_torch = args.qconfig == "default"
    rows = []
    for name, (batch, channels, side) in CASES.items():
        if args.quick and not name.startswith("digits"):
            continue
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(batch, channels, side, side, generator=g), torch.randint(0, 10, (batch,), generator=g)
        torch.manual_seed(0)
        float_model = TinyMobileNetV2(in_channels=channels).train()
        ours = copy.deepcopy(float_model)
        ours.fuse_model(is_qat=True)
        ours.qconfig = QCONFIGS[args.qconfig](args.backend)
        fq.prepare_qat(ours, inplace=True)
        theirs = torch_prepared(channels, args.backend) if with_torch else None
        float_step = step_fn(float_model, x, y)
        for phase in PHASES:
            if phase != PHASES[0]:
                ours.apply(fq.freeze_bn_stats), ours.apply(fq.disable_observer)
                if with_torch:
                    theirs.apply(tnniqat.freeze_bn_stats), theirs.apply(tq.disable_observer)
            steps = {"float": float_step, "ours": step_fn(ours, x, y)}
            if with_torch:
                steps["torch"] = step_fn(theirs, x, y)
            t = interleaved(steps)
            torch_cols = ([f"{t['torch']*1e3:.2f}", f"{t['torch']/t['float']:.2f}x", f"{t['torch']/t['ours']:.2f}x"]
                          if with_torch else ["n/a"] * 3)
            rows.append([name, phase, f"{t['float']*1e3:.2f}", torch_cols[0], f"{t['ours']*1e3:.2f}", torch_cols[1],
                         f"{t['ours']/t['float']:.2f}x", torch_cols[2]])
    print(table(["input", "QAT phase", "float ms", "torch.ao QAT ms", "fakequant QAT ms", "torch.ao / float",
                 "fakequant / float", "torch.ao / fakequant"], rows))
    print("\nmedian ms per step over interleaved rounds (forward + backward + SGD momentum step); same network "
          "and weights; the QAT models are fused (conv+bn+relu) and prepared with the default QAT qconfig; the "
          "second phase is the end of QAT (freeze_bn_stats, disable_observer). The float model trains its BN.")


if __name__ == "__main__":
    main()
