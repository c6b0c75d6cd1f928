"""fakequant's prepared model against torch.ao's on the same float model and qconfig: train-mode outputs,
gradients and the loss over SGD steps with the BN / observer freezing schedule."""
import copy

import pytest
import torch
import torch.ao.nn.intrinsic.qat as tnniqat
import torch.ao.quantization as tq
from torch import nn

import fakequant.quantization as fq

pytestmark = [pytest.mark.filterwarnings("ignore:Please use quant_min and quant_max"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

FUSE = [["stem.0", "stem.1", "stem.2"], ["dw.0", "dw.1"], ["pw.0", "pw.1"], ["bn.0", "bn.1"], ["fc1.0", "fc1.1"],
        ["fc2.0", "fc2.1"]]


class Net(nn.Module):
    """Every kind of layer prepare_qat handles, written with torch.ao's stubs and FloatFunctional."""

    def __init__(self, stubs, functional):
        super().__init__()
        self.quant = stubs.QuantStub()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=True), nn.BatchNorm2d(8))
        self.add = functional()
        self.pw = nn.Sequential(nn.Conv2d(8, 8, 1), nn.ReLU())
        self.bn = nn.Sequential(nn.BatchNorm2d(8), nn.ReLU())
        self.cat = functional()
        self.mul = functional()
        self.act = nn.ReLU6()
        self.fc1 = nn.Sequential(nn.Linear(16, 12), nn.BatchNorm1d(12))
        self.fc2 = nn.Sequential(nn.Linear(12, 12), nn.ReLU())
        self.fc3 = nn.Linear(12, 5)
        self.dequant = stubs.DeQuantStub()

    def forward(self, x):
        x = self.stem(self.quant(x))
        x = self.add.add(x, self.dw(x))
        x = self.cat.cat([self.pw(x), self.bn(x)], 1)
        x = self.act(self.mul.mul(x, x))
        return self.dequant(self.fc3(self.fc2(self.fc1(x.mean((2, 3))))))


def float_model(seed=0):
    torch.manual_seed(seed)
    model = Net(tq, torch.ao.nn.quantized.FloatFunctional).train()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_var.uniform_(0.5, 2), m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
    return model


def prepared_pair(backend, seed=0, our_fusion=False):
    model = float_model(seed)
    theirs = copy.deepcopy(model)
    tq.fuse_modules_qat(theirs, FUSE, inplace=True)
    theirs.qconfig = tq.get_default_qat_qconfig(backend)
    tq.prepare_qat(theirs, inplace=True)
    ours = copy.deepcopy(model)
    (fq.fuse_modules_qat if our_fusion else tq.fuse_modules_qat)(ours, FUSE, inplace=True)
    ours.qconfig = fq.get_default_qat_qconfig(backend)
    fq.prepare_qat(ours, inplace=True)
    return ours, theirs


def data(steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, 6, 6, generator=g), torch.randint(0, 5, (8,), generator=g)) for _ in range(steps)]


@pytest.mark.parametrize("backend", ["x86", "qnnpack", "onednn"])
@pytest.mark.parametrize("our_fusion", [False, True])
def test_train_mode_outputs_and_gradients_match(backend, our_fusion):
    ours, theirs = prepared_pair(backend, our_fusion=our_fusion)
    for x, _ in data(3):
        y_ours, y_theirs = ours(x), theirs(x)
        torch.testing.assert_close(y_ours, y_theirs, rtol=1e-5, atol=1e-6)
        y_ours.square().sum().backward()
        y_theirs.square().sum().backward()
    grads_theirs = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads_theirs[name].grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
def test_loss_follows_torch_over_sgd_steps_with_the_freezing_schedule(backend):
    ours, theirs = prepared_pair(backend)
    opts = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (ours, theirs)]
    losses = {"ours": [], "theirs": []}
    for step, (x, y) in enumerate(data(10)):
        if step == 4:
            ours.apply(fq.freeze_bn_stats), theirs.apply(tnniqat.freeze_bn_stats)
            theirs.fc1[0].freeze_bn_stats()  # torch's freeze_bn_stats skips LinearBn1d
        if step == 6:
            ours.apply(fq.disable_observer), theirs.apply(tq.disable_observer)
        for name, model, opt in (("ours", ours, opts[0]), ("theirs", theirs, opts[1])):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[name].append(loss.item())
    torch.testing.assert_close(torch.tensor(losses["ours"]), torch.tensor(losses["theirs"]), rtol=1e-4, atol=1e-5)
    ours.eval(), theirs.eval()
    x = data(1, seed=7)[0][0]
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)
    state_theirs = theirs.state_dict()
    for key, value in ours.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, state_theirs[key], rtol=1e-4, atol=1e-5, msg=key)


def test_fake_quant_scale_is_what_calculate_qparams_reports():
    """Training and convert see the same scale: the buffers the fused kernel trained with are what
    calculate_qparams (the observer's rule) returns."""
    ours, _ = prepared_pair("x86")
    for x, _ in data(2):
        ours(x)
    for name, m in ours.named_modules():
        if isinstance(m, fq.FusedMovingAvgObsFakeQuantize) and m.activation_post_process.min_val.numel():
            scale, zp = m.calculate_qparams()
            assert torch.equal(scale, m.scale) and torch.equal(zp, m.zero_point), name
