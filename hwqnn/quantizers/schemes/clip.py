"""Uniform quantization with a learned clipping range (PACT, Choi et al. 2018)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..base import IntegerCodes
from ..functional import grid_bounds, uniform_fake_quant, where_unsigned
from ..gaussian_steps import l2_step
from ..registry import register_scheme
from ._common import ObservedScheme


def range_divisor(bits: int, unsigned: bool | Tensor) -> float | Tensor:
    """Steps in the clipping range: 2^b - 1 unsigned, 2^(b-1) - 1 signed, 2 at signed b = 1 (+-a/2)."""
    return where_unsigned(unsigned, float(2**bits - 1), 2.0 if bits == 1 else float(2 ** (bits - 1) - 1))


@register_scheme
class Clip(ObservedScheme):
    """Clip (PACT): uniform with a learned clipping range ``a`` shared by all bitwidths (per channel for
    weights): the grid of ``uniform`` with step ``a / Q`` covering ``[-a, a]`` (``[0, a]`` for
    non-negative activations; levels +-a/2 at b = 1). ``a`` is initialised to ul2q's L2-optimal range
    at the bitwidth of the first call that is not all zero (until then ``a = 0`` and the output is 0).
    Gradient (PACT): ``dy/dx = 1`` inside the range, 0 outside;
    ``dy/da = sign(x)`` outside the range and 0 inside (so, as in PACT, a too-wide range shrinks only
    through weight decay on ``a``).
    """

    name = "clip"

    def integer_codes(self, bits: int, unsigned: bool) -> IntegerCodes:
        low, high = grid_bounds(bits, unsigned)
        return IntegerCodes(int(low), int(high), round_to_nearest=bits > 1 or unsigned)
    tracked_stats = ("min",)

    def __init__(self, role: str = "weight", channels: int | None = None, channel_axis: int = 0):
        super().__init__(role=role, channels=channels, channel_axis=channel_axis)
        self.alpha = nn.Parameter(torch.ones(channels or 1))
        self.register_buffer("alpha_initialized", torch.zeros(1, dtype=torch.bool))

    def step(self, x: Tensor, bits: int, unsigned: bool | Tensor) -> Tensor:
        """``a / Q`` shaped for ``x`` (in x's dtype); zero while only all-zero batches were seen."""
        divisor = range_divisor(bits, unsigned)

        def init() -> bool:
            if not bool(x.detach().ne(0).any()):
                return False  # an all-zero batch says nothing about the range; wait for the next one
            value = (l2_step(x.detach(), bits, unsigned, self.stat_dims(x)) * divisor).reshape(-1)
            self.alpha.copy_(value.to(self.alpha.dtype).expand_as(self.alpha))
            return True

        if not self.lazy_init("alpha", self.alpha_initialized, 0, init):
            return torch.zeros_like(self.per_channel_param(self.alpha.detach(), x), dtype=x.dtype)
        return self.per_channel_param(self.alpha, x).to(x.dtype).abs() / divisor

    def fake_quantize(self, x: Tensor, bits: int) -> Tensor:
        unsigned = self.unsigned(x)
        return uniform_fake_quant(x, self.step(x, bits, unsigned), bits, unsigned, inside_scale_grad=False)

    def grid_spec(self, x: Tensor, bits: int):
        unsigned = self.unsigned(x)
        lo, hi = grid_bounds(bits, unsigned)
        return self.step(x, bits, unsigned), 0.0, lo, hi, bits > 1 or bool(unsigned)
