"""Stateless quantization math shared by the schemes (the modules in ``schemes/`` stay thin).

Every fake quantizer here has the form ``y = scale * codes``: the integer (or power-of-two) ``codes`` are
chosen without gradient, and :class:`ScaledCodes` gives the LSQ gradient: ``dy/dx = 1`` where ``x / scale``
lies inside the codes' range and 0 outside; ``dy/dscale = codes - x / scale`` inside and ``codes``
outside (PACT keeps only the outside term). A scale computed from ``x`` (a mean, a standard deviation)
therefore passes its own gradient back to ``x`` as well.

A scale may be zero (an all-zero channel, or a learned step that has not seen data yet): the output is
then exactly 0, even on grids without a zero level (the 1-bit sign grid), because the grid has collapsed
to {0}. Only the division ``x / scale`` floors the scale at the dtype's tiny (:func:`divisor`). The output
has the dtype of ``x``: scales and zero points are cast to it.

Reductions take ``dims``: ``None`` reduces everything (per tensor, 0-d result); a tuple reduces those
dims with ``keepdim=True`` (per channel), and an empty tuple keeps every element.

Speed notes (measured on the CPU build this project pins): ``torch.where`` and bool temporaries cost
about 10x an elementwise multiply, so masks are written straight into float tensors (:func:`mask`) and
signs come from ``copysign``; ``var_mean`` and ``isfinite().all()`` are replaced by sums, norms and
``aminmax``. A grid that depends on the sign of an activation is selected by a Python bool on CPU and
by a 0-d bool tensor elsewhere (no host sync); every helper here accepts both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import SchemeError

Dims = tuple[int, ...] | None
Unsigned = bool | Tensor

#: TWN's threshold factor: Delta = 0.7 * mean|x| (Li et al., "Ternary Weight Networks", 2016).
TWN_THRESHOLD = 0.7
#: Power-of-two schemes keep at most this many non-zero magnitudes (2^0 .. 2^-(n-1)); smaller ones are
#: below float32's resolution relative to the top level and would only be zeros or denormals.
MAX_POT_EXPONENTS = 120


# --- autograd functions ------------------------------------------------------------------------------
class RoundSTE(torch.autograd.Function):
    """``round(x)`` forward, identity backward (the straight-through estimator)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad


class GradScale(torch.autograd.Function):
    """Identity forward, ``grad * factor`` backward (LSQ's step-size gradient scaling), exact in value."""

    @staticmethod
    def forward(ctx, x: Tensor, factor: float | Tensor) -> Tensor:
        ctx.factor = factor
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.factor, None


class ScaledCodes(torch.autograd.Function):
    """``codes * scale`` forward with the LSQ (or PACT) gradient to ``x`` and ``scale`` (see module doc).

    ``codes`` is a tensor, or a function ``codes_of(x, u)`` of the input and of ``u = x / scale`` already
    clamped to ``[lo, hi]`` (integer bounds, so rounding commutes with the clamp). ``codes_of`` may write
    its codes into ``u`` and return it: ``u`` is a scratch tensor. A function is evaluated here and again
    in backward, so no tensor the size of ``x`` is kept for it (``x`` is kept anyway).

    The passes over ``x``-sized tensors are counted: they, not the arithmetic, are what a quantized
    training step pays on a CPU (each costs about as much as one elementwise multiply).
    """

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor, codes: Tensor | Callable[[Tensor, Tensor], Tensor],
                lo: float | Tensor, hi: float | Tensor, inside_scale_grad: bool) -> Tensor:
        bounds = [b for b in (lo, hi) if torch.is_tensor(b)]
        safe_scale = divisor(scale, x)
        ctx.codes_of = None if torch.is_tensor(codes) else codes
        kept = (codes,) if ctx.codes_of is None else ()
        ctx.save_for_backward(x, safe_scale, *kept, *bounds)
        ctx.lo, ctx.hi = (None if torch.is_tensor(b) else b for b in (lo, hi))
        ctx.inside_scale_grad = inside_scale_grad
        if ctx.codes_of is None:
            return codes * scale
        u = torch.div(x, safe_scale).clamp_(lo, hi)
        return ctx.codes_of(x, u).mul_(scale)  # a fresh tensor (or u itself): scaled in place

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, scale, *rest = ctx.saved_tensors
        codes = rest.pop(0) if ctx.codes_of is None else None
        lo = rest.pop(0) if ctx.lo is None else ctx.lo
        hi = rest.pop(0) if ctx.hi is None else ctx.hi
        u = x / scale  # recomputed rather than saved: one pass instead of one more tensor kept alive
        clipped = torch.clamp(u, lo, hi)  # finite even where u is +-inf (x far outside a tiny scale)
        inside = torch.eq(clipped, u, out=u)  # a float 0/1 mask, written over u (no longer needed)
        grad_x = grad * inside
        grad_scale = None
        if ctx.needs_input_grad[1]:
            # LSQ: sum(grad * codes) - sum(grad * u * inside), and u * inside = clipped * inside;
            # PACT: sum(grad * codes * (1 - inside)).
            per_tensor = scale.numel() == 1
            inner = None
            if ctx.inside_scale_grad:
                inner = _dot(grad_x, clipped) if per_tensor else grad_x * clipped
            if codes is None:
                codes = ctx.codes_of(x, clipped)  # may overwrite clipped, which is used above
            if inner is None:
                inner = _dot(grad_x, codes) if per_tensor else grad_x * codes
            if per_tensor:
                grad_scale = (_dot(grad, codes) - inner).reshape(scale.shape)
            else:
                grad_scale = (grad * codes - inner).sum_to_size(scale.shape)
        return grad_x, grad_scale, None, None, None, None


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return torch.dot(a.reshape(-1), b.reshape(-1))


def scaled_codes(x: Tensor, scale: Tensor, codes: Tensor | Callable[[Tensor, Tensor], Tensor],
                 lo: float | Tensor, hi: float | Tensor, inside_scale_grad: bool = True) -> Tensor:
    """``codes * scale`` in x's dtype, with the LSQ gradient (PACT's when ``inside_scale_grad`` is False).

    ``codes``: a tensor, or ``codes_of(x, u)`` with ``u = x / scale`` (recomputed in backward instead of
    kept: the training step then holds one tensor less per quantized tensor). A zero ``scale`` gives exact
    zeros (see the module doc); the gradient divides by :func:`divisor`.
    """
    lo, hi = (b.to(x) if torch.is_tensor(b) else float(b) for b in (lo, hi))
    return ScaledCodes.apply(x, scale.to(x.dtype), codes, lo, hi, inside_scale_grad)


# --- small elementwise helpers -----------------------------------------------------------------------
def mask(compare: Callable[..., Tensor], a: Tensor, b: float | Tensor) -> Tensor:
    """``compare(a, b)`` as a float 0/1 tensor shaped like ``a``, without a bool temporary."""
    out = torch.empty_like(a)
    compare(a, b, out=out)
    return out


def sign_codes(x: Tensor) -> Tensor:
    """+-1 with the sign bit of x: two levels, so 0 maps to +1 rather than to a third level (-0.0 to -1)."""
    return torch.copysign(torch.ones((), dtype=x.dtype, device=x.device), x)


def by_sign(unsigned: Unsigned, if_unsigned: Callable[[], Any], if_signed: Callable[[], Any]) -> Any:
    """Evaluate only the needed branch for a Python bool; both, merged by ``torch.where``, for a tensor.

    Branch results may be tensors, Python floats or tuples of them.
    """
    if isinstance(unsigned, bool):
        return if_unsigned() if unsigned else if_signed()
    chosen, other = if_unsigned(), if_signed()
    if isinstance(chosen, tuple):
        return tuple(torch.where(unsigned, a, b) for a, b in zip(chosen, other))
    return torch.where(unsigned, chosen, other)


# --- input checks and safe statistics --------------------------------------------------------------
def check_input(x: object, scheme: str) -> tuple[Tensor, Tensor] | None:
    """Raise SchemeError unless ``x`` is a floating-point tensor, finite when on CPU.

    The finiteness check is one ``aminmax`` pass (NaN and inf propagate into it), returned for reuse.
    It is skipped on accelerators, where it would cost a host sync per call (NaN then propagates).
    """
    if not torch.is_tensor(x) or not x.is_floating_point():
        got = f"a {x.dtype} tensor" if torch.is_tensor(x) else type(x).__name__
        raise SchemeError(f"scheme '{scheme}' quantizes floating-point tensors, got {got}; cast it with .float()")
    if x.device.type != "cpu" or x.numel() == 0:
        return None
    extremes = torch.aminmax(x)
    if not bool(torch.isfinite(extremes.min) & torch.isfinite(extremes.max)):
        nan, inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        raise SchemeError(
            f"scheme '{scheme}' got a tensor of shape {tuple(x.shape)} with {nan} NaN and {inf} infinite values; "
            "quantizing needs finite values: check the layer or the learning rate that produced them"
        )
    return extremes.min, extremes.max


def tiny(dtype: torch.dtype) -> float:
    """Smallest positive normal number of ``dtype``: the floor of every scale (no division by zero)."""
    return torch.finfo(dtype).tiny


def divisor(scale: Tensor, x: Tensor) -> Tensor:
    """``scale`` in x's dtype, floored at its tiny: what ``x`` is divided by (a zero scale may not divide)."""
    return scale.to(x.dtype).clamp_min(tiny(x.dtype))


def reduce(x: Tensor, op: str, dims: Dims) -> Tensor:
    """``x.<op>()`` over ``dims`` (see the module doc for the convention)."""
    if dims is None:
        return getattr(x, op)()
    if len(dims) == 0:
        return x
    return getattr(x, op)(dim=dims, keepdim=True)


def count(x: Tensor, dims: Dims) -> int:
    """Number of elements each statistic over ``dims`` reduces."""
    if dims is None:
        return x.numel()
    return int(np.prod([x.shape[d] for d in dims])) if dims else 1


def mean(x: Tensor, dims: Dims) -> Tensor:
    return reduce(x, "sum", dims) / count(x, dims)


def abs_mean(x: Tensor, dims: Dims) -> Tensor:
    """mean|x| (its gradient is sign(x), 0 at 0). Summing ``|x|`` beats the L1 norm: ``vector_norm(x, 1)`` runs
    about 3x slower than ``abs`` plus ``sum`` on this CPU build (measured on 2M elements)."""
    if dims == ():
        return x.abs()
    return reduce(x.abs(), "sum", dims) / count(x, dims)


def abs_max(x: Tensor, dims: Dims) -> Tensor:
    return reduce(x.abs(), "amax", dims)


def _norm(x: Tensor, dims: Dims, known: Tensor | None) -> Tensor:
    return (abs_max(x, dims) if known is None else known).detach().clamp_min(tiny(x.dtype))


def std_and_mean(x: Tensor, dims: Dims, abs_max_x: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Population std and mean, computed on ``x / max|x|`` so that squares of 1e30 cannot overflow.

    ``abs_max_x`` may pass a known ``max|x|`` (per tensor, from the input check) to save a pass. The
    gradient is the closed form (``d std / dx = (x - mean) / (N std)``, ``d mean / dx = 1 / N``), computed
    from ``x`` alone: autograd would keep two more tensors the size of ``x`` per call.
    """
    if dims == ():
        return torch.zeros_like(x), x
    return _StdAndMean.apply(x, dims, abs_max_x)


class _StdAndMean(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, dims: Dims, abs_max_x: Tensor | None) -> tuple[Tensor, Tensor]:
        norm = _norm(x, dims, abs_max_x)
        scaled = x / norm
        mean_scaled = mean(scaled, dims)
        root_sum_sq = torch.linalg.vector_norm(scaled - mean_scaled, dim=dims, keepdim=dims is not None)
        std = (root_sum_sq / count(x, dims) ** 0.5).clamp_min(tiny(x.dtype)) * norm
        mean_x = mean_scaled * norm
        ctx.save_for_backward(x, std, mean_x)
        ctx.n = count(x, dims)
        return std, mean_x

    @staticmethod
    def backward(ctx, grad_std: Tensor, grad_mean: Tensor):
        x, std, mean_x = ctx.saved_tensors
        # (x - mean) / std first: at most sqrt(N) in size, 0 for a constant input (std underflows to 0 there).
        grad_x = (x - mean_x) / std.clamp_min(tiny(x.dtype)) * (grad_std / ctx.n) + grad_mean / ctx.n
        return grad_x, None, None


def positive_rms(x: Tensor, dims: Dims, abs_max_x: Tensor | None = None) -> Tensor:
    """Root mean square of the positive entries (the spread of a post-ReLU tensor, zeros excluded).

    Gradient in closed form, ``relu(x) / (P rms)`` with ``P`` the count of positive entries (a constant),
    from ``x`` alone (see :func:`std_and_mean`).
    """
    if dims == ():
        return torch.relu(x)
    return _PositiveRms.apply(x, dims, abs_max_x)


class _PositiveRms(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, dims: Dims, abs_max_x: Tensor | None) -> Tensor:
        norm = _norm(x, dims, abs_max_x)
        positive = torch.relu(x) / norm
        positives = reduce(mask(torch.gt, positive, 0.0), "sum", dims).clamp_min(1)
        root_sum_sq = torch.linalg.vector_norm(positive, dim=dims, keepdim=dims is not None)
        rms = root_sum_sq / positives.sqrt() * norm
        ctx.save_for_backward(x, rms, positives)
        return rms

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, rms, positives = ctx.saved_tensors
        return torch.relu(x) / rms.clamp_min(tiny(x.dtype)) * (grad / positives), None, None


def twn_scale(x: Tensor, threshold: Tensor, dims: Dims) -> Tensor:
    """TWN's L2-optimal scale for the entries above ``threshold``: mean of |x| over |x| > threshold."""
    magnitude = x.abs()
    above = mask(torch.gt, magnitude, threshold)
    return reduce(magnitude * above, "sum", dims) / reduce(above, "sum", dims).clamp_min(1)


# --- uniform and affine grids ------------------------------------------------------------------------
def where_unsigned(unsigned: Unsigned, if_unsigned: float, if_signed: float) -> float | Tensor:
    """A per-tensor constant that depends on the grid's sign (a Python float when ``unsigned`` is a bool)."""
    if isinstance(unsigned, bool):
        return if_unsigned if unsigned else if_signed
    return torch.where(unsigned, if_unsigned, if_signed)


def grid_max_code(bits: int, unsigned: Unsigned) -> float | Tensor:
    """Largest code of the b-bit grid: 2^b - 1 unsigned; 2^(b-1) - 1 signed (1 for the 1-bit sign grid)."""
    return where_unsigned(unsigned, float(2**bits - 1), float(max(2 ** (bits - 1) - 1, 1)))


def grid_bounds(bits: int, unsigned: Unsigned) -> tuple[float | Tensor, float | Tensor]:
    """Lowest and highest code of the b-bit grid of :func:`grid_codes`."""
    low_signed = -1.0 if bits == 1 else -float(2 ** (bits - 1) - 1)
    return where_unsigned(unsigned, 0.0, low_signed), grid_max_code(bits, unsigned)


def grid_codes(u: Tensor, bits: int, unsigned: Unsigned) -> Tensor:
    """Codes of ``u`` (= x / step) on the b-bit grid (see :func:`grid_bounds`).

    Unsigned: ``round(u)`` in [0, 2^b - 1]. Signed, b >= 2: ``round(u)`` in +-(2^(b-1) - 1) (symmetric,
    zero point 0). Signed, b = 1: the sign, +-1 (a one-bit grid has no room for zero).
    """
    if bits == 1:
        return by_sign(unsigned, lambda: torch.round(u).clamp_(0.0, 1.0), lambda: sign_codes(u))
    lo, hi = (b.to(u) if torch.is_tensor(b) else b for b in grid_bounds(bits, unsigned))
    return torch.round(u).clamp_(lo, hi)


def round_clipped(_: Tensor, u: Tensor) -> Tensor:
    """The ``codes_of`` of every integer grid: ``u`` comes clamped to integer bounds from :class:`ScaledCodes`,
    so the codes are ``round(u)``, written into ``u``."""
    return torch.round(u, out=u)


def clipped_grid_codes(u: Tensor, bits: int, unsigned: Unsigned) -> Tensor:
    """:func:`grid_codes` of a ``u`` already clamped to the grid's bounds (as :class:`ScaledCodes` passes
    it), written into ``u``: the clamp and the new tensor are saved (rounding commutes with clamping to
    integers)."""
    if bits == 1:
        return by_sign(unsigned, lambda: round_clipped(u, u), lambda: sign_codes(u))
    return round_clipped(u, u)


def uniform_fake_quant(x: Tensor, step: Tensor, bits: int, unsigned: Unsigned,
                       inside_scale_grad: bool = True) -> Tensor:
    """Symmetric (or unsigned) uniform fake quantization with step ``step`` (see :func:`grid_codes`).

    A zero step gives exact zeros, also on the 1-bit sign grid, which has no zero level.
    """
    lo, hi = grid_bounds(bits, unsigned)
    return scaled_codes(x, step, lambda _, u: clipped_grid_codes(u, bits, unsigned), lo, hi, inside_scale_grad)


def affine_fake_quant(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int) -> Tensor:
    """``(clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale`` with the LSQ gradient.

    The zero point is an integer (per tensor or per channel), as on every integer grid: the bounds
    ``q - zero_point`` are then integers, and the codes are ``round(x / scale)`` clamped to them.
    """
    if zero_point.device.type == "cpu" and not torch.equal(zero_point, torch.round(zero_point)):
        raise SchemeError(f"affine_fake_quant needs an integer zero point, got {zero_point.tolist()}")
    if zero_point.numel() == 1 and zero_point.device.type == "cpu":
        zero_point = float(zero_point)  # free to read on CPU; clamping to Python numbers is ~4x faster
    else:
        zero_point = zero_point.to(x.dtype)  # a float32 zero point must not promote a float16 input
    scale = divisor(scale, x)
    return scaled_codes(x, scale, round_clipped, qmin - zero_point, qmax - zero_point)  # integer bounds


def minmax_scale_zero_point(x_min: Tensor, x_max: Tensor, bits: int) -> tuple[Tensor, Tensor]:
    """Asymmetric b-bit scale and integer zero point of a range widened to contain 0 (exact zeros)."""
    lo, hi = x_min.clamp(max=0), x_max.clamp(min=0)
    qmax = 2**bits - 1
    scale = ((hi - lo) / qmax).clamp_min(tiny(lo.dtype))
    zero_point = torch.round(-lo.detach() / scale.detach()).clamp(0, qmax)
    return scale, zero_point


# --- power-of-two and residual binary grids --------------------------------------------------------------
def pot_exponent_count(bits: int, unsigned: Unsigned) -> float | Tensor:
    """Non-zero magnitudes 2^0 .. 2^-(n-1) of a b-bit power-of-two grid (one code is kept for zero)."""
    signed = min(max(2 ** (bits - 1) - 1, 1), MAX_POT_EXPONENTS)
    return where_unsigned(unsigned, float(min(2**bits - 1, MAX_POT_EXPONENTS)), float(signed))


#: Integer view and exponent-field mask per float dtype: ``bits & mask`` of v >= 0 is 2^floor(log2 v).
_EXPONENT_MASKS = {
    torch.float32: (torch.int32, 0x7F800000),
    torch.float64: (torch.int64, 0x7FF0000000000000),
    torch.float16: (torch.int16, 0x7C00),
    torch.bfloat16: (torch.int16, 0x7F80),
}


def floor_power_of_two(v: Tensor) -> Tensor:
    """``2^floor(log2 v)`` for v >= 0, exactly, by clearing the mantissa bits (0 for zero and denormals)."""
    int_dtype, exponent_bits = _EXPONENT_MASKS[v.dtype]
    return (v.view(int_dtype) & exponent_bits).view(v.dtype)


def pot_codes(u: Tensor, bits: int, unsigned: Unsigned) -> Tensor:
    """Nearest of 0 and +-2^-k, k < n (see :func:`pot_exponent_count`), to ``u`` clipped to [-1, 1].

    Signed 1-bit codes are the sign (+-1). Between 2^(k-1) and 2^k the midpoint 0.75 * 2^k is the
    threshold (nearest level, not log-domain rounding); 0 wins at or below half the smallest level.
    """
    if bits == 1 and unsigned is False:
        return sign_codes(u)
    smallest = torch.exp2(-torch.as_tensor(pot_exponent_count(bits, unsigned), dtype=u.dtype, device=u.device) + 1)
    magnitude = u.abs().clamp_(max=1.0)
    level = floor_power_of_two(magnitude / 0.75).clamp_(min=smallest)
    level = level * mask(torch.gt, magnitude, smallest / 2)

    def one_sided() -> Tensor:
        return level * mask(torch.gt, u, 0.0)

    def two_sided() -> Tensor:
        return sign_codes(u) if bits == 1 else torch.copysign(level, u)

    return by_sign(unsigned, one_sided, two_sided)


def residual_binarize(x: Tensor, bits: int, term_scale: Callable[[int, Tensor], Tensor],
                      cache: dict[int, tuple[Tensor, Tensor, tuple[Tensor, ...]]] | None = None, dims: Dims = None,
                      scales_from_batch: bool = True, offset: Tensor | None = None) -> Tensor:
    """Greedy residual binarization (ResQ): ``offset + sum_i a_i sign(r_(i-1))`` with ``r_0 = x - offset``
    (no offset: ``r_0 = x``), ``i = 1..bits``.

    ``term_scale(i, r)`` gives ``a_(i+1)`` for the residual ``r``: ``mean|r|`` over ``dims`` when
    ``scales_from_batch`` (the scales then carry their gradient to ``x``), else a running value (no
    gradient). A straight-through path adds ``dy/dx = 1`` where ``|r_0| <= sum a_i``. ``cache`` (one dict
    per input) keeps the partial sums, so quantizing the same input at b and b + 1 computes b + 1 terms,
    not 2b + 1. The terms run without autograd and :class:`_ResidualTerms` gives their gradient from ``x``,
    the offset and the scales alone, recomputing the residuals: autograd would keep two tensors the size of
    ``x`` per term, the straight-through mask and the centred input.
    """
    cache = {} if cache is None else cache
    done = max((i for i in cache if i <= bits), default=0)
    with torch.no_grad():
        if done:
            out, residual, scales = cache[done]
        else:
            out, residual, scales = None, x.detach() if offset is None else x.detach() - offset.detach(), ()
        for i in range(done, bits):
            scale = term_scale(i, residual).to(x.dtype)
            signs = sign_codes(residual)
            # out + scale * sign and residual - scale * sign, each in one pass (the product is exact)
            out = signs * scale if out is None else torch.addcmul(out, signs, scale)
            residual, scales = torch.addcmul(residual, signs, scale, value=-1), (*scales, scale)
            cache[i + 1] = (out, residual, scales)
        result = out if offset is None else out + offset.detach()
    if not (torch.is_grad_enabled() and (x.requires_grad or (offset is not None and offset.requires_grad))):
        return result
    return _ResidualTerms.apply(x, offset, result, dims, scales_from_batch, *scales)


class _ResidualTerms(torch.autograd.Function):
    """The binarized tensor (computed by the caller) with its gradient to ``x`` and the offset: straight
    through where ``|r_0| <= sum a_i``, plus (``scales_grad``) that of each ``a_i = mean|r_(i-1)|`` over
    ``dims``: ``dL/da_i = <g - G_i, s_i>`` and ``G_(i-1) = G_i + dL/da_i * sign(r_(i-1)) / N``, from
    ``G_b = 0`` (``s_i`` the term's sign, ``G_i = dL/dr_i``). The residuals, ``r_0 = x - offset`` included,
    are recomputed from ``x``, the offset and the scales."""

    @staticmethod
    def forward(ctx, x: Tensor, offset: Tensor | None, result: Tensor, dims: Dims, scales_grad: bool,
                *scales: Tensor) -> Tensor:
        ctx.has_offset = offset is not None
        ctx.save_for_backward(x, *((offset,) if ctx.has_offset else ()), *scales)
        ctx.dims, ctx.scales_grad = dims, scales_grad
        return result.view_as(result)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, *scales = ctx.saved_tensors
        offset = scales.pop(0) if ctx.has_offset else None
        start = x if offset is None else x - offset  # r_0
        through = start.abs()
        grad_x = torch.le(through, sum(scales), out=through).mul_(grad)  # the straight-through part
        if ctx.scales_grad:
            residuals = [start]
            for scale in scales[:-1]:
                residuals.append(torch.addcmul(residuals[-1], sign_codes(residuals[-1]), scale, value=-1))
            n = count(x, ctx.dims)
            upstream = None  # G_i = dL/dr_i, 0 for the last residual; kept apart from g: its entries are ~1/N
            for residual in reversed(residuals):
                signs = sign_codes(residual)
                if ctx.dims is None:  # per tensor: dot products, no (g - G) * s temporaries
                    grad_scale = _dot(grad, signs) - (0.0 if upstream is None else _dot(upstream, signs))
                else:
                    grad_scale = reduce((grad if upstream is None else grad - upstream) * signs, "sum", ctx.dims)
                slope = torch.sign(residual)  # d|r|/dr = sign(r), 0 at 0 (as abs)
                upstream = slope.mul_(grad_scale / n) if upstream is None else upstream.addcmul_(slope, grad_scale / n)
            grad_x.add_(upstream)
        grad_offset = None
        if offset is not None and ctx.needs_input_grad[1]:  # y = offset + f(x - offset)
            grad_offset = (grad.sum() - grad_x.sum()).reshape(offset.shape)
        return grad_x, grad_offset, None, None, None, *(None for _ in scales)
