"""The main job's post-training baseline checked against torch.ao: the same float model (the example's float
training, same seed) calibrated without training by fakequant and by torch.ao's own workflow, at 4 or 8 bits.
This says how much room QAT has on the digits network, whichever engine runs the PTQ."""
import argparse
import os
import sys
import warnings

import torch
import torch.ao.quantization as tq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakequant.quantization as fq  # noqa: E402
from fakequant.examples import qat  # noqa: E402
from twin import torch_fused_twin  # noqa: E402

warnings.filterwarnings("ignore")


def torch_qconfig(bits, backend):
    """torch.ao's fused fake-quant modules on the example's ranges (the weight ranges taken per step, as the
    example's n-bit qconfig does); at 8 bits torch.ao's default QAT qconfig."""
    if bits == 8:
        return tq.get_default_qat_qconfig(backend)
    act = tq.FusedMovingAvgObsFakeQuantize.with_args(observer=tq.MovingAverageMinMaxObserver, quant_min=0,
                                                     quant_max=2**bits - 1, dtype=torch.quint8)
    weight = tq.FusedMovingAvgObsFakeQuantize.with_args(
        observer=tq.MovingAveragePerChannelMinMaxObserver, quant_min=-(2 ** (bits - 1)),
        quant_max=2 ** (bits - 1) - 1, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
        averaging_constant=1.0)
    return tq.QConfig(activation=act, weight=weight)


def torch_ptq(float_model, data, args):
    """qat.post_training_quantized's steps in torch.ao."""
    model = torch_fused_twin(float_model).train()
    model.qconfig = torch_qconfig(args.bits, args.backend)
    return qat.calibrated(tq.prepare_qat(model, inplace=True), data, args.batch_size, tq)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bits", type=int, choices=(8, 4), default=4)
    ap.add_argument("--seed", type=int, default=0)
    cli = ap.parse_args()
    args = qat.parse_args(["--bits", str(cli.bits), "--seed", str(cli.seed), "--no-lsq", "--no-progress"])
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    data, num_classes = qat.load_data(args)
    float_model = qat.train_float(data, args, gen, data["x_train"].shape[1], num_classes)
    x, y = data["x_test"], data["y_test"]
    rows = [("float", qat.evaluate(float_model, x, y)),
            (f"fakequant PTQ {args.bits}-bit", qat.evaluate(qat.post_training_quantized(float_model, data, args), x, y)),
            (f"torch.ao PTQ {args.bits}-bit", qat.evaluate(torch_ptq(float_model, data, args), x, y))]
    print(f"\n# PTQ of the main job's float model (digits, seed {args.seed}), fakequant and torch.ao\n")
    print("| model | test accuracy |\n|---|---|")
    for name, acc in rows:
        print(f"| {name} | {acc:.2f}% |")
    best = rows[0][1]
    print(f"\nA QAT model at float accuracy would be {best - rows[2][1]:+.2f} points above torch.ao's PTQ.")


if __name__ == "__main__":
    main()
