"""The Scheme contract, checked for every registered scheme in both roles."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quantizer_helpers import distinct_per_channel, make, relative_mse, sample

from hwqnn.errors import SchemeError
from hwqnn.quantizers import COMPUTE_KINDS, HardwareFacts, get_scheme, list_schemes

BITS = (1, 2, 3, 4, 8, 16)


# four scalars per example: hypothesis's "data too large" check has fired on them, spuriously, with its oldest
# supported version
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(bits=st.sampled_from(BITS), seed=st.integers(0, 2**16), log_scale=st.floats(-20, 20),
       signed=st.booleans())
def test_outputs_lie_on_at_most_levels_values(name, role, bits, seed, log_scale, signed):
    x = sample(role, signed=signed, seed=seed, scale=10.0**log_scale)
    scheme = make(name, role, x)
    y = scheme.quantize(x, bits)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    assert distinct_per_channel(y, role == "weight") <= scheme.levels(bits)


@pytest.mark.parametrize("bits", [1.0, 4.0, 9.0, 16.0])
def test_continuous_path_equals_integer_path_at_integer_bits(name, role, bits):
    x = sample(role)
    scheme = make(name, role, x)
    assert torch.equal(scheme(x, torch.tensor(bits)), scheme.quantize(x, int(bits)))
    assert torch.equal(scheme(x, int(bits)), scheme.quantize(x, int(bits)))


def test_continuous_path_interpolates_neighbours(name, role):
    x = sample(role)
    scheme = make(name, role, x)
    low, high = scheme.quantize(x, 3), scheme.quantize(x, 4)
    expected = high if scheme.fixed_bits is not None else torch.lerp(low, high, 0.25)
    torch.testing.assert_close(scheme(x, 3.25), expected)


@pytest.mark.parametrize("signed", [True, False])
def test_gradients_reach_input_and_bitwidth(name, role, signed):
    x = sample(role, signed=signed).requires_grad_(True)
    scheme = make(name, role, x)
    bits = torch.tensor(3.4, requires_grad=True)
    out = scheme(x, bits)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert torch.isfinite(bits.grad)
    if scheme.fixed_bits is None:
        assert bits.grad != 0, "a bit-dependent scheme must pass a gradient to b~"
    else:
        assert bits.grad == 0


def test_gradients_reach_learned_parameters(name, role):
    x = sample(role).requires_grad_(True)
    scheme = make(name, role, x)
    (scheme(x, torch.tensor(4.5)) - 0.5).square().sum().backward()
    for param_name, param in scheme.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("signed", [True, False])
def test_fresh_scheme_is_not_garbage(name, role, signed):
    """Lazy initialisation from the first batch: 8 bits is accurate for bit-dependent schemes
    (signed weights; signed and post-ReLU activations)."""
    if role == "weight" and not signed:
        pytest.skip("weights are quantized on a signed grid")
    x = sample(role, signed=signed, shape=(16, 32, 3, 3))
    scheme = make(name, role, x)
    error = relative_mse(scheme.quantize(x, 8), x)
    limit = 0.4 if scheme.fixed_bits is not None else 0.05 if name in ("pot", "residual") else 1e-3
    assert error < limit


def test_hardware_facts(name):
    scheme = get_scheme(name)()
    for bits in range(1, 17):
        facts = scheme.hardware(bits)
        assert isinstance(facts, HardwareFacts) and facts.compute_kind in COMPUTE_KINDS
        assert facts.bits == (scheme.fixed_bits or bits)
        assert scheme.levels(bits) <= 2**facts.bits


@pytest.mark.parametrize(("name", "kind", "bits"), [
    ("binary", "binary", 1), ("ternary", "int", 2), ("uniform", "int", 5), ("ul2q", "int", 5),
    ("pot", "shift", 5), ("zoom", "int", 5), ("clip", "int", 5), ("residual", "binary", 5),
])
def test_hardware_facts_of_builtin_schemes(name, kind, bits):
    assert get_scheme(name)(role="activation").hardware(5) == HardwareFacts(kind, bits)


DEGENERATE = {
    "zeros": torch.zeros(4, 3, 2),
    "constant": torch.full((4, 3, 2), 0.37),
    "negative_constant": torch.full((4, 3, 2), -2.5),
    "single_element": torch.tensor([1.7]),
    "zero_dim": torch.tensor(-0.3),
    "huge": torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(1)) * 1e30,
    "huge_outlier": torch.tensor([[1e30, 0.5, -0.2], [0.1, -0.4, 0.3]]),
    "tiny": torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(2)) * 1e-30,
}


@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_degenerate_inputs_give_finite_outputs_and_gradients(name, role, case):
    x = DEGENERATE[case].clone().requires_grad_(True)
    scheme = make(name, role, x)
    bits = torch.tensor(3.3, requires_grad=True)
    out = scheme(x, bits)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all() and torch.isfinite(bits.grad)
    for integer_bits in (1, 2, 8, 16):
        assert torch.isfinite(scheme.quantize(x.detach(), integer_bits)).all()


@pytest.mark.parametrize("case", ["zeros", "constant", "negative_constant", "single_element", "zero_dim"])
def test_degenerate_inputs_are_represented(name, role, case):
    """Zeros stay exactly zero (a zero scale collapses the grid). A constant is reproduced: exactly on a
    signed grid (the step is floored at |mean| / Q), within 5% on an unsigned one (the step follows the
    rms, not the mean)."""
    x = DEGENERATE[case]
    y = make(name, role, x).quantize(x, 4)
    if case == "zeros":
        assert torch.equal(y, x)
        return
    exact = role == "weight" or bool(x.min() < 0)
    torch.testing.assert_close(y, x, rtol=1e-5 if exact else 0.05, atol=0)


def test_empty_tensor_passes_through(name, role):
    x = torch.empty(0, 3)
    scheme = make(name, role)
    assert scheme.quantize(x, 4).shape == (0, 3)
    assert scheme(x, torch.tensor(4.5)).shape == (0, 3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_raises_on_cpu(name, role, bad):
    x = sample(role)
    x.view(-1)[3] = bad
    scheme = make(name, role, x)
    with pytest.raises(SchemeError, match=rf"scheme '{name}' got a tensor .* (NaN|infinite)"):
        scheme(x, torch.tensor(4.5))
    with pytest.raises(SchemeError, match="finite values"):
        scheme.quantize(x, 4)


def test_integer_input_raises(name):
    with pytest.raises(SchemeError, match="floating-point"):
        make(name, "weight").quantize(torch.arange(6), 4)


@pytest.mark.parametrize("bits", [0, 17, -3, 2.5, "8", True, None])
def test_bad_integer_bitwidth_raises(name, bits):
    with pytest.raises(SchemeError, match=rf"scheme '{name}' got bitwidth"):
        make(name, "weight").quantize(torch.randn(4, 4), bits)


@pytest.mark.parametrize("bits", [0, 17, "8", "abc", True, None, float("nan"), torch.tensor(float("nan")),
                                  torch.tensor([3.0, 4.0])])
def test_bad_forward_bitwidth_raises(name, bits):
    scheme = make(name, "weight")
    if scheme.fixed_bits is not None and torch.is_tensor(bits) and bits.numel() == 1:
        pytest.skip("a fixed-bit scheme ignores a tensor bitwidth's value (its gradient is 0)")
    with pytest.raises(SchemeError, match="bitwidth"):
        scheme(torch.randn(4, 4), bits)


def test_dtype_is_preserved(name, role):
    x = sample(role).double()
    scheme = make(name, role, x).double()
    y = scheme(x, torch.tensor(4.5))
    assert y.dtype == torch.float64 and torch.isfinite(y).all()
    assert relative_mse(scheme.quantize(x, 8), x) < 0.4


def test_non_contiguous_input(name, role):
    x = sample(role, shape=(6, 5, 4, 4)).transpose(1, 2)
    scheme = make(name, role, x)
    torch.testing.assert_close(scheme.quantize(x, 4), make(name, role, x).quantize(x.contiguous(), 4))


def test_every_registered_scheme_is_a_valid_module(name):
    cls = get_scheme(name)
    assert cls.name == name and name in list_schemes()
    assert cls.__doc__ and "radient" in cls.__doc__, "the docstring states the formula and the gradient"
    assert cls.fixed_bits is None or 1 <= cls.fixed_bits <= 16
    assert math.isfinite(cls(role="activation").levels(4))
