"""fuse_modules / fuse_modules_qat, QAT modules (BN folding, freezing) and prepare_qat (placement, torch.ao
inputs, state_dict layout, errors)."""
import copy

import pytest
import torch
import torch.ao.nn.intrinsic as tnni
import torch.ao.quantization as tq
from torch import nn

import fakequant.nn.intrinsic as nni
import fakequant.nn.intrinsic.qat as nniqat
import fakequant.nn.qat as nnqat
import fakequant.quantization as fq

pytestmark = pytest.mark.filterwarnings("ignore:Please use quant_min and quant_max")


def conv_bn_relu(dims=2):
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
    bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims]
    m = nn.Sequential(conv(3, 4, 3, padding=1), bn(4), nn.ReLU())
    with torch.no_grad():
        m[1].running_mean.uniform_(-1, 1), m[1].running_var.uniform_(0.5, 2), m[1].weight.uniform_(0.5, 2)
    return m


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_fuse_qat_and_eval(dims):
    m = conv_bn_relu(dims)
    fused = fq.fuse_modules_qat(m, ["0", "1", "2"])
    assert type(fused[0]).__name__ == f"ConvBnReLU{dims}d" and isinstance(fused[1], nn.Identity)
    assert type(fq.fuse_modules_qat(m, ["0", "1"])[0]).__name__ == f"ConvBn{dims}d"
    m.eval()
    x = torch.randn((2, 3) + (5,) * dims)
    folded = fq.fuse_modules(m, [["0", "1", "2"]])
    assert type(folded[0]).__name__ == f"ConvReLU{dims}d"
    torch.testing.assert_close(folded(x), m(x), rtol=1e-5, atol=1e-5)


def test_fuse_linear_and_bn_relu_and_hooks():
    m = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Linear(5, 5), nn.ReLU(), nn.BatchNorm2d(5), nn.ReLU())
    calls = []
    m[3].register_forward_hook(lambda *a: calls.append("post"))
    m[0].register_forward_pre_hook(lambda *a: calls.append("pre"))
    fused = fq.fuse_modules_qat(m, [["0", "1"], ["2", "3"], ["4", "5"]])
    assert [type(x) for x in fused[:5:2]] == [nni.LinearBn1d, nni.LinearReLU, nni.BNReLU2d]
    fused[0](torch.randn(3, 4))
    fused[2](torch.randn(3, 5))
    assert calls == ["pre", "post"]


def test_fuse_errors():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4))
    with pytest.raises(NotImplementedError, match="cannot fuse"):
        fq.fuse_modules(m, ["1", "2"])
    with pytest.raises(ValueError, match="eval mode"):
        fq.fuse_modules(m, ["0", "2"])
    m[1].eval()
    with pytest.raises(ValueError, match="same mode"):
        fq.fuse_modules_qat(m, ["0", "1"])
    with pytest.raises(TypeError, match="needs"):
        nni.ConvBn2d(nn.Conv2d(1, 1, 1), nn.BatchNorm1d(1))


def qconfig():
    return fq.get_default_qat_qconfig("x86")


@pytest.mark.parametrize("ours_cls,torch_cls,make", [
    (nniqat.ConvBn2d, tnni.qat.ConvBn2d, lambda: tnni.ConvBn2d(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4))),
    (nniqat.ConvBnReLU2d, tnni.qat.ConvBnReLU2d, lambda: tnni.ConvBnReLU2d(*conv_bn_relu())),
    (nniqat.LinearBn1d, tnni.qat.LinearBn1d, lambda: tnni.LinearBn1d(nn.Linear(3, 4), nn.BatchNorm1d(4))),
])
def test_bn_folding_matches_torch_in_train_eval_and_frozen(ours_cls, torch_cls, make):
    float_mod = make()
    with torch.no_grad():
        float_mod[1].running_var.uniform_(0.5, 2), float_mod[1].weight.uniform_(0.5, 2)
    float_mod.qconfig = tq.get_default_qat_qconfig("x86")
    theirs = torch_cls.from_float(copy.deepcopy(float_mod))
    ours = ours_cls.from_float(copy.deepcopy(float_mod))
    x = torch.randn(8, 3, 6, 6) if "Conv" in ours_cls.__name__ else torch.randn(8, 3)
    for phase in ("train", "frozen", "eval"):
        if phase == "frozen":
            ours.apply(fq.freeze_bn_stats), theirs.freeze_bn_stats()  # torch's apply() skips LinearBn1d
            ours.train(), theirs.train()
            assert not ours.bn.training
        if phase == "eval":
            ours.eval(), theirs.eval()
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(ours.bn.running_mean, theirs.bn.running_mean)
    ours.apply(fq.update_bn_stats)
    assert ours.bn.training and not ours.freeze_bn


def test_folded_weight_bias_is_what_convert_needs():
    float_mod = tnni.ConvBn2d(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4))
    with torch.no_grad():
        float_mod[1].running_mean.uniform_(-1, 1), float_mod[1].running_var.uniform_(0.5, 2)
    float_mod.qconfig = qconfig()
    ours = nniqat.ConvBn2d.from_float(float_mod).eval()
    w, b = ours.folded_weight_bias()
    want_w, want_b = torch.nn.utils.fuse_conv_bn_weights(float_mod[0].weight, float_mod[0].bias,
                                                         float_mod[1].running_mean, float_mod[1].running_var,
                                                         float_mod[1].eps, float_mod[1].weight, float_mod[1].bias)
    torch.testing.assert_close(w, want_w.detach()), torch.testing.assert_close(b, want_b.detach())
    x = torch.randn(2, 3, 5, 5)
    y = ours(x)  # eval: the folded float conv with the fake-quantized folded weight
    wq = ours.weight_fake_quant(w)
    torch.testing.assert_close(y, nn.functional.conv2d(x, wq, b), rtol=1e-5, atol=1e-5)
    lin = nnqat.Linear(3, 2, qconfig=qconfig())
    assert lin.folded_weight_bias()[0] is not lin.weight and torch.equal(lin.folded_weight_bias()[0], lin.weight)


class Block(nn.Module):
    """torchvision-quantizable style: torch.ao stubs and FloatFunctional, fused with torch.ao."""

    def __init__(self, stubs=tq, functional=torch.ao.nn.quantized.FloatFunctional):
        super().__init__()
        self.quant = stubs.QuantStub()
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8))
        self.add = functional()
        self.cat = functional()
        self.act = nn.ReLU6()
        self.drop = nn.Dropout(0.0)
        self.fc = nn.Sequential(nn.Linear(16, 10), nn.ReLU())
        self.dequant = stubs.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        y = self.conv(x)
        y = self.add.add(y, self.dw(y))
        y = self.act(self.cat.cat([y, y], 1))
        return self.dequant(self.fc(self.drop(y.mean((2, 3)))))

    def fuse(self, fuse_fn):
        fuse_fn(self, [["conv.0", "conv.1", "conv.2"], ["dw.0", "dw.1"], ["fc.0", "fc.1"]], inplace=True)
        return self


def test_prepare_qat_accepts_torch_fused_models_and_leaves_no_torch_modules():
    model = Block().train().fuse(tq.fuse_modules_qat)
    model.qconfig = tq.get_default_qat_qconfig("x86")  # a torch qconfig: translated
    prepared = fq.prepare_qat(model)
    names = {n: type(m) for n, m in prepared.named_modules()}
    assert names["quant"] is fq.QuantStub and names["dequant"] is fq.DeQuantStub and names["add"] is fq.FloatFunctional
    assert names["conv.0"] is nniqat.ConvBnReLU2d and names["dw.0"] is nniqat.ConvBn2d
    assert names["fc.0"] is nniqat.LinearReLU
    assert not [n for n, t in names.items() if t.__module__.startswith("torch.ao")]
    assert isinstance(prepared.act.activation_post_process, fq.FusedMovingAvgObsFakeQuantize)
    assert not hasattr(prepared.drop, "activation_post_process") and not hasattr(prepared.dequant,
                                                                                 "activation_post_process")
    assert model.quant.__class__ is tq.QuantStub  # not inplace: the input is untouched
    prepared(torch.randn(2, 3, 6, 6)).sum().backward()


def test_prepared_state_dict_is_torchs():
    float_model = Block().train().fuse(tq.fuse_modules_qat)
    float_model.qconfig = tq.get_default_qat_qconfig("fbgemm")
    theirs = tq.prepare_qat(copy.deepcopy(float_model))
    float_model.qconfig = fq.get_default_qat_qconfig("fbgemm")
    ours = fq.prepare_qat(copy.deepcopy(float_model))
    x = torch.randn(4, 3, 6, 6)
    theirs(x)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    theirs.apply(tq.disable_observer), ours.apply(fq.disable_observer)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


def test_prepare_our_own_stubs_and_fusion_conv1d_conv3d():
    model = nn.Sequential(fq.QuantStub(), nn.Conv1d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(9, 2),
                          fq.DeQuantStub()).train()
    fq.fuse_modules_qat(model, ["1", "2"], inplace=True)
    model.qconfig = qconfig()
    prepared = fq.prepare_qat(model)
    assert type(prepared[1]) is nniqat.ConvReLU1d and type(prepared[4]) is nnqat.Linear
    prepared(torch.randn(2, 2, 5))
    conv3 = nn.Sequential(nn.Conv3d(2, 2, 1)).train()
    conv3.qconfig = qconfig()
    assert type(fq.prepare_qat(conv3)[0]) is nnqat.Conv3d


def test_weight_only_and_activation_only_qconfigs():
    model = Block(stubs=fq, functional=fq.FloatFunctional).train().fuse(fq.fuse_modules_qat)
    model.qconfig = fq.get_weight_only_qat_qconfig()
    prepared = fq.prepare_qat(model)
    assert isinstance(prepared.conv[0].activation_post_process, nn.Identity)
    assert isinstance(prepared.conv[0].weight_fake_quant, fq.FusedMovingAvgObsFakeQuantize)
    model.qconfig = fq.get_activation_only_qat_qconfig()
    prepared = fq.prepare_qat(model)
    assert isinstance(prepared.conv[0].weight_fake_quant, nn.Identity)
    assert isinstance(prepared.add.activation_post_process, fq.FusedMovingAvgObsFakeQuantize)
    prepared(torch.randn(2, 3, 4, 4))


def test_prepare_errors_and_warnings():
    model = Block().fuse(tq.fuse_modules_qat)
    model.qconfig = qconfig()
    with pytest.raises(ValueError, match="training mode"):
        fq.prepare_qat(model.eval())
    torch_prepared = tq.prepare_qat(model.train())
    with pytest.raises(ValueError, match="already in it"):
        fq.prepare_qat(torch_prepared)
    with pytest.warns(UserWarning, match="no module has a qconfig"):
        fq.prepare_qat(nn.Sequential(nn.Linear(2, 2)).train())
    with pytest.raises(ValueError, match="qconfig must be provided"):
        nnqat.Linear(2, 2)
    with pytest.raises(TypeError, match="from_float needs"):
        nniqat.ConvBn2d.from_float(nn.Conv2d(1, 1, 1))


def test_torch_quant_wrapper_root_and_model_train_keeps_frozen_bn():
    model = tq.QuantWrapper(nn.Sequential(*conv_bn_relu())).train()
    tq.fuse_modules_qat(model.module, ["0", "1", "2"], inplace=True)
    model.qconfig = qconfig()
    prepared = fq.prepare_qat(model)
    assert type(prepared) is fq.QuantWrapper and type(prepared.quant) is fq.QuantStub
    prepared.apply(fq.freeze_bn_stats)
    prepared.train()
    assert not prepared.module[0].bn.training
    prepared(torch.randn(2, 3, 4, 4))
