"""Properties every registered scheme keeps: what zero maps to, and the output dtype.

What zero maps to, per grid:

- An all-zero tensor (or channel) has zero statistics, so every grid collapses to {0}: the output is
  exactly 0 for every scheme and bitwidth, including the grids without a zero level (binary, the 1-bit
  sign grid of uniform/ul2q/pot/clip, residual), and including a learned step that has only seen zeros.
- A zero inside a non-zero channel maps to a level nearest zero: exactly 0 on grids that have a zero
  level (ternary, zoom, uniform/ul2q/pot/clip at b >= 2, unsigned activation grids); +a on the sign
  grid {-a, +a} (a tie, broken by sign(0) = +1). Residual is the exception: its levels
  +-a_1 +- ... +- a_b have no zero, and the greedy binarization (ResQ's definition, kept for every value
  alike) does not always pick the level nearest zero for it.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from quantizer_helpers import make

from hwqnn.quantizers import create_scheme, list_schemes
from hwqnn.quantizers import functional as F

DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: Schemes whose zero may miss the level nearest zero (see the module doc).
GREEDY_ZERO = {"residual"}

bitwidths = st.integers(1, 16)
shapes = st.sampled_from([(3,), (4, 5), (2, 3, 4), (4, 3, 2, 2)])
dtypes = st.sampled_from(DTYPES)
modes = st.sampled_from(["train", "eval"])


def fresh(name: str, role: str, x: torch.Tensor, mode: str):
    scheme = make(name, role, x)
    return scheme.train(mode == "train")


def random_tensor(shape: tuple[int, ...], seed: int, role: str, dtype: torch.dtype) -> torch.Tensor:
    """Gaussian values with a random spread per leading row; non-negative for half of the activations."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator) * (0.1 + 3 * torch.rand(shape[:1] + (1,) * (len(shape) - 1),
                                                                          generator=generator))
    if role == "activation" and seed % 2:
        x = x.relu()
    return x.to(dtype)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, bits=bitwidths, dtype=dtypes, mode=modes)
def test_an_all_zero_tensor_quantizes_to_exact_zeros(name, role, shape, bits, dtype, mode):
    zeros = torch.zeros(shape, dtype=dtype)
    scheme = fresh(name, role, zeros, mode)
    for out in (scheme.quantize(zeros, bits), scheme(zeros, torch.tensor(bits - 0.5 if bits > 1 else 1.5))):
        assert out.dtype == dtype
        assert torch.equal(out, zeros), f"{name} {role} at {bits} bits gave {out.unique().tolist()}"


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), bits=bitwidths, dtype=st.sampled_from([torch.float32, torch.float64]))
def test_an_all_zero_channel_stays_zero_among_non_zero_channels(name, seed, bits, dtype):
    x = random_tensor((4, 3, 2, 2), seed, "weight", dtype)
    x[seed % 4] = 0
    out = make(name, "weight", x).quantize(x, bits)
    assert torch.equal(out[seed % 4], x[seed % 4])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), bits=bitwidths)
def test_a_zero_maps_to_a_level_nearest_zero(name, role, seed, bits):
    if name in GREEDY_ZERO:
        pytest.skip("residual's greedy binarization need not pick the level nearest zero (see module doc)")
    x = random_tensor((4, 16), seed, role, torch.float32)
    x[:, :3] = 0
    out = make(name, role, x).quantize(x, bits)
    groups = out if role == "weight" else out.reshape(1, -1)  # weights: per channel; activations: per tensor
    zero_outputs = out[:, :3] if role == "weight" else out[:, :3].reshape(1, -1)
    for levels, at_zero in zip(groups, zero_outputs):
        smallest = levels.abs().min()
        assert torch.all(at_zero.abs() == smallest), f"zero -> {at_zero.tolist()}, nearest level {smallest}"


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), bits=bitwidths, dtype=dtypes, mode=modes, fractional=st.booleans())
def test_the_output_has_the_input_dtype(name, role, seed, bits, dtype, mode, fractional):
    x = random_tensor((4, 3, 2, 2), seed, role, dtype)
    scheme = fresh(name, role, x, mode)
    scheme(x, bits)  # a second call reads what the first stored (eval: running statistics)
    out = scheme(x, torch.tensor(min(bits + 0.25, 16.0))) if fractional else scheme.quantize(x, bits)
    assert out.dtype == dtype and out.shape == x.shape
    assert torch.isfinite(out).all(), f"{name} {role} at {bits} bits in {dtype}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_gradient_has_the_input_dtype(name, role, dtype):
    x = random_tensor((4, 3, 2, 2), 1, role, dtype).requires_grad_(True)
    make(name, role, x)(x, torch.tensor(3.5)).sum().backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_module_of_another_dtype_keeps_the_input_dtype(name, dtype):
    """Parameters and running statistics in float64 (``scheme.double()``) do not promote the output."""
    x = random_tensor((4, 3, 2, 2), 3, "weight", dtype)
    scheme = make(name, "weight", x).double()
    assert scheme.quantize(x, 4).dtype == dtype


@pytest.mark.parametrize("name", ["uniform", "clip"])
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_a_learned_step_that_saw_only_zeros_gives_zeros(name, bits):
    """The reported bug: at 1 bit an untrained step of 1.0 turned zeros into +-1.0 / +-0.5."""
    zeros = torch.zeros(4, 6)
    assert torch.equal(create_scheme(name, role="weight", channels=4).quantize(zeros, bits), zeros)


@pytest.mark.parametrize("bits", [1, 2, 8])
def test_a_zero_step_gives_exact_zeros_and_finite_gradients(bits):
    x = torch.tensor([1e30, -3.0, 0.5, 0.0], requires_grad=True)
    step = torch.zeros((), requires_grad=True)
    out = F.uniform_fake_quant(x, step, bits, False)
    out.sum().backward()
    assert torch.equal(out.detach(), torch.zeros(4))
    assert torch.isfinite(x.grad).all() and torch.isfinite(step.grad)


def test_a_learned_step_set_to_zero_gives_exact_zeros():
    x = random_tensor((4, 8), 5, "weight", torch.float32)
    scheme = create_scheme("uniform", role="weight", channels=4)
    scheme.quantize(x, 1)
    with torch.no_grad():
        scheme.step.zero_()
    assert torch.equal(scheme.quantize(x, 1), torch.zeros_like(x))


def test_the_affine_grid_of_an_all_zero_tensor_is_a_valid_grid(name):
    zeros = torch.zeros(4, 6)
    grid = make(name, "weight", zeros).affine_grid(zeros, 4)
    if grid is not None:
        assert (grid.scale > 0).all()


def test_every_scheme_is_covered():
    assert len(list_schemes()) >= 8
