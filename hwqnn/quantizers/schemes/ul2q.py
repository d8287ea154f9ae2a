"""Distribution-aware uniform quantization (uL2Q, Cheng et al. 2019): step = c_b * std."""

from __future__ import annotations

from torch import Tensor

from ..base import IntegerCodes
from ..functional import grid_bounds, positive_rms, std_and_mean, uniform_fake_quant
from ..gaussian_steps import l2_step_from_stats
from ..registry import register_scheme
from ._common import ObservedScheme


@register_scheme
class UL2Q(ObservedScheme):
    """uL2Q: the grid of ``uniform`` with step ``c_b * std(x)`` per channel, where ``c_b`` minimises
    the expected squared error of that grid on N(0, 1) (computed with scipy, one per bitwidth);
    non-negative activations use the unsigned grid and ``c_b+ * rms(x > 0)`` (optimal for the
    half-normal). The step is floored at ``|mean| / Q``. Gradient: ``dy/dx = 1`` inside the grid,
    0 outside, plus the LSQ term ``round(x/s) - x/s`` passed through ``s`` to ``std(x)``.
    """

    name = "ul2q"

    def integer_codes(self, bits: int, unsigned: bool) -> IntegerCodes:
        low, high = grid_bounds(bits, unsigned)
        return IntegerCodes(int(low), int(high), round_to_nearest=bits > 1 or unsigned)
    tracked_stats = ("min", "std", "mean", "positive_rms")

    def l2_step(self, x: Tensor, bits: int, unsigned: bool | Tensor) -> Tensor:
        dims, norm = self.stat_dims(x), self.tensor_abs_max(x)

        def std_mean() -> tuple[Tensor, Tensor]:
            return self.memoized("std_mean", lambda: std_and_mean(x, dims, norm))

        std = self.statistic("std", lambda: std_mean()[0])
        mean = self.statistic("mean", lambda: std_mean()[1])
        rms = None if unsigned is False else self.statistic("positive_rms", lambda: positive_rms(x, dims, norm))
        return l2_step_from_stats(std, mean, rms, bits, unsigned)

    def fake_quantize(self, x: Tensor, bits: int) -> Tensor:
        unsigned = self.unsigned(x)
        return uniform_fake_quant(x, self.l2_step(x, bits, unsigned), bits, unsigned)

    def grid_spec(self, x: Tensor, bits: int):
        unsigned = self.unsigned(x)
        lo, hi = grid_bounds(bits, unsigned)
        return self.l2_step(x, bits, unsigned), 0.0, lo, hi, bits > 1 or bool(unsigned)
