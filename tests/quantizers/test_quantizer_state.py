"""State: per-channel scales, activation running statistics, lazy initialisation, state dicts."""

from __future__ import annotations

import pytest
import torch
from quantizer_helpers import distinct_per_channel, make, relative_mse, sample

from hwqnn.errors import SchemeError
from hwqnn.quantizers import create_scheme


def train_on(scheme, batches: int = 4, signed: bool = True):
    scheme.train()
    for step in range(batches):
        scheme(sample("activation", signed=signed, seed=100 + step) * (1 + 0.2 * step), torch.tensor(3.5))
    return scheme


@pytest.mark.parametrize("bits", [2, 4])
def test_per_channel_scales_are_independent(name, bits):
    x = sample("weight", shape=(4, 64))
    loud = x.clone()
    loud[0] *= 1000.0
    quiet_output = make(name, "weight", x).quantize(x, bits)
    loud_output = make(name, "weight", loud).quantize(loud, bits)
    assert torch.equal(loud_output[1:], quiet_output[1:]), "one channel's range must not move the others"
    scheme = make(name, "weight", loud)
    assert distinct_per_channel(scheme.quantize(loud, bits), per_channel=True) <= scheme.levels(bits)


def test_per_tensor_weights_share_one_scale(name):
    x = sample("weight", shape=(4, 64))
    x[0] *= 1000.0
    scheme = create_scheme(name, role="weight")
    assert distinct_per_channel(scheme.quantize(x, 3), per_channel=False) <= scheme.levels(3)


def test_channel_axis_other_than_zero(name):
    x = sample("weight", shape=(5, 3, 7))
    scheme = create_scheme(name, role="weight", channels=3, channel_axis=1)
    reference = create_scheme(name, role="weight", channels=3)
    moved = x.transpose(0, 1).contiguous()
    torch.testing.assert_close(scheme.quantize(x, 3), reference.quantize(moved, 3).transpose(0, 1))


def test_wrong_channel_count_and_activation_channels_raise(name):
    with pytest.raises(SchemeError, match="built for 8 channels"):
        create_scheme(name, role="weight", channels=8).quantize(torch.randn(4, 3), 4)
    with pytest.raises(SchemeError, match="per tensor"):
        create_scheme(name, role="activation", channels=8)
    with pytest.raises(SchemeError, match="role must be one of"):
        create_scheme(name, role="bias")


@pytest.mark.parametrize("signed", [True, False])
def test_eval_mode_does_not_depend_on_the_batch(name, signed):
    scheme = train_on(create_scheme(name, role="activation"), signed=signed).eval()
    x = sample("activation", signed=signed, seed=7)
    for bits in (torch.tensor(3.5), 3, 4):
        full = scheme(x, bits)
        assert torch.equal(full[:2], scheme(x[:2], bits)), "a sample's output must not depend on the others"
        assert torch.equal(full[2:], scheme(x[2:] * 1.0, bits))
    assert torch.equal(scheme(x, 3), scheme(x, 3))


def test_eval_mode_freezes_the_running_statistics(name):
    scheme = train_on(create_scheme(name, role="activation")).eval()
    before = {k: v.clone() for k, v in scheme.state_dict().items()}
    scheme(sample("activation", seed=9) * 50.0, torch.tensor(3.5))
    after = scheme.state_dict()
    running = [k for k in before if k.startswith("running_")]
    assert running, "activation schemes keep running statistics"
    for key in running:
        assert torch.equal(before[key].nan_to_num(), after[key].nan_to_num()), key


def test_training_mode_updates_the_running_statistics_by_ema(name):
    scheme = create_scheme(name, role="activation").train()
    x = sample("activation", seed=1)
    scheme(x, torch.tensor(3.5))
    first = {k: v.clone() for k, v in scheme.state_dict().items() if k.startswith("running_")}
    scheme(x * 3.0, torch.tensor(3.5))
    changed = [k for k, v in first.items() if torch.isfinite(v) and not torch.equal(v, scheme.state_dict()[k])]
    assert changed, "a training batch with a new range must move the running statistics"
    for key in changed:
        new = scheme.state_dict()[key]
        assert torch.isfinite(new) and new != 0


def test_continuous_forward_observes_each_statistic_once(name):
    """b~ = 3.5 quantizes at 3 and 4 bits; the EMA must move as for a single integer-bit call."""
    twice, once = create_scheme(name, role="activation"), create_scheme(name, role="activation")
    for scheme, bits in ((twice, torch.tensor(3.5)), (once, 4)):
        scheme.train()
        scheme(sample("activation", seed=3), bits)
        scheme(sample("activation", seed=4) * 2.0, bits)
    shared = [k for k in once.state_dict() if k.startswith("running_") and k not in ("running_term4",)]
    for key in shared:
        torch.testing.assert_close(twice.state_dict()[key], once.state_dict()[key], equal_nan=True)


def test_first_eval_batch_fills_empty_running_statistics(name):
    scheme = create_scheme(name, role="activation").eval()
    x = sample("activation", seed=5)
    first = scheme(x, 4)
    assert torch.isfinite(first).all()
    assert torch.equal(scheme(x[:1], 4), first[:1]), "after the first batch, eval mode is frozen"


@pytest.mark.parametrize("role_name", ["weight", "activation"])
def test_state_dict_round_trip(name, role_name):
    x = sample(role_name)
    scheme = make(name, role_name, x)
    if role_name == "activation":
        train_on(scheme)
    else:
        scheme(x, torch.tensor(3.5))
    scheme.eval()
    copy = make(name, role_name, x)
    copy.load_state_dict(scheme.state_dict())
    copy.eval()
    for bits in (3, 4):
        assert torch.equal(copy.quantize(x, bits), scheme.quantize(x, bits))


@pytest.mark.parametrize("name", ["uniform", "clip"])
def test_learned_parameters_initialise_from_the_first_batch_only(name):
    x = sample("weight", shape=(4, 256))
    scheme = make(name, "weight", x)
    first = scheme.quantize(x, 4)
    assert relative_mse(first, x) < 0.02
    params = {k: v.clone() for k, v in scheme.named_parameters()}
    scheme.quantize(x * 100.0, 4)
    for key, value in scheme.named_parameters():
        assert torch.equal(value, params[key]), "a second batch must not re-initialise a learned parameter"


def test_uniform_keeps_one_learned_step_per_bitwidth():
    x = sample("weight", shape=(4, 256))
    scheme = make("uniform", "weight", x)
    scheme(x, torch.tensor(3.5))
    assert scheme.step_initialized.tolist() == [b in (3, 4) for b in range(1, 17)]
    assert (scheme.step[2] > scheme.step[3]).all(), "a coarser grid has a larger step"


@pytest.mark.parametrize("name", ["uniform", "clip"])
def test_all_zero_first_batch_defers_initialisation(name):
    scheme = create_scheme(name, role="activation")
    zeros = torch.zeros(4, 8)
    assert torch.equal(scheme.quantize(zeros, 4), zeros)
    x = sample("activation", seed=2)
    assert relative_mse(scheme.quantize(x, 4), x) < 0.02


@pytest.mark.parametrize(("name", "factor"), [("uniform", 3.0), ("uniform", 0.3), ("clip", 0.3)])
def test_learned_parameters_learn(name, factor):
    """A few Adam steps on the reconstruction error lower it: the parameter gradients are useful.
    (PACT's gradient only widens a clipped range; a too-wide one shrinks through weight decay.)"""
    x = sample("weight", shape=(4, 256)) * torch.tensor([1.0, 2.0, 0.5, 4.0]).reshape(4, 1)
    scheme = make(name, "weight", x)
    scheme.quantize(x, 3)
    with torch.no_grad():  # start from a deliberately poor range
        for param in scheme.parameters():
            param.mul_(factor)
    optimizer = torch.optim.Adam(scheme.parameters(), lr=0.05)
    start = relative_mse(scheme.quantize(x, 3), x)
    for _ in range(60):
        optimizer.zero_grad()
        (scheme.quantize(x, 3) - x).square().sum().backward()
        optimizer.step()
    assert relative_mse(scheme.quantize(x, 3), x) < 0.5 * start
