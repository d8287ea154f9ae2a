"""Sign-based schemes: binary (BWN / XNOR-Net) and ternary (TWN)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..base import HardwareFacts, IntegerCodes
from ..functional import (
    TWN_THRESHOLD,
    abs_mean,
    by_sign,
    mask,
    scaled_codes,
    sign_codes,
    tiny,
    twn_scale,
    where_unsigned,
)
from ..registry import register_scheme
from ._common import ObservedScheme


class _TwnStatistics(ObservedScheme):
    """mean|x| and TWN's scale (mean |x| above 0.7 * mean|x|), per channel or tracked for activations."""

    def abs_mean(self, x: Tensor) -> Tensor:
        return self.statistic("absmean", lambda: abs_mean(x, self.stat_dims(x)))

    def twn_threshold_and_scale(self, x: Tensor) -> tuple[Tensor, Tensor]:
        threshold = TWN_THRESHOLD * self.abs_mean(x).detach()
        scale = self.statistic("twn_scale", lambda: twn_scale(x, threshold, self.stat_dims(x)))
        return threshold, scale.clamp_min(tiny(x.dtype))


@register_scheme
class Binary(_TwnStatistics):
    """Binary: ``y = a * sign(x)``, ``a = mean|x|`` per channel, sign(0) = +1 (BWN / XNOR-Net): the grid
    {-a, +a} has no zero, so a zero maps to +a, a level nearest to it; an all-zero channel has ``a = 0``
    and stays exactly 0.
    Non-negative activations get ``{0, s}`` instead: ``y = s * [x > 0.7 * mean x]``, ``s`` = mean of
    ``x`` above that threshold (TWN's rule on one side). Gradient: straight-through, ``dy/dx = 1`` where
    ``|x| <= a`` and 0 beyond, plus the scale's own path (as XNOR-Net keeps it): ``dy/da = sign(x) - x/a``
    inside, ``sign(x)`` beyond, passed to ``x`` through ``a = mean|x|``.
    """

    name = "binary"
    fixed_bits = 1

    def integer_codes(self, bits: int, unsigned: bool) -> IntegerCodes:
        return IntegerCodes(0 if unsigned else -1, 1, round_to_nearest=False)
    tracked_stats = ("min", "absmean", "twn_scale")

    def hardware(self, bits: int) -> HardwareFacts:
        return HardwareFacts("binary", self.effective_bits(bits))

    def levels(self, bits: int) -> int:
        return 2

    def _codes_and_scale(self, x: Tensor):
        """(codes as a function ``codes_of(v, u)``, scale, lowest code): ScaledCodes recomputes the codes in
        backward instead of keeping them."""
        unsigned = self.unsigned(x)

        def one_sided() -> tuple[Tensor, Tensor]:
            threshold, scale = self.twn_threshold_and_scale(x)
            return threshold.detach(), scale

        def two_sided() -> tuple[Tensor, Tensor]:
            scale = self.abs_mean(x)  # zero for an all-zero channel: the output is then 0
            return torch.zeros_like(scale.detach()), scale  # (no threshold: the sign grid)

        threshold, scale = by_sign(unsigned, one_sided, two_sided)

        def codes_of(v: Tensor, _: Tensor) -> Tensor:
            return by_sign(unsigned, lambda: mask(torch.gt, v, threshold), lambda: sign_codes(v))

        return codes_of, scale, where_unsigned(unsigned, 0.0, -1.0)

    def fake_quantize(self, x: Tensor, bits: int) -> Tensor:
        codes, scale, lo = self._codes_and_scale(x)
        return scaled_codes(x, scale, codes, lo, 1.0)

    def grid_spec(self, x: Tensor, bits: int):
        _, scale, lo = self._codes_and_scale(x)
        return scale, 0.0, lo, 1, False


@register_scheme
class Ternary(_TwnStatistics):
    """Ternary (TWN): ``y = s * sign(x) * [|x| > D]`` with ``D = 0.7 * mean|x|`` and the L2-optimal
    ``s`` = mean of |x| over the entries above ``D``, per channel. Gradient: straight-through,
    ``dy/dx = 1`` where ``|x| <= s`` and 0 beyond, plus ``dy/ds = t - x/s`` inside (``t`` in {-1, 0, 1}),
    ``t`` beyond, passed to ``x`` through the mean that defines ``s``. Non-negative inputs need no
    special case: they use the levels {0, s}.
    """

    name = "ternary"
    fixed_bits = 2

    def integer_codes(self, bits: int, unsigned: bool) -> IntegerCodes:
        return IntegerCodes(0 if unsigned else -1, 1, round_to_nearest=False)
    tracked_stats = ("absmean", "twn_scale")

    def levels(self, bits: int) -> int:
        return 3

    def fake_quantize(self, x: Tensor, bits: int) -> Tensor:
        threshold, scale = self.twn_threshold_and_scale(x)
        threshold = threshold.detach()

        def codes_of(v: Tensor, _: Tensor) -> Tensor:  # recomputed in backward rather than kept
            # sign(v) * [|v| > D] in three passes and one new tensor (a zero code may carry v's sign: -0.0 == 0)
            magnitude = v.abs()
            return torch.gt(magnitude, threshold, out=magnitude).copysign_(v)

        return scaled_codes(x, scale, codes_of, -1.0, 1.0)

    def grid_spec(self, x: Tensor, bits: int):
        return self.twn_threshold_and_scale(x)[1], 0.0, -1, 1, False
