"""Fake-quant modules against torch.ao's (outputs, buffers, gradients, state_dict) and the qconfigs."""
import functools
import pytest
import torch
import torch.ao.quantization as tq
from hypothesis import given
from hypothesis import strategies as st
from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize

import fakequant.quantization as fq
from helpers import assert_bitwise_equal

pytestmark = pytest.mark.filterwarnings("ignore:Please use quant_min and quant_max")


def pair(ours_ctor, torch_ctor):
    return ours_ctor(), torch_ctor()


FUSED_PAIRS = {
    "act_reduce_range": (functools.partial(fq.FusedMovingAvgObsFakeQuantize, reduce_range=True),
                         functools.partial(tq.FusedMovingAvgObsFakeQuantize, reduce_range=True)),
    "weight_per_channel": (fq.default_fused_per_channel_wt_fake_quant, tq.default_fused_per_channel_wt_fake_quant),
    "weight_per_tensor": (fq.default_fused_wt_fake_quant, tq.default_fused_wt_fake_quant),
    "4bit_act": (functools.partial(fq.FusedMovingAvgObsFakeQuantize, quant_min=0, quant_max=15),
                 functools.partial(tq.FusedMovingAvgObsFakeQuantize, quant_min=0, quant_max=15)),
}


@pytest.mark.parametrize("name", sorted(FUSED_PAIRS))
@given(seed=st.integers(0, 2**31 - 1))
def test_fused_module_matches_torch_over_a_schedule(name, seed):
    ours, theirs = pair(*FUSED_PAIRS[name])
    g = torch.Generator().manual_seed(seed)
    for step in range(6):
        if step == 2:  # calibration-style: observe without fake quant
            ours.disable_fake_quant(), theirs.disable_fake_quant()
        if step == 3:
            ours.enable_fake_quant(), theirs.enable_fake_quant()
        if step == 4:
            fq.disable_observer(ours), tq.disable_observer(theirs)
        x = (torch.randn(4, 3, 2, 2, generator=g) * (1 + step)).requires_grad_()
        x2 = x.detach().clone().requires_grad_()
        y, y2 = ours(x), theirs(x2)
        assert torch.equal(y, y2)
        y.backward(torch.ones_like(y)), y2.backward(torch.ones_like(y2))
        assert torch.equal(x.grad, x2.grad)
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), key
    scale, zp = ours.calculate_qparams()
    assert torch.equal(scale, ours.scale) and torch.equal(zp, ours.zero_point)


@pytest.mark.parametrize("ctor_pair", [(fq.default_fake_quant, tq.default_fake_quant),
                                       (fq.default_per_channel_weight_fake_quant,
                                        tq.default_per_channel_weight_fake_quant),
                                       (fq.default_fused_per_channel_wt_fake_quant,
                                        tq.default_fused_per_channel_wt_fake_quant),
                                       (fq.get_lsq_qat_qconfig().weight,
                                        functools.partial(_LearnableFakeQuantize,
                                                          observer=tq.MovingAveragePerChannelMinMaxObserver,
                                                          quant_min=-128, quant_max=127, dtype=torch.qint8,
                                                          qscheme=torch.per_channel_symmetric, channel_len=6))])
def test_state_dict_layout_and_loading_torch_checkpoints(ctor_pair):
    ours, theirs = pair(*ctor_pair)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    dtypes = [(k, v.dtype) for k, v in ours.state_dict().items()]
    assert dtypes == [(k, v.dtype) for k, v in theirs.state_dict().items()]
    theirs.enable_fake_quant(False)
    theirs(torch.randn(6, 4))
    ours.load_state_dict(theirs.state_dict())  # per-channel buffers resize to 6 channels
    for key, value in theirs.state_dict().items():  # bitwise: torch leaves unobserved buffers uninitialised
        assert_bitwise_equal(ours.state_dict()[key], value)


def test_unfused_fake_quantize_uses_observer_qparams_and_our_op():
    fqm = fq.default_per_channel_weight_fake_quant()
    x = torch.randn(5, 3, 3)
    y = fqm(x)
    scale, zp = fqm.activation_post_process.calculate_qparams()
    assert torch.equal(fqm.scale, scale) and torch.equal(fqm.zero_point, zp)
    assert torch.equal(y, torch.fake_quantize_per_channel_affine(x, scale, zp, 0, -128, 127))
    fqm.disable_fake_quant()
    assert fqm(x) is x


def test_fused_module_with_large_eps_runs_unfused_and_keeps_the_floor():
    m = fq.FusedMovingAvgObsFakeQuantize(observer=fq.MovingAveragePerChannelMinMaxObserver, quant_min=-127,
                                         quant_max=127, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                         eps=2**-12)
    m(torch.randn(3, 4) * 1e-4)
    assert bool((m.scale >= 2**-12).all())
    with pytest.raises(TypeError, match="MovingAverage"):
        fq.FusedMovingAvgObsFakeQuantize(observer=fq.MinMaxObserver)


@given(seed=st.integers(0, 2**31 - 1), per_channel=st.booleans(), grad_scaling=st.booleans())
def test_learnable_matches_torch_when_learning(seed, per_channel, grad_scaling):
    g = torch.Generator().manual_seed(seed)
    kw = dict(quant_min=0, quant_max=15, use_grad_scaling=grad_scaling)
    if per_channel:
        kw.update(channel_len=3, observer=tq.MovingAveragePerChannelMinMaxObserver, ch_axis=1)
    theirs = _LearnableFakeQuantize(**{"observer": tq.MovingAverageMinMaxObserver, **kw})
    kw["observer"] = fq.MovingAveragePerChannelMinMaxObserver if per_channel else fq.MovingAverageMinMaxObserver
    ours = fq.LearnableFakeQuantize(**kw)
    scale = torch.rand(3 if per_channel else 1, generator=g) * 0.2 + 0.05
    zp = torch.randint(0, 16, scale.shape, generator=g).float()
    for m in (ours, theirs):
        m.scale.data.copy_(scale)
        m.zero_point.data.copy_(zp)
        m.enable_param_learning()
    x = torch.randn(4, 3, 5, generator=g).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    y, y2 = ours(x), theirs(x2)
    torch.testing.assert_close(y, y2, rtol=0, atol=0)
    y.sum().backward(), y2.sum().backward()
    for a, b in ((x.grad, x2.grad), (ours.scale.grad, theirs.scale.grad), (ours.zero_point.grad,
                                                                          theirs.zero_point.grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # summation order of the reductions


def test_learnable_per_channel_takes_channels_from_the_first_batch():
    m = fq.get_lsq_qat_qconfig().weight()
    param = m.scale
    x = torch.randn(6, 2, 3)
    x[:, 0, 0], x[:, 1, 0] = -2.0, 2.0  # both signs in every channel: the observer's qparams apply as they are
    m(x)
    assert m.scale is param and m.scale.shape == (6,)
    scale, zp = m.calculate_qparams()
    want, _ = m.activation_post_process.calculate_qparams()
    assert torch.equal(scale, want) and zp.dtype == torch.int32 and zp.abs().sum() == 0
    assert not m.scale.requires_grad  # the observer sets it: not learned
    m.disable_observer()
    assert m.static_enabled.item() == 0 and m.observer_enabled.item() == 0
    assert m.scale.requires_grad and m.learning_enabled.item() == 1


def test_switch_functions_apply_to_fakequant_modules_only():
    model = torch.nn.Sequential(fq.default_fused_act_fake_quant(), fq.default_fake_quant(), torch.nn.ReLU())
    model.apply(fq.disable_observer)
    model.apply(fq.disable_fake_quant)
    assert all(m.observer_enabled.item() == 0 and m.fake_quant_enabled.item() == 0 for m in model[:2])
    model.apply(fq.enable_observer)
    model.apply(fq.enable_fake_quant)
    assert all(m.observer_enabled.item() == 1 and m.fake_quant_enabled.item() == 1 for m in model[:2])


@pytest.mark.parametrize("backend", ["fbgemm", "x86", "qnnpack", "onednn"])
@pytest.mark.parametrize("version", [0, 1])
def test_default_qat_qconfig_matches_torch(backend, version):
    ours, theirs = fq.get_default_qat_qconfig(backend, version), tq.get_default_qat_qconfig(backend, version)
    for ctor, torch_ctor in ((ours.activation, theirs.activation), (ours.weight, theirs.weight)):
        a, b = ctor(), torch_ctor()
        assert type(a).__name__ == type(b).__name__
        assert (a.quant_min, a.quant_max, a.dtype, a.qscheme, a.ch_axis) == (b.quant_min, b.quant_max, b.dtype,
                                                                             b.qscheme, b.ch_axis)
        assert type(a.activation_post_process).__name__ == type(b.activation_post_process).__name__


def test_qconfig_errors_and_variants():
    with pytest.raises(ValueError, match="backend must be one of"):
        fq.get_default_qat_qconfig("tensorrt")
    with pytest.raises(TypeError, match="constructor"):
        fq.QConfig(activation=fq.default_fake_quant(), weight=None)
    with pytest.raises(ValueError, match="weight_bits"):
        fq.get_qat_qconfig_nbits(4, 1)
    assert fq.get_weight_only_qat_qconfig().activation is None
    assert fq.get_activation_only_qat_qconfig("qnnpack").weight is None
    four = fq.get_qat_qconfig_nbits(4, 4)
    a, w = four.activation(), four.weight()
    assert (a.quant_min, a.quant_max, w.quant_min, w.quant_max, w.qscheme) == (0, 15, -8, 7,
                                                                               torch.per_channel_symmetric)
    assert w.activation_post_process.averaging_constant == 1.0  # each step's weight range
    assert a.activation_post_process.averaging_constant == 0.01


def test_torch_qconfig_is_translated_class_by_class():
    qc = fq.to_fakequant_qconfig(tq.get_default_qat_qconfig("fbgemm"))
    act, weight = qc.activation(), qc.weight()
    assert isinstance(act, fq.FusedMovingAvgObsFakeQuantize) and act.quant_max == 127
    assert isinstance(weight.activation_post_process, fq.MovingAveragePerChannelMinMaxObserver)
    with pytest.raises(ValueError, match="HistogramObserver"):
        fq.to_fakequant_qconfig(tq.QConfig(activation=tq.HistogramObserver, weight=tq.default_weight_observer))


def test_learnable_symmetric_covers_one_signed_channels():
    m = fq.get_qat_qconfig_nbits(4, 4, lsq=True).weight()
    w = torch.randn(3, 8)
    w[1] = -w[1].abs()  # all negative: the fused rule alone would move this channel's zero point to 7
    y = m(w)
    assert m.zero_point.abs().sum().item() == 0
    assert bool(((y - w).abs() <= m.scale[:, None] / 2 + 1e-6).all())
