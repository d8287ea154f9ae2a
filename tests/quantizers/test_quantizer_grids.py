"""Grids: exact affine grids for export, idempotence, error against bits, signed and unsigned grids."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from quantizer_helpers import AFFINE_SCHEMES, distinct_per_channel, fake_quant, make, relative_mse, sample

from hwqnn.quantizers import AffineGrid

#: Q(Q(x)) == Q(x) with statistics recomputed from Q(x) (weights): the scale of a quantized tensor is
#: its own scale (binary: mean|a sign| = a; ternary: the non-zeros are all s; pot: max|Q| = s) or is
#: learned (uniform, clip). Not ul2q (std(Q(x)) != std(x)), zoom (the range shrinks to the nearest
#: levels) or residual (the greedy means of Q(x) differ from those of x).
IDEMPOTENT_WEIGHTS = {"binary", "ternary", "uniform", "pot", "clip"}
#: With frozen running statistics (activations in eval mode) the scale does not move, so ul2q and zoom
#: are idempotent too; residual is not (sign(sum a_i s_i) need not be s_1 when a_1 < a_2 + ... + a_b).
IDEMPOTENT_EVAL_ACTIVATIONS = IDEMPOTENT_WEIGHTS | {"ul2q", "zoom"}
#: Uniform-grid families whose error must not grow with bits.
ERROR_FALLS_WITH_BITS = {"uniform", "ul2q", "zoom", "clip", "residual"}


def calibrated(name: str, role: str, x: torch.Tensor):
    """A scheme that has seen ``x`` in training mode (initialised, running statistics filled)."""
    scheme = make(name, role, x)
    scheme(x, torch.tensor(4.5))
    return scheme


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8, 16])
@pytest.mark.parametrize("training", [True, False])
def test_affine_grid_reproduces_the_output(name, role, bits, signed, training):
    x = sample(role, signed=signed or role == "weight", seed=bits)
    scheme = calibrated(name, role, x)
    scheme.train(training)
    q = scheme.quantize(x, bits)  # initialises a learned step of a new bitwidth first
    state = {k: v.clone() for k, v in scheme.state_dict().items()}
    grid = scheme.affine_grid(x, bits)
    for key, value in scheme.state_dict().items():
        assert torch.equal(value.nan_to_num(), state[key].nan_to_num()), f"affine_grid changed {key}"
    if grid is None:
        assert name not in AFFINE_SCHEMES, f"{name} must give an exact integer grid"
        return
    assert isinstance(grid, AffineGrid)
    assert torch.equal(fake_quant(grid, q), q), "the grid must represent every output value exactly"
    if grid.exact_on_input:
        assert torch.equal(fake_quant(grid, x), q), "exact_on_input: Q/DQ on the raw tensor equals quantize"
    assert grid.qmin < grid.qmax and (grid.scale > 0).all()
    assert ((grid.zero_point >= grid.qmin) & (grid.zero_point <= grid.qmax)).all()
    assert grid.zero_point.dtype == torch.int32 and grid.scale.shape == grid.zero_point.shape
    if role == "weight":
        assert grid.axis == 0 and grid.scale.shape == (x.shape[0],)
    else:
        assert grid.axis is None and grid.scale.dim() == 0
    if name != "zoom":
        assert (grid.zero_point == 0).all(), "symmetric schemes have zero point 0"


@pytest.mark.parametrize(("name", "bits", "exact"), [
    ("uniform", 4, True), ("ul2q", 4, True), ("clip", 4, True), ("zoom", 1, True), ("zoom", 4, True),
    ("uniform", 1, False), ("binary", 1, False), ("ternary", 2, False), ("pot", 2, True), ("pot", 4, False),
])
def test_which_grids_are_exact_on_the_input(name, bits, exact):
    x = sample("weight")
    assert make(name, "weight", x).affine_grid(x, bits).exact_on_input is exact


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), bits=st.sampled_from([2, 3, 4, 6, 8]))
def test_idempotent_weights(name, seed, bits):
    x = sample("weight", seed=seed)
    scheme = make(name, "weight", x)
    once = scheme.quantize(x, bits)
    if name in IDEMPOTENT_WEIGHTS:
        # binary and ternary recompute their scale as a mean of equal values: equal up to rounding
        tolerance = 1e-6 if name in ("binary", "ternary") else 0.0
        torch.testing.assert_close(scheme.quantize(once, bits), once, rtol=tolerance, atol=0)


@pytest.mark.parametrize("signed", [True, False])
def test_idempotent_activations_in_eval_mode(name, signed):
    x = sample("activation", signed=signed)
    scheme = calibrated(name, "activation", x).eval()
    once = scheme.quantize(x, 4)
    if name in IDEMPOTENT_EVAL_ACTIVATIONS:
        assert torch.equal(scheme.quantize(once, 4), once)


@pytest.mark.parametrize("signed", [True, False])
def test_error_does_not_grow_with_bits(name, role, signed):
    if name not in ERROR_FALLS_WITH_BITS:
        pytest.skip(f"{name} is not a uniform family")
    if role == "weight" and not signed:
        pytest.skip("weights are quantized on a signed grid")
    x = sample(role, signed=signed, shape=(8, 16, 8, 8))
    scheme = make(name, role, x)
    errors = [relative_mse(scheme.quantize(x, bits), x) for bits in range(1, 17)]
    for bits, (coarse, fine) in enumerate(zip(errors, errors[1:]), start=1):
        assert fine <= coarse * 1.01 + 1e-12, f"error rose from {bits} to {bits + 1} bits: {errors}"
    if name == "residual":  # greedy mean|r| terms converge slowly (Gaussian: 1.3% at 8, 0.7% at 16 terms)
        assert errors[3] < 0.05 and errors[15] < 0.8 * errors[7]
    elif name != "clip":  # clip keeps the range of its first call, so its error plateaus at clipping
        assert errors[7] < 1e-3 and errors[15] < 1e-5


@pytest.mark.parametrize("name", ["uniform", "ul2q", "clip", "pot"])
def test_post_relu_activations_use_the_unsigned_grid(name):
    x = sample("activation", signed=False, shape=(8, 16, 8, 8))
    scheme = make(name, "activation", x)
    y = scheme.quantize(x, 2)
    assert (y >= 0).all() and torch.unique(y).numel() == 4, "all 2^b codes go to the non-negative side"
    signed_input = sample("activation", shape=(8, 16, 8, 8))
    assert (make(name, "activation").quantize(signed_input, 2) < 0).any()


def test_non_negative_binary_activations_keep_two_levels():
    x = sample("activation", signed=False, shape=(8, 16, 8, 8))
    y = make("binary", "activation").quantize(x, 1)
    assert set(torch.unique(y).tolist()) == {0.0, float(y.max())} and relative_mse(y, x) < 0.4


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_pot_levels_are_powers_of_two_of_the_scale(bits):
    x = sample("weight", shape=(2, 4096))
    y = make("pot", "weight", x).quantize(x, bits)
    for channel, source in zip(y, x):
        scale = source.abs().max()
        magnitudes = (channel.abs() / scale)[channel != 0]
        exponents = torch.log2(magnitudes)
        assert torch.equal(exponents, exponents.round()), "levels are s * 2^-k"
        assert exponents.min() >= -(2 ** (bits - 1) - 1) + 1 if bits > 1 else exponents.min() == 0


def test_residual_has_at_most_two_to_the_b_levels():
    x = sample("weight", shape=(2, 4096))
    for bits in range(1, 7):
        y = make("residual", "weight", x).quantize(x, bits)
        assert distinct_per_channel(y, per_channel=True) <= 2**bits
        if bits <= 4:  # Gaussian data reaches every sign pattern of the first terms
            assert distinct_per_channel(y, per_channel=True) == 2**bits


def test_ternary_follows_twn():
    x = sample("weight", shape=(1, 4096))
    y = make("ternary", "weight").quantize(x, 2)
    threshold = 0.7 * x.abs().mean()
    above = x.abs() > threshold
    torch.testing.assert_close(y.abs().max(), x.abs()[above].mean())
    assert torch.equal(y != 0, above)


def test_binary_follows_bwn_per_channel():
    x = sample("weight", shape=(3, 64))
    y = make("binary", "weight", x).quantize(x, 1)
    expected = x.abs().mean(dim=1, keepdim=True) * torch.where(x >= 0, 1.0, -1.0)
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_sync_free_sign_selection_matches_the_cpu_path(name, signed, training, monkeypatch):
    """Off the CPU the signed/unsigned choice is a 0-d tensor (no host sync); force that path here."""
    from hwqnn.quantizers.schemes._common import ObservedScheme

    x = sample("activation", signed=signed, seed=11).requires_grad_(True)
    outputs, grads = [], []
    for as_tensor in (False, True):
        scheme = make(name, "activation")
        if as_tensor and isinstance(scheme, ObservedScheme):
            monkeypatch.setattr(scheme, "unsigned",
                                lambda t, s=scheme: torch.as_tensor(ObservedScheme.unsigned(s, t)))
        scheme(sample("activation", signed=signed, seed=12), torch.tensor(3.5))  # initialise, fill statistics
        scheme.train(training)
        for bits in (1, 2, 4):
            out = scheme(x, torch.tensor(bits + 0.5))
            outputs.append(out.detach())
            grads.append(torch.autograd.grad(out.square().sum(), x)[0])
    half = len(outputs) // 2
    for cpu, accelerator in zip(outputs[:half] + grads[:half], outputs[half:] + grads[half:]):
        torch.testing.assert_close(accelerator, cpu, rtol=1e-6, atol=1e-7)
