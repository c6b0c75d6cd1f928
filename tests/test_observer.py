"""Observers: quantized ranges, the fused kernel's qparams rule, moving averages, edge cases, state_dict."""
import warnings

import pytest
import torch
import torch.ao.quantization as tq
from hypothesis import given
from hypothesis import strategies as st

import fakequant.quantization as fq
from fakequant.quantization import _ops


def torch_fused_qparams(min_val, max_val, qmin, qmax, symmetric):
    """What torch's fused op writes into scale / zero_point for these running min / max (the oracle)."""
    n = min_val.numel()
    scale, zp = torch.ones(n), torch.zeros(n, dtype=torch.int32)
    off, on = torch.zeros(1, dtype=torch.long), torch.ones(1, dtype=torch.long)
    torch.fused_moving_avg_obs_fake_quant(torch.zeros(n, 1), off, on, min_val.reshape(-1).clone(),
                                          max_val.reshape(-1).clone(), scale, zp, 1.0, qmin, qmax, 0, True, symmetric)
    return scale, zp


@pytest.mark.parametrize("dtype,reduce_range,custom,expected", [
    (torch.quint8, False, None, (0, 255)), (torch.quint8, True, None, (0, 127)),
    (torch.qint8, False, None, (-128, 127)), (torch.qint8, True, None, (-64, 63)),
    (torch.qint32, False, None, (-(2**31), 2**31 - 1)), (torch.quint8, False, (0, 15), (0, 15)),
    (torch.qint8, False, (-8, 7), (-8, 7)), (torch.quint8, True, (0, 255), (0, 127)),
])
def test_quant_range_matches_torch_observers(dtype, reduce_range, custom, expected):
    kwargs = dict(dtype=dtype, reduce_range=reduce_range)
    if custom:
        kwargs.update(quant_min=custom[0], quant_max=custom[1])
    ours = fq.MinMaxObserver(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = tq.MinMaxObserver(**kwargs)
    assert (ours.quant_min, ours.quant_max) == expected == (theirs.quant_min, theirs.quant_max)


@pytest.mark.parametrize("kwargs,error", [
    (dict(dtype=torch.float32), TypeError),
    (dict(quant_min=1, quant_max=10), ValueError),
    (dict(quant_min=0, quant_max=0), ValueError),
    (dict(quant_min=0, quant_max=300), ValueError),
    (dict(quant_min=0), ValueError),
    (dict(qscheme=torch.per_channel_affine), ValueError),
    (dict(is_dynamic=True), NotImplementedError),
])
def test_bad_arguments_name_the_problem(kwargs, error):
    with pytest.raises(error):
        fq.MinMaxObserver(**kwargs)
    with pytest.raises(ValueError, match="qscheme"):
        fq.PerChannelMinMaxObserver(qscheme=torch.per_tensor_affine)


_CASES = [(fq.MinMaxObserver, dict(dtype=torch.quint8)),
          (fq.MinMaxObserver, dict(dtype=torch.quint8, reduce_range=True)),
          (fq.MovingAverageMinMaxObserver, dict(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)),
          (fq.MovingAverageMinMaxObserver, dict(dtype=torch.quint8, quant_min=0, quant_max=15)),
          (fq.PerChannelMinMaxObserver, dict(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)),
          (fq.PerChannelMinMaxObserver, dict(dtype=torch.quint8, ch_axis=1)),
          (fq.MovingAveragePerChannelMinMaxObserver,
           dict(dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-8, quant_max=7))]


@pytest.mark.parametrize("cls,kwargs", _CASES)
@given(seed=st.integers(0, 2**31 - 1), offset=st.sampled_from([0.0, 2.0, -3.0, 1e-6]),
       magnitude=st.sampled_from([1e-7, 1e-3, 1.0, 50.0]))
def test_qparams_are_the_fused_kernels(cls, kwargs, seed, offset, magnitude):
    g = torch.Generator().manual_seed(seed)
    obs = cls(**kwargs)
    for _ in range(3):
        obs(torch.randn(4, 3, 5, generator=g) * magnitude + offset)
    scale, zp = obs.calculate_qparams()
    want_scale, want_zp = torch_fused_qparams(obs.min_val, obs.max_val, obs.quant_min, obs.quant_max, obs.symmetric)
    assert torch.equal(scale, want_scale) and torch.equal(zp, want_zp)
    assert scale.dtype == torch.float32 and zp.dtype == torch.int32
    assert bool((scale > 0).all()) and bool(((zp >= obs.quant_min) & (zp <= obs.quant_max)).all())


@pytest.mark.parametrize("per_channel", [False, True])
@given(seed=st.integers(0, 2**31 - 1))
def test_moving_average_follows_the_fused_op(per_channel, seed):
    g = torch.Generator().manual_seed(seed)
    if per_channel:
        obs = fq.MovingAveragePerChannelMinMaxObserver(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
        run_min, run_max = torch.tensor([]), torch.tensor([])
    else:
        obs = fq.MovingAverageMinMaxObserver()
        run_min, run_max = torch.tensor(float("inf")), torch.tensor(float("-inf"))
    scale, zp = torch.ones(1), torch.zeros(1, dtype=torch.int32)
    on = torch.ones(1, dtype=torch.long)
    for _ in range(4):
        x = torch.randn(6, 10, generator=g) * 3 + torch.rand(1, generator=g)
        obs(x)
        torch.fused_moving_avg_obs_fake_quant(x, on, on, run_min, run_max, scale, zp, 0.01, obs.quant_min,
                                              obs.quant_max, 0, per_channel, obs.symmetric)
    torch.testing.assert_close(obs.min_val, run_min, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(obs.max_val, run_max, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cls", [fq.MinMaxObserver, fq.MovingAverageMinMaxObserver, fq.PerChannelMinMaxObserver,
                                 fq.MovingAveragePerChannelMinMaxObserver])
def test_unobserved_warns_and_returns_defaults(cls):
    with pytest.warns(UserWarning, match="not observed any data"):
        scale, zp = cls().calculate_qparams()
    assert scale.tolist() == [1.0] and zp.tolist() == [0]


@pytest.mark.parametrize("value", [0.0, 3.0, -2.0, 1e-30])
@pytest.mark.parametrize("symmetric", [False, True])
def test_constant_input_gives_a_valid_scale(value, symmetric):
    qscheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    obs = fq.MinMaxObserver(dtype=torch.qint8, qscheme=qscheme)
    obs(torch.full((5,), value))
    scale, zp = obs.calculate_qparams()
    assert torch.isfinite(scale).all() and bool((scale > 0).all())
    y = fq.FakeQuantize(observer=fq.MinMaxObserver, dtype=torch.qint8, qscheme=qscheme)(torch.full((5,), value))
    assert torch.isfinite(y).all()


def test_per_channel_axis_and_reduction():
    x = torch.arange(24.0).reshape(2, 3, 4) - 10
    obs = fq.PerChannelMinMaxObserver(ch_axis=1)
    obs(x)
    assert obs.min_val.tolist() == x.amin((0, 2)).tolist() and obs.max_val.tolist() == x.amax((0, 2)).tolist()
    with pytest.raises(ValueError, match="ch_axis"):
        fq.PerChannelMinMaxObserver(ch_axis=3)(x)


def test_eps_above_the_kernel_floor_floors_the_scale():
    obs = fq.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, eps=2**-12)
    obs(torch.tensor([-1e-3, 1e-3]))
    scale, zp = obs.calculate_qparams()
    assert scale.item() >= 2**-12 and zp.item() == 0
    small = fq.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    small(torch.tensor([-1e-3, 1e-3]))
    assert small.calculate_qparams()[0].item() < 2**-12


def test_state_dict_layout_matches_torch_and_per_channel_resizes_on_load():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = tq.MovingAveragePerChannelMinMaxObserver()
    ours = fq.MovingAveragePerChannelMinMaxObserver()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs(torch.randn(5, 7))
    ours.load_state_dict(theirs.state_dict())
    assert torch.equal(ours.min_val, theirs.min_val) and torch.equal(ours.max_val, theirs.max_val)
    assert list(fq.MinMaxObserver().state_dict()) == list(tq.MinMaxObserver().state_dict())


def test_reset_and_empty_input():
    obs = fq.MinMaxObserver()
    x = torch.randn(3)
    assert obs(torch.empty(0)).numel() == 0
    assert obs(x) is x
    obs.reset_min_max_vals()
    assert obs.min_val.item() == float("inf") and obs.max_val.item() == float("-inf")


def test_ops_choose_qparams_is_the_one_rule():
    mn, mx = torch.tensor([-1.0, 0.5, 0.0]), torch.tensor([2.0, 4.0, 0.0])
    s, z = _ops.choose_qparams(mn, mx, 0, 255, False)
    ws, wz = torch_fused_qparams(mn, mx, 0, 255, False)
    assert torch.equal(s, ws) and torch.equal(z, wz)
