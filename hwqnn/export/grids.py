"""Integer grids of quantized tensors: what a DequantizeLinear (weights) or a Q/DQ pair (activations) must
reproduce exactly.

A weight is a constant, so any per-channel scale that turns its fake-quantized values into integers
works: the scheme's own ``affine_grid`` when it has one, otherwise a grid inferred from the values
(binary, ternary and power-of-two levels are integer multiples of their smallest magnitude). An
activation is dynamic, so only the scheme's ``affine_grid`` can describe it, and only if that grid does
not change with the input (eval-mode running statistics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..quantizers import AffineGrid

#: Relative tolerance for "the integer grid reproduces the scheme's output" (a few float32 ulps).
RECONSTRUCT_RTOL = 1e-6
#: Largest share of activation elements where the grid may round a tie differently than the scheme.
ACTIVATION_MISMATCH_LIMIT = 1e-3
#: Divisors of the smallest magnitude tried when inferring a weight grid (levels 2s and 3s need s).
_INFER_DIVISORS = (1, 2, 3, 4, 5, 6, 7, 8)


@dataclass(frozen=True)
class IntegerGrid:
    """``value == (q - zero_point) * scale`` with integer ``q`` in ``[qmin, qmax]``.

    ``scale``/``zero_point`` are 0-d (per tensor, ``axis`` None) or 1-d along ``axis``. ``source`` says
    where the grid came from: ``"affine_grid"`` (the scheme) or ``"inferred"`` (from constant values).
    """

    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int
    axis: int | None
    source: str

    @property
    def symmetric(self) -> bool:
        return not bool(np.any(self.zero_point))

    def view(self, array: Tensor, ndim: int) -> tuple[Tensor, Tensor]:
        """Scale and zero point as float tensors that broadcast against a tensor of ``ndim`` dims."""
        shape = [1] * ndim
        if self.axis is not None:
            shape[self.axis] = -1
        scale = torch.as_tensor(self.scale, dtype=torch.float32).reshape(shape)
        zero_point = torch.as_tensor(self.zero_point, dtype=torch.float32).reshape(shape)
        return scale.to(array.device), zero_point.to(array.device)

    def quantize(self, x: Tensor) -> Tensor:
        """Integer codes, exactly as ONNX QuantizeLinear computes them (division, round half to even)."""
        scale, zero_point = self.view(x, x.dim())
        return torch.clamp(torch.round(x.float() / scale) + zero_point, self.qmin, self.qmax)

    def dequantize(self, q: Tensor) -> Tensor:
        scale, zero_point = self.view(q, q.dim())
        return (q - zero_point) * scale


def from_affine(grid: AffineGrid, ndim: int) -> tuple[IntegerGrid | None, str]:
    """Convert a scheme's :class:`AffineGrid` (torch) into an :class:`IntegerGrid`, or say why not."""
    scale = grid.scale.detach().float().cpu().reshape(-1).numpy()
    zero_point = grid.zero_point.detach().float().cpu().reshape(-1).numpy()
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        return None, f"affine_grid returned non-positive or non-finite scales (min {scale.min():.3g})"
    if np.any(zero_point != np.round(zero_point)):
        return None, "affine_grid returned a non-integer zero point"
    if grid.qmin > grid.qmax:
        return None, f"affine_grid returned qmin={grid.qmin} > qmax={grid.qmax}"
    channels = max(scale.size, zero_point.size)
    if channels == 1:
        return IntegerGrid(scale.reshape(()), zero_point.astype(np.int64).reshape(()), int(grid.qmin),
                           int(grid.qmax), None, "affine_grid"), ""
    if grid.axis is None:
        return None, f"affine_grid returned {channels} scales but no axis"
    scale = np.broadcast_to(scale, (channels,)).copy()
    zero_point = np.broadcast_to(zero_point, (channels,)).astype(np.int64)
    return IntegerGrid(scale, zero_point, int(grid.qmin), int(grid.qmax), grid.axis % ndim, "affine_grid"), ""


def reconstructs(grid: IntegerGrid, values: Tensor) -> bool:
    """Whether ``values`` lie exactly (to float32 rounding) on ``grid`` inside ``[qmin, qmax]``."""
    scale, zero_point = grid.view(values, values.dim())
    codes = torch.round(values.float() / scale) + zero_point
    if codes.numel() and (codes.min() < grid.qmin or codes.max() > grid.qmax):
        return False
    return torch.allclose(grid.dequantize(codes), values.float(), rtol=RECONSTRUCT_RTOL, atol=1e-30)


def weight_codes(grid: IntegerGrid, values: Tensor) -> np.ndarray:
    """The integer codes of a constant on its grid (int64)."""
    scale, zero_point = grid.view(values, values.dim())
    return (torch.round(values.float() / scale) + zero_point).to(torch.int64).cpu().numpy()


def infer_constant_grid(values: Tensor, axis: int | None, max_abs_code: int = 127) -> IntegerGrid | None:
    """A symmetric per-channel grid on which a constant tensor lies exactly, or None.

    Each channel's scale is its smallest non-zero magnitude divided by a small integer, so that every
    value is an integer multiple of it with ``|code| <= max_abs_code``.
    """
    v = values.detach().float().cpu()
    if v.dim() == 0:
        v, axis = v.reshape(1), None
    rows = v.movedim(axis, 0).reshape(v.shape[axis], -1) if axis is not None else v.reshape(1, -1)
    scales = []
    for row in rows:
        nonzero = row[row != 0].abs()
        if nonzero.numel() == 0:
            scales.append(1.0)
            continue
        smallest = float(nonzero.min())
        for divisor in _INFER_DIVISORS:
            scale = np.float32(smallest / divisor)
            codes = torch.round(row / float(scale))
            if codes.abs().max() <= max_abs_code and torch.allclose(codes * float(scale), row,
                                                                   rtol=RECONSTRUCT_RTOL, atol=1e-30):
                scales.append(float(scale))
                break
        else:
            return None
    scale = np.asarray(scales, dtype=np.float32)
    grid_axis = axis % v.dim() if axis is not None else None
    if grid_axis is None:
        scale = scale.reshape(())
    zero_point = np.zeros(scale.shape, dtype=np.int64)
    probe = IntegerGrid(scale, zero_point, -max_abs_code, max_abs_code, grid_axis, "inferred")
    codes = weight_codes(probe, v)
    return IntegerGrid(scale, zero_point, int(codes.min(initial=0)), int(codes.max(initial=0)), grid_axis, "inferred")


def activation_mismatch(grid: IntegerGrid, x: Tensor, reference: Tensor) -> float:
    """Share of elements where the Q/DQ pair of ``grid`` differs from the scheme's output on ``x``."""
    if x.numel() == 0:
        return 0.0
    out = grid.dequantize(grid.quantize(x))
    tolerance = RECONSTRUCT_RTOL * reference.abs() + 1e-30
    return float(((out - reference.float()).abs() > tolerance).float().mean())


def same_grid(a: IntegerGrid, b: IntegerGrid) -> bool:
    """Whether two grids are equal (used to tell a static activation grid from an input-dependent one)."""
    return (a.axis == b.axis and a.qmin == b.qmin and a.qmax == b.qmax and a.scale.shape == b.scale.shape
            and np.array_equal(a.zero_point, b.zero_point) and np.allclose(a.scale, b.scale, rtol=1e-6, atol=0))
