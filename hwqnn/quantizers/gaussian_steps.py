"""Distribution-aware steps (ul2q): the step that minimises the L2 error of a b-bit grid on Gaussian data.

The step table is computed once per bitwidth from the closed-form error of the grid on N(0, 1) (or the
half-normal, for unsigned grids), then scaled by each tensor's statistics.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy import optimize, special
from torch import Tensor

from .functional import Dims, Unsigned, by_sign, grid_max_code, positive_rms, std_and_mean


def _grid_levels(bits: int, unsigned: bool) -> np.ndarray:
    if unsigned:
        return np.arange(2**bits, dtype=np.float64)
    if bits == 1:
        return np.array([-1.0, 1.0])
    top = 2 ** (bits - 1) - 1
    return np.arange(-top, top + 1, dtype=np.float64)


def _gaussian_cells(step: float, bits: int, unsigned: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid's levels and the [lo, hi] cell around each (midpoints; +-60 stands in for infinity)."""
    levels = _grid_levels(bits, unsigned) * step
    mids = (levels[:-1] + levels[1:]) / 2
    lo = np.concatenate([[0.0 if unsigned else -60.0], mids])
    hi = np.concatenate([mids, [60.0]])
    return levels, lo, hi


_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def gaussian_sq_error(step: float, bits: int, unsigned: bool = False) -> float:
    """E[(X - Q(X))^2] of the b-bit grid of :func:`grid_codes` with ``step``, in closed form.

    X ~ N(0, 1) for the signed grid and the half-normal |N(0, 1)| for the unsigned one. Per cell [a, b]
    with level c: ``(1 + c^2)(Phi(b) - Phi(a)) + (a - 2c) phi(a) - (b - 2c) phi(b)``.
    """
    levels, lo, hi = _gaussian_cells(step, bits, unsigned)
    pdf_lo, pdf_hi = np.exp(-0.5 * lo * lo), np.exp(-0.5 * hi * hi)
    cells = ((1 + levels**2) * (special.ndtr(hi) - special.ndtr(lo))
             + _INV_SQRT_2PI * ((lo - 2 * levels) * pdf_lo - (hi - 2 * levels) * pdf_hi))
    return float((2.0 if unsigned else 1.0) * cells.sum())


def gaussian_sq_error_slope(step: float, bits: int, unsigned: bool = False) -> float:
    """d/d(step) of :func:`gaussian_sq_error`, up to a positive factor: ``sum_k k (c_k P_k - E[X; cell k])``.

    The cell boundaries move with the step, but the integrand is continuous across them, so only the
    levels c_k = k * step contribute.
    """
    levels, lo, hi = _gaussian_cells(step, bits, unsigned)
    mass = special.ndtr(hi) - special.ndtr(lo)
    first_moment = _INV_SQRT_2PI * (np.exp(-0.5 * lo * lo) - np.exp(-0.5 * hi * hi))
    return float(np.sum(_grid_levels(bits, unsigned) * (levels * mass - first_moment)))


@functools.cache
def gaussian_l2_step(bits: int, unsigned: bool = False) -> float:
    """The step c_b minimising :func:`gaussian_sq_error` (ul2q: step = c_b * std), computed once per bitwidth.

    Found as the root of :func:`gaussian_sq_error_slope`, not by minimising the error itself: at high
    bitwidths the error is a small difference of large cell terms (about 1e-7 relative precision at 15
    bits), and a minimum is only located to the square root of that, while a root is located to
    about 1e-12. Signed c_1 is E|X| = sqrt(2/pi); unsigned c_b equals signed c_(b+1) (the same cells on a
    half line).
    """
    log_step = optimize.brentq(lambda t: gaussian_sq_error_slope(float(np.exp(t)), bits, unsigned),
                               np.log(1e-7), np.log(4.0), xtol=1e-14, rtol=1e-14)
    return float(np.exp(log_step))


def l2_step_from_stats(std: Tensor, mean_x: Tensor, positive_rms_x: Tensor | None, bits: int,
                       unsigned: Unsigned) -> Tensor:
    """The ul2q step: ``c_b * std`` (signed grid) or ``c_b+ * positive_rms`` (unsigned grid).

    Floored at ``|mean| / highest code`` (a constant or strongly off-centre tensor is then represented
    instead of clipped to almost nothing). Zero only for an all-zero tensor (or channel), which then
    quantizes to exact zeros. ``positive_rms_x`` may be None when the grid is signed.
    """
    step = by_sign(unsigned, lambda: positive_rms_x * gaussian_l2_step(bits, True),
                   lambda: std * gaussian_l2_step(bits, False))
    floor = mean_x.detach().abs() / grid_max_code(bits, unsigned)
    return torch.maximum(step, floor)


def l2_step(x: Tensor, bits: int, unsigned: Unsigned, dims: Dims) -> Tensor:
    """:func:`l2_step_from_stats` computed from ``x`` (also the initial value of learned steps and ranges)."""
    std, mean_x = std_and_mean(x, dims)
    rms = positive_rms(x, dims) if unsigned is not False else None
    return l2_step_from_stats(std, mean_x, rms, bits, unsigned)
