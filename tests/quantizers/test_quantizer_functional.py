"""The stateless primitives: straight-through functions, LSQ/PACT gradients, power-of-two codes, the
ul2q step table."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwqnn.errors import SchemeError
from hwqnn.quantizers import functional as F
from hwqnn.quantizers import gaussian_steps as G


def test_round_ste_and_grad_scale():
    x = torch.tensor([0.4, 1.6, -2.5], requires_grad=True)
    y = F.RoundSTE.apply(x)
    assert y.tolist() == [0.0, 2.0, -2.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    step = torch.tensor(0.3, requires_grad=True)
    scaled = F.GradScale.apply(step, 0.25)
    assert torch.equal(scaled, step)
    (scaled * 2).backward()
    assert step.grad == 0.5


def lsq_reference(x: torch.Tensor, step: torch.Tensor, lo: float, hi: float, pact: bool) -> torch.Tensor:
    """LSQ written with autograd (clamp, then rounding with an identity gradient); PACT detaches the
    step inside the rounding and takes its gradient from the clamp at +-(Q * step) only."""
    if not pact:
        return F.RoundSTE.apply(torch.clamp(x / step, lo, hi)) * step
    frozen = step.detach()
    rounded = F.RoundSTE.apply(torch.clamp(x / frozen, lo, hi)) * frozen
    clip_gradient = torch.clamp(x, lo * step, hi * step) - torch.clamp(x, lo * frozen, hi * frozen)  # value 0
    return rounded + clip_gradient


@pytest.mark.parametrize("pact", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
def test_scaled_codes_gradient_matches_an_autograd_reference(pact, per_channel):
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 50, generator=generator) * 2).requires_grad_(True)
    step = (torch.tensor([[0.3], [0.5], [0.2]]) if per_channel else torch.tensor(0.4)).requires_grad_(True)
    weights = torch.randn(3, 50, generator=generator)
    (F.uniform_fake_quant(x, step, 4, False, inside_scale_grad=not pact) * weights).sum().backward()
    grads = x.grad.clone(), step.grad.clone()
    x.grad = step.grad = None
    (lsq_reference(x, step, -7.0, 7.0, pact) * weights).sum().backward()
    torch.testing.assert_close(grads[0], x.grad)
    torch.testing.assert_close(grads[1], step.grad)


@pytest.mark.parametrize("centred", [False, True], ids=["plain", "centred"])
@pytest.mark.parametrize("dims", [None, (1,)], ids=["per-tensor", "per-channel"])
def test_residual_binarize_gradient_matches_an_autograd_reference(dims, centred):
    """The recomputing backward must give the gradient of the plain formula (scales through their means),
    also through an offset that depends on the input (the centring of non-negative activations)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 40, generator=generator).requires_grad_(True)
    weights = torch.randn(3, 40, generator=generator)

    def reference(v):
        out, residual, total = torch.zeros_like(v), v, 0.0
        for _ in range(3):
            scale = F.abs_mean(residual, dims)
            term = scale * F.sign_codes(residual.detach())
            out, residual, total = out + term, residual - term, total + scale.detach()
        return out + (v - v.detach()) * (v.detach().abs() <= total)

    def offset_of(v):
        return v.relu().mean() if centred else None

    offset = offset_of(x)
    (F.residual_binarize(x, 3, lambda i, r: F.abs_mean(r, dims), dims=dims, offset=offset) * weights).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    offset = offset_of(x)
    expected = reference(x) if offset is None else offset + reference(x - offset)
    (expected * weights).sum().backward()
    torch.testing.assert_close(grad, x.grad)


@pytest.mark.parametrize("dims", [None, (1, 2)], ids=["per-tensor", "per-channel"])
def test_statistics_gradients_in_closed_form_match_finite_differences(dims):
    x = torch.randn(3, 4, 5, dtype=torch.double, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: F.std_and_mean(v, dims), (x,))
    assert torch.autograd.gradcheck(lambda v: F.positive_rms(v, dims), (x,))


def test_scaled_codes_gradient_is_finite_for_a_tiny_scale():
    x = torch.tensor([1e30, -3.0, 0.0], requires_grad=True)
    step = torch.tensor(F.tiny(torch.float32), requires_grad=True)
    y = F.uniform_fake_quant(x, step, 4, False)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all() and torch.isfinite(step.grad)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(-1.0, 1.0, allow_nan=False, width=32), min_size=1, max_size=50),
       bits=st.integers(1, 9), unsigned=st.booleans())
def test_pot_codes_are_the_nearest_level(values, bits, unsigned):
    u = torch.tensor(values)
    codes = F.pot_codes(u, bits, unsigned)
    if bits == 1 and not unsigned:
        levels = torch.tensor([-1.0, 1.0])
    else:
        n = int(F.pot_exponent_count(bits, unsigned))
        magnitudes = torch.cat([torch.zeros(1), torch.exp2(-torch.arange(n, dtype=torch.float32))])
        levels = magnitudes if unsigned else torch.cat([-magnitudes, magnitudes])
    target = u.clamp(min=0) if unsigned else u
    distance = (target[:, None] - levels[None, :]).abs()
    assert torch.isin(codes, levels).all()
    chosen = (target - codes).abs()
    assert (chosen <= distance.min(dim=1).values + 1e-7).all(), "a code is a nearest level"


def test_floor_power_of_two_is_exact():
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        v = torch.tensor([1.0, 1.5, 0.75, 3.9, 1e-3, 0.0], dtype=dtype)
        expected = torch.where(v > 0, torch.exp2(torch.floor(torch.log2(v.double()))), 0.0).to(dtype)
        assert torch.equal(F.floor_power_of_two(v), expected), dtype


def test_statistics_do_not_overflow():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 1e30
    std, mean = F.std_and_mean(x, None)
    torch.testing.assert_close(std, x.double().std(correction=0).float(), rtol=1e-4, atol=0)
    torch.testing.assert_close(mean, x.double().mean().float(), rtol=1e-3, atol=1e26)
    rms = F.positive_rms(x, None)
    torch.testing.assert_close(rms, x.double().relu()[x > 0].square().mean().sqrt().float(), rtol=1e-4, atol=0)


# --- the ul2q step table -------------------------------------------------------------------------------
def test_one_bit_step_is_the_mean_absolute_value():
    assert G.gaussian_l2_step(1) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-12)


@pytest.mark.parametrize("bits", range(1, 16))
def test_unsigned_step_equals_the_next_signed_one(bits):
    """The half-normal on {0..2^b - 1} has the same cells as N(0, 1) on +-(2^b - 1): c_b+ = c_(b+1).

    An identity, so the tolerance is the root finder's (1e-9 relative), not the optimiser's: the old
    minimiser of the error itself failed this at 15 bits (1.1e-4) under a newer scipy.
    """
    assert G.gaussian_l2_step(bits, True) == pytest.approx(G.gaussian_l2_step(bits + 1), rel=1e-9)


@pytest.mark.parametrize("unsigned", [False, True])
@pytest.mark.parametrize("bits", [1, 4, 8])  # at 15 bits the error itself is too flat to difference
def test_error_slope_is_the_derivative_of_the_error(bits, unsigned):
    step = G.gaussian_l2_step(bits, unsigned) * 1.3
    h = step * 1e-4
    numeric = (G.gaussian_sq_error(step + h, bits, unsigned) - G.gaussian_sq_error(step - h, bits, unsigned)) / (2 * h)
    # d error / d step = 2 * (2 if unsigned else 1) * slope
    assert numeric == pytest.approx(2 * (2 if unsigned else 1) * G.gaussian_sq_error_slope(step, bits, unsigned),
                                    rel=1e-3)


@pytest.mark.parametrize("unsigned", [False, True])
def test_steps_are_local_minima_and_shrink_with_bits(unsigned):
    steps = [G.gaussian_l2_step(bits, unsigned) for bits in range(1, 17)]
    for bits, step in enumerate(steps, start=1):
        best = G.gaussian_sq_error(step, bits, unsigned)
        for factor in (0.98, 1.02):
            assert G.gaussian_sq_error(step * factor, bits, unsigned) > best
    finer = steps if unsigned else steps[1:]  # the signed 1-bit grid is the sign (+-c), not 0 and +-c
    assert all(a > b for a, b in zip(finer, finer[1:]))


@pytest.mark.parametrize(("bits", "unsigned"), [(1, False), (2, False), (3, False), (4, False), (2, True)])
def test_closed_form_error_matches_sampling_the_torch_quantizer(bits, unsigned):
    """The table minimises the error of the very grid the schemes use: checked by Monte Carlo."""
    generator = torch.Generator().manual_seed(bits)
    x = torch.randn(400_000, generator=generator, dtype=torch.float64)
    x = x.abs() if unsigned else x
    step = G.gaussian_l2_step(bits, unsigned)
    q = F.grid_codes(x / step, bits, unsigned) * step
    sampled = float((q - x).square().mean())
    assert sampled == pytest.approx(G.gaussian_sq_error(step, bits, unsigned), rel=0.02)


def test_step_beats_a_brute_force_search():
    for bits in (2, 3, 5):
        grid = np.exp(np.linspace(np.log(0.01), np.log(3.0), 3001))
        errors = [G.gaussian_sq_error(float(s), bits) for s in grid]
        assert G.gaussian_sq_error(G.gaussian_l2_step(bits), bits) <= min(errors) + 1e-12


def test_affine_fake_quant_matches_its_formula_and_needs_an_integer_zero_point():
    generator = torch.Generator().manual_seed(0)
    w = torch.randn(4, 50, generator=generator) * 2
    scale = torch.tensor([[0.1], [0.2], [0.3], [0.05]])
    zero_point = torch.tensor([[3.0], [0.0], [7.0], [15.0]])
    expected = (torch.clamp(torch.round(w / scale) + zero_point, 0, 15) - zero_point) * scale
    assert torch.equal(F.affine_fake_quant(w, scale, zero_point, 0, 15), expected)
    with pytest.raises(SchemeError, match="integer zero point"):
        F.affine_fake_quant(w, torch.tensor(0.1), torch.tensor(0.3), 0, 15)
