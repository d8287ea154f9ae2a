"""Residual binarization (ResQ-style): b greedy binary terms, each a binary pass on hardware."""

from __future__ import annotations

import torch
from torch import Tensor

from ..base import MAX_BITS, HardwareFacts, IntegerCodes
from ..functional import abs_mean, mask, residual_binarize
from ..registry import register_scheme
from ._common import ObservedScheme


def positive_mean(x: Tensor) -> Tensor:
    """Mean of the positive entries: the centre of a post-ReLU tensor without its spike of zeros.

    Centring on it beats centring on the plain mean (which only repeats the first term): relative
    squared error at 4 / 8 terms on ReLU(N(0, 1)), measured: 2.4% / 1.4% against 7.8% / 3.8%.
    """
    return x.sum() / mask(torch.gt, x, 0.0).sum().clamp_min(1)


@register_scheme
class Residual(ObservedScheme):
    """Residual (ResQ): ``r_0 = x``, ``t_i = a_i * sign(r_(i-1))`` with ``a_i = mean|r_(i-1)|`` per
    channel, ``r_i = r_(i-1) - t_i``, ``y = sum_(i<=b) t_i``: b binary passes, at most 2^b levels
    (non-negative activations are first centred on the mean of their positive entries). Gradient:
    ``dy/dx = 1`` for ``|x| <= sum a_i``, 0 beyond, plus the gradients of the ``a_i`` through their means.
    """

    name = "residual"

    def integer_codes(self, bits: int, unsigned: bool) -> IntegerCodes | None:
        """One term is a sign times a scale; more terms have unrelated scales: not an integer grid."""
        return IntegerCodes(0 if unsigned else -1, 1, round_to_nearest=False) if bits == 1 else None
    tracked_stats = ("min", "positive_mean", *(f"term{i}" for i in range(1, MAX_BITS + 1)))

    def hardware(self, bits: int) -> HardwareFacts:
        return HardwareFacts("binary", self.effective_bits(bits))

    def fake_quantize(self, x: Tensor, bits: int) -> Tensor:
        dims = self.stat_dims(x)

        def term_scale(index: int, residual: Tensor) -> Tensor:
            return self.statistic(f"term{index + 1}", lambda: abs_mean(residual, dims))

        cache = self.memoized("partial_sums", dict)
        unsigned = self.unsigned(x)
        from_batch = self.training or not self.is_activation  # eval-mode activations use running scales
        if unsigned is False:
            return residual_binarize(x, bits, term_scale, cache, dims, from_batch)
        centre = self.statistic("positive_mean", lambda: positive_mean(x))
        offset = centre if unsigned is True else centre * unsigned  # a 0-d bool tensor off the CPU
        return residual_binarize(x, bits, term_scale, cache, dims, from_batch, offset=offset.to(x.dtype))
