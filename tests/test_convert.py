"""convert(): the int8 model agrees with the QAT model it came from (and beats torch.ao's convert)."""
import copy

import pytest
import torch
import torch.ao.nn.quantized as tnnq
import torch.ao.quantization as tq
from torch import nn

import fakequant.quantization as fq
from fakequant.examples.mobilenet import TinyMobileNetV2
from fakequant.nn import quantized as nnq


def sqnr(ref, out):
    return (10 * torch.log10(ref.pow(2).sum() / (ref - out).pow(2).sum().clamp_min(1e-30))).item()


def train_steps(model, x, y, steps=12, freeze_bn_after=6, freeze_obs_after=8):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for i in range(steps):
        if i == freeze_bn_after:
            model.apply(fq.freeze_bn_stats if hasattr(model, "quant") and isinstance(model.quant, fq.QuantStub)
                        else torch.ao.nn.intrinsic.qat.freeze_bn_stats)
        if i == freeze_obs_after:
            model.apply(fq.disable_observer if isinstance(model.quant, fq.QuantStub) else tq.disable_observer)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def digits_batch(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g) * 2, torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
def test_converted_tiny_mobilenet_matches_qat_model(backend):
    torch.manual_seed(0)
    model = TinyMobileNetV2().train()
    model.fuse_model()
    model.qconfig = fq.get_default_qat_qconfig(backend)
    qat = fq.prepare_qat(model)
    x, y = digits_batch()
    train_steps(qat, x, y)
    int8 = fq.convert(qat)
    with torch.no_grad():
        ref, out = qat(x), int8(x)
    assert sqnr(ref, out) > 60  # the same qparams and primitive: at most rare 1-LSB flips
    assert (ref.argmax(1) == out.argmax(1)).float().mean() >= 0.98
    assert not any(isinstance(m, (fq.FakeQuantizeBase, nn.Conv2d, nn.Linear)) for m in int8.modules())
    assert isinstance(int8.quant, nnq.Quantize) and isinstance(int8.dequant, nnq.DeQuantize)


def test_converted_model_round_trips_state_dict(tmp_path):
    torch.manual_seed(1)
    model = TinyMobileNetV2().train()
    model.fuse_model()
    model.qconfig = fq.get_default_qat_qconfig("x86")
    qat = fq.prepare_qat(model)
    x, y = digits_batch(64)
    train_steps(qat, x, y, steps=4)
    int8 = fq.convert(qat)
    torch.save(int8.state_dict(), tmp_path / "int8.pt")
    fresh = TinyMobileNetV2().train()
    fresh.fuse_model()
    fresh.qconfig = fq.get_default_qat_qconfig("x86")
    fresh_int8 = fq.convert(fq.prepare_qat(fresh))
    fresh_int8.load_state_dict(torch.load(tmp_path / "int8.pt"))
    with torch.no_grad():
        assert torch.equal(fresh_int8(x), int8(x))


class TorchStyleNet(nn.Module):
    """A torchvision-style quantizable net written against torch.ao's stubs (both workflows take it)."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.pw = nn.Sequential(nn.Conv2d(16, 16, 1, bias=False), nn.BatchNorm2d(16))
        self.add = tnnq.FloatFunctional()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(self.quant(x))
        x = self.add.add(x, self.pw(self.dw(x)))
        return self.dequant(self.fc(torch.flatten(self.pool(x), 1)))

    def fuse(self, fuse_fn):
        fuse_fn(self, [["stem.0", "stem.1", "stem.2"], ["dw.0", "dw.1", "dw.2"], ["pw.0", "pw.1"]], inplace=True)


def test_convert_agrees_better_than_torch_ao():
    """Same float net, same training steps: fakequant's int8 model is closer to its QAT model than
    torch.ao's int8 model is to torch.ao's QAT model (torch converts with other qparams)."""
    torch.manual_seed(2)
    float_model = TorchStyleNet().train()
    float_model.fuse(tq.fuse_modules_qat)
    x, y = digits_batch(256, seed=3)
    results = {}
    for name, prepare, convert, qconfig in [
            ("fakequant", fq.prepare_qat, fq.convert, fq.get_default_qat_qconfig("fbgemm")),
            ("torch", tq.prepare_qat, tq.convert, tq.get_default_qat_qconfig("fbgemm"))]:
        model = copy.deepcopy(float_model)
        model.qconfig = qconfig
        torch.manual_seed(4)
        qat = train_steps(prepare(model), x, y)
        torch.backends.quantized.engine = "fbgemm"
        int8 = convert(copy.deepcopy(qat))
        with torch.no_grad():
            ref, out = qat(x), int8(x)
        results[name] = (sqnr(ref, out), (ref.argmax(1) == out.argmax(1)).float().mean().item())
    assert results["fakequant"][0] > max(60.0, results["torch"][0] + 20), results
    assert results["fakequant"][1] >= 0.98, results

