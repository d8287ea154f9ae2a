"""Helpers shared by the quantizer tests (a plain module: conftest.py is not importable by name)."""

from __future__ import annotations

import torch

from hwqnn.quantizers import AffineGrid, create_scheme

ROLES = ("weight", "activation")
#: Schemes whose quantize(x) must come with an exact integer grid (the ONNX exporter relies on it).
AFFINE_SCHEMES = {"binary", "ternary", "uniform", "ul2q", "zoom", "clip"}


def make(name: str, role: str, x: torch.Tensor | None = None):
    """A fresh scheme; weights get per-channel scales along axis 0 when ``x`` has channels."""
    channels = x.shape[0] if role == "weight" and x is not None and x.dim() > 1 else None
    return create_scheme(name, role=role, channels=channels)


def sample(role: str, signed: bool = True, seed: int = 0, shape: tuple[int, ...] | None = None,
           scale: float = 1.0) -> torch.Tensor:
    """A Gaussian weight (8, 4, 3, 3) or activation (6, 4, 5, 5); ``signed=False`` applies a ReLU."""
    generator = torch.Generator().manual_seed(seed)
    shape = shape or ((8, 4, 3, 3) if role == "weight" else (6, 4, 5, 5))
    x = torch.randn(shape, generator=generator) * scale
    return x if signed else x.relu()


def relative_mse(q: torch.Tensor, x: torch.Tensor) -> float:
    q, x = q.detach().double(), x.detach().double()
    return float((q - x).square().sum() / x.square().sum().clamp_min(1e-300))


def fake_quant(grid: AffineGrid, v: torch.Tensor) -> torch.Tensor:
    """The AffineGrid formula, written out independently of the library."""
    shape = [1] * v.dim()
    if grid.axis is not None:
        shape[grid.axis] = -1
    scale = grid.scale.reshape(shape) if grid.axis is not None else grid.scale
    zero_point = (grid.zero_point.reshape(shape) if grid.axis is not None else grid.zero_point).to(v.dtype)
    return (torch.clamp(torch.round(v / scale) + zero_point, grid.qmin, grid.qmax) - zero_point) * scale


def distinct_per_channel(y: torch.Tensor, per_channel: bool) -> int:
    """The largest number of distinct values in one channel (axis 0), or in the whole tensor."""
    if not per_channel:
        return int(torch.unique(y).numel())
    return max(int(torch.unique(channel).numel()) for channel in y)
