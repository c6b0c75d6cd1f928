"""The eager QAT workflow end to end on a real dataset (python -m fakequant.examples.qat [--bits 4] [--data DIR]).

float training -> fuse_model -> qconfig -> prepare_qat -> QAT epochs (BN statistics frozen, then observers
frozen) with an evaluation after every epoch -> table of float / PTQ / QAT / int8 accuracy, size, latency.
PTQ is the same prepared model calibrated without training: observers on, fake quant off, then frozen.
"""
import argparse
import copy
import io
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .. import quantization as fq
from .data import load_digits_split, load_folder_split
from .mobilenet import TinyMobileNetV2


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m fakequant.examples.qat", description=__doc__.splitlines()[0])
    p.add_argument("--data", metavar="DIR", help="image folder with one subfolder per class (default: sklearn digits)")
    p.add_argument("--image-size", type=int, default=8, help="--data images are resized to this (default 8)")
    p.add_argument("--bits", type=int, choices=(8, 4), default=8,
                   help="8: the backend's default QAT qconfig; 4: activations 0..15, weights -8..7 per channel")
    p.add_argument("--lsq", action=argparse.BooleanOptionalAction, default=None,
                   help="LearnableFakeQuantize (LSQ): scales follow the observers, then are learned once frozen "
                        "(default: on for --bits 4, where learned step sizes beat min / max ranges, off for 8)")
    p.add_argument("--backend", default="x86", choices=fq.BACKENDS)
    p.add_argument("--float-epochs", type=int, default=30)
    p.add_argument("--qat-epochs", type=int, default=8)
    p.add_argument("--freeze-bn-after", type=int, default=2, help="freeze BN statistics after this many QAT epochs")
    p.add_argument("--freeze-observer-after", type=int, default=3, help="freeze observers after this many QAT epochs")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.05, help="float training learning rate (SGD, cosine)")
    p.add_argument("--qat-lr", type=float, default=0.01, help="QAT learning rate (SGD, cosine)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--clip-grad", type=float, default=1.0, help="clip the gradient norm to this (0: off)")
    p.add_argument("--no-augment", action="store_true", help="no random 1-pixel shifts while training")
    p.add_argument("--subset", type=int, default=0, help="use only this many training / test samples (smoke runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: fastest for this tiny model, and thread-count-independent results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.lsq is None:
        args.lsq = args.bits < 8
    return args


def qconfig_for(args):
    if args.bits == 8:
        return fq.get_lsq_qat_qconfig(args.backend) if args.lsq else fq.get_default_qat_qconfig(args.backend)
    return fq.get_qat_qconfig_nbits(activation_bits=4, weight_bits=4, lsq=args.lsq)


def shift_augment(x, gen):
    """Each image shifted by up to one pixel in each direction (zero fill)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    dy, dx = torch.randint(0, 3, (2, n), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, x.shape[1], h, w + 2)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, x.shape[1], h, w)
    return out.gather(3, cols)


def train_epoch(model, data, opt, sched, args, gen, desc):
    x, y = data["x_train"], data["y_train"]
    model.train()
    order = torch.randperm(len(y), generator=gen)
    total, steps = 0.0, range(0, len(y), args.batch_size)
    bar = tqdm(steps, desc=desc, leave=False, disable=args.no_progress or None)
    for start in bar:
        idx = order[start:start + args.batch_size]
        xb = x[idx] if args.no_augment else shift_augment(x[idx], gen)
        loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip_grad:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
        opt.step()
        sched.step()
        total += loss.item() * len(idx)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return total / len(y)


def _observers_paused(model):
    """Context: observers off (evaluation must not move the ranges), their previous state restored after."""
    class Paused:
        def __enter__(self):
            self.saved = [(m, m.observer_enabled.clone()) for m in model.modules()
                          if isinstance(m, fq.FakeQuantizeBase)]
            model.apply(fq.disable_observer)

        def __exit__(self, *exc):
            for m, state in self.saved:
                m.enable_observer(bool(state[0]))
    return Paused()


@torch.no_grad()
def evaluate(model, x, y, batch_size=256):
    """Top-1 accuracy (%) in eval mode; fake-quant observers paused; the model's train / eval mode restored."""
    was_training = model.training
    model.eval()
    with _observers_paused(model):
        correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                      for i in range(0, len(y), batch_size))
    model.train(was_training)
    return 100.0 * correct / len(y)


def size_kb(model):
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell() / 1024


@torch.no_grad()
def latency_ms(model, sample, runs=200):
    """Median single-image inference time in eval mode."""
    model.eval()
    with _observers_paused(model):
        for _ in range(20):
            model(sample)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model(sample)
            times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[len(times) // 2]


def int8_model(qat_model):
    """The int8 model converted from the QAT model (its scales and zero points, BN folded)."""
    return fq.convert(qat_model)


def prepared(float_model, args):
    """fuse_model -> qconfig -> prepare_qat on a copy of the trained float model."""
    model = copy.deepcopy(float_model).train()
    model.fuse_model(is_qat=True)
    model.qconfig = qconfig_for(args)
    return fq.prepare_qat(model, inplace=True)


def sgd(model, lr, steps, weight_decay):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))


def train_float(data, args, gen, in_channels, num_classes):
    model = TinyMobileNetV2(num_classes=num_classes, in_channels=in_channels)
    steps = args.float_epochs * -(-len(data["y_train"]) // args.batch_size)
    opt, sched = sgd(model, args.lr, steps, args.weight_decay)
    for epoch in range(args.float_epochs):
        loss = train_epoch(model, data, opt, sched, args, gen, f"float {epoch + 1}/{args.float_epochs}")
        if epoch + 1 == args.float_epochs or (epoch + 1) % 10 == 0:
            acc = evaluate(model, data["x_test"], data["y_test"])
            tqdm.write(f"float epoch {epoch + 1:2d}: loss {loss:.4f}  test accuracy {acc:.2f}%")
    return model


def post_training_quantized(float_model, data, args):
    """The prepared model calibrated on the training set without training (observers on, fake quant off)."""
    return calibrated(prepared(float_model, args), data, args.batch_size)


def calibrated(model, data, batch_size, workflow=fq):
    """A prepared model's observers run over the training set in eval mode with fake quant off, then frozen,
    and fake quant on. workflow: fakequant.quantization, or torch.ao.quantization for a model it prepared."""
    model.apply(workflow.disable_fake_quant)
    model.eval()
    with torch.no_grad():
        for i in range(0, len(data["y_train"]), batch_size):
            model(data["x_train"][i:i + batch_size])
    model.apply(workflow.disable_observer)
    model.apply(workflow.enable_fake_quant)
    return model


def quantization_aware_trained(float_model, data, args, gen):
    model = prepared(float_model, args)
    steps = args.qat_epochs * -(-len(data["y_train"]) // args.batch_size)
    opt, sched = sgd(model, args.qat_lr, steps, args.weight_decay)
    history = []
    for epoch in range(1, args.qat_epochs + 1):
        loss = train_epoch(model, data, opt, sched, args, gen, f"QAT {epoch}/{args.qat_epochs}")
        notes = []
        if epoch == args.freeze_bn_after:
            model.apply(fq.freeze_bn_stats)
            notes.append("BN frozen")
        if epoch == args.freeze_observer_after:
            model.apply(fq.disable_observer)
            notes.append("observers frozen")
        acc = evaluate(model, data["x_test"], data["y_test"])
        int8 = int8_model(model)
        int8_acc = "n/a" if int8 is None else f"{evaluate(int8, data['x_test'], data['y_test']):.2f}%"
        history.append(acc)
        tqdm.write(f"QAT epoch {epoch}: loss {loss:.4f}  fake-quant accuracy {acc:.2f}%  int8 accuracy {int8_acc}"
                   + (f"  ({', '.join(notes)})" if notes else ""))
    return model, history


def load_data(args):
    if args.data:
        xtr, ytr, xte, yte, classes = load_folder_split(args.data, args.seed, args.image_size)
    else:
        xtr, ytr, xte, yte = load_digits_split(args.seed)
        classes = list(range(10))
    if args.subset:
        xtr, ytr, xte, yte = xtr[:args.subset], ytr[:args.subset], xte[:args.subset], yte[:args.subset]
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}, len(classes)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    data, num_classes = load_data(args)
    tqdm.write(f"data: {len(data['y_train'])} train / {len(data['y_test'])} test images, "
               f"shape {tuple(data['x_train'].shape[1:])}, {num_classes} classes; {args.bits}-bit "
               f"({'LSQ' if args.lsq else 'fused fake quant'}), "
               f"backend {args.backend}, {torch.get_num_threads()} threads")
    t0 = time.perf_counter()
    float_model = train_float(data, args, gen, data["x_train"].shape[1], num_classes)
    ptq_model = post_training_quantized(float_model, data, args)
    qat_model, history = quantization_aware_trained(float_model, data, args, gen)
    int8 = int8_model(qat_model)
    x, y, sample = data["x_test"], data["y_test"], data["x_test"][:1]
    rows = [("float", float_model), (f"PTQ {args.bits}-bit (fake quant)", ptq_model),
            (f"QAT {args.bits}-bit (fake quant)", qat_model), ("int8 (converted QAT)", int8)]
    results = {}
    print(f"\n| model | accuracy | size (KiB) | latency, 1 image (ms) |\n|---|---|---|---|")
    for name, model in rows:
        if model is None:
            print(f"| {name} | n/a | n/a | n/a |")
            results[name] = None
            continue
        acc = evaluate(model, x, y)
        results[name] = acc
        print(f"| {name} | {acc:.2f}% | {size_kb(model):.1f} | {latency_ms(model, sample):.3f} |")
    acc_float, acc_ptq, acc_qat = (results[name] for name, _ in rows[:3])
    print(f"\nQAT - float: {acc_qat - acc_float:+.2f} points; QAT - PTQ: {acc_qat - acc_ptq:+.2f} points; "
          f"total time {time.perf_counter() - t0:.0f} s")
    return {"float": acc_float, "ptq": acc_ptq, "qat": acc_qat, "qat_history": history,
            "int8": results[rows[3][0]]}


if __name__ == "__main__":
    main()
