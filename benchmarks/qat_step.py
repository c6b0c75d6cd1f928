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
from fakequant.examples.mobilenet import TinyMobileNetV2  # noqa: E402

warnings.filterwarnings("ignore")

PHASES = ("BN live, observers on", "BN frozen, observers off")
# name -> (batch, channels, side): the QAT example's digits batch, then larger inputs for the same network.
CASES = {"digits 16x1x8x8": (16, 1, 8), "32x3x32x32": (32, 3, 32), "64x3x64x64": (64, 3, 64)}


class _PlainMean(torch.nn.Module):
    """torch.ao's FloatFunctional has no mean: its eager models pool without an observer."""

    def mean(self, x, dim):
        return x.mean(dim)


def torch_prepared(in_channels, backend):
    """The same network prepared by torch.ao: written with torch.ao's stubs / FloatFunctional and fused by
    torch.ao, since torch.ao's prepare_qat only recognises its own module types."""
    torch.manual_seed(0)
    model = TinyMobileNetV2(in_channels=in_channels).train()
    model.pool = _PlainMean()
    for m in list(model.modules()):
        for child_name, child in list(m.named_children()):
            replacement = {fq.QuantStub: tq.QuantStub, fq.DeQuantStub: tq.DeQuantStub,
                           fq.FloatFunctional: torch.ao.nn.quantized.FloatFunctional}.get(type(child))
            if replacement is not None:
                setattr(m, child_name, replacement())
    for m in model.modules():
        if type(m).__name__ == "ConvBNReLU":
            tq.fuse_modules_qat(m, ["0", "1", "2"], inplace=True)
        elif type(m).__name__ == "InvertedResidual":
            last = len(m.conv) - 2
            tq.fuse_modules_qat(m.conv, [str(last), str(last + 1)], inplace=True)
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# QAT training step (TinyMobileNetV2, {args.backend} qconfig), {machine()}; "
          f"fakequant ISA {fakequant.backend_info()['fake_quant']}\n")
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
        ours.qconfig = fq.get_default_qat_qconfig(args.backend)
        fq.prepare_qat(ours, inplace=True)
        theirs = torch_prepared(channels, args.backend)
        float_step = step_fn(float_model, x, y)
        for phase in PHASES:
            if phase != PHASES[0]:
                ours.apply(fq.freeze_bn_stats), ours.apply(fq.disable_observer)
                theirs.apply(tnniqat.freeze_bn_stats), theirs.apply(tq.disable_observer)
            t = interleaved({"float": float_step, "torch": step_fn(theirs, x, y), "ours": step_fn(ours, x, y)})
            rows.append([name, phase, f"{t['float']*1e3:.2f}", f"{t['torch']*1e3:.2f}", f"{t['ours']*1e3:.2f}",
                         f"{t['torch']/t['float']:.2f}x", f"{t['ours']/t['float']:.2f}x",
                         f"{t['torch']/t['ours']:.2f}x"])
    print(table(["input", "QAT phase", "float ms", "torch.ao QAT ms", "fakequant QAT ms", "torch.ao / float",
                 "fakequant / float", "torch.ao / fakequant"], rows))
    print("\nmedian ms per step over interleaved rounds (forward + backward + SGD momentum step); same network "
          "and weights; the QAT models are fused (conv+bn+relu) and prepared with the default QAT qconfig; the "
          "second phase is the end of QAT (freeze_bn_stats, disable_observer). The float model trains its BN.")


if __name__ == "__main__":
    main()
