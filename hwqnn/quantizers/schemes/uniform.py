"""Uniform quantization with a learned step size (LSQ, Esser et al. 2020)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..base import MAX_BITS, IntegerCodes
from ..functional import (
    GradScale,
    grid_bounds,
    grid_max_code,
    round_clipped,
    scaled_codes,
    uniform_fake_quant,
    where_unsigned,
)
from ..gaussian_steps import l2_step
from ..registry import register_scheme
from ._common import ObservedScheme


@register_scheme
class Uniform(ObservedScheme):
    """Uniform (LSQ): ``y = s_b * clamp(round(x / s_b), -Q, Q)``, ``Q = 2^(b-1) - 1`` (the sign at
    b = 1; codes ``[0, 2^b - 1]`` for non-negative activations, and the whole two's-complement range
    ``[-2^(b-1), 2^(b-1) - 1]`` for signed ones: a runtime's QuantizeLinear saturates exactly there, so
    the export needs no Clip, which would keep the conv before it from fusing into an integer kernel;
    weights stay symmetric, as TensorRT requires), with a learned step ``s_b`` per
    bitwidth (and channel) initialised to ul2q's L2-optimal step of the first batch that is not all
    zero; until then the step is that of an all-zero batch, 0, and the output is 0. Gradient (LSQ):
    ``dy/dx = 1`` inside the grid and 0 outside; ``dy/ds = round(x/s) - x/s`` inside and the end
    code outside, scaled by ``1 / sqrt(N * Q)``.
    """

    name = "uniform"

    def integer_codes(self, bits: int, unsigned: bool) -> IntegerCodes:
        low, high = self.bounds(bits, unsigned)
        return IntegerCodes(int(low), int(high), round_to_nearest=bits > 1 or unsigned)

    def bounds(self, bits: int, unsigned):
        """Lowest and highest code (see the class doc: full range for signed activations of 2+ bits)."""
        if self.is_activation and bits >= 2:
            return where_unsigned(unsigned, 0.0, -float(2 ** (bits - 1))), grid_max_code(bits, unsigned)
        return grid_bounds(bits, unsigned)
    tracked_stats = ("min",)

    def __init__(self, role: str = "weight", channels: int | None = None, channel_axis: int = 0):
        super().__init__(role=role, channels=channels, channel_axis=channel_axis)
        self.step = nn.Parameter(torch.ones(MAX_BITS, channels or 1))
        #: Signed grid even for non-negative data (QAG's joins on a symmetric-int8 runtime such as TensorRT);
        #: a buffer, so a saved model keeps the grid it was trained with.
        self.register_buffer("signed_only", torch.zeros((), dtype=torch.bool))
        self.register_buffer("step_initialized", torch.zeros(MAX_BITS, dtype=torch.bool))

    def unsigned(self, x: Tensor) -> bool | Tensor:
        return False if bool(self.signed_only) else super().unsigned(x)

    def learned_step(self, x: Tensor, bits: int, unsigned: bool | Tensor) -> Tensor:
        """The step at ``bits`` shaped for ``x`` (in x's dtype), with LSQ's gradient scale; initialised on
        first use. Zero while only all-zero batches were seen: an all-zero tensor has no scale to learn from."""

        def init() -> bool:
            if not bool(x.detach().ne(0).any()):
                return False  # an all-zero batch says nothing about the step; wait for the next one
            value = l2_step(x.detach(), bits, unsigned, self.stat_dims(x)).reshape(-1)
            row = self.step[bits - 1]
            row.copy_(value.to(row.dtype).expand_as(row))
            return True

        if not self.lazy_init(f"step{bits}", self.step_initialized, bits - 1, init):
            return torch.zeros_like(self.per_channel_param(self.step[bits - 1].detach(), x), dtype=x.dtype)
        factor = (self.scale_count(x) * grid_max_code(bits, unsigned)) ** -0.5
        step = GradScale.apply(self.step[bits - 1], factor)
        return self.per_channel_param(step, x).to(x.dtype).abs()

    def fake_quantize(self, x: Tensor, bits: int) -> Tensor:
        unsigned = self.unsigned(x)
        step = self.learned_step(x, bits, unsigned)
        if not (self.is_activation and bits >= 2):
            return uniform_fake_quant(x, step, bits, unsigned)
        lo, hi = (b.to(x) if torch.is_tensor(b) else b for b in self.bounds(bits, unsigned))
        return scaled_codes(x, step, round_clipped, lo, hi)

    def grid_spec(self, x: Tensor, bits: int):
        unsigned = self.unsigned(x)
        lo, hi = self.bounds(bits, unsigned)
        return self.learned_step(x, bits, unsigned), 0.0, lo, hi, bits > 1 or bool(unsigned)
