"""Power-of-two quantization: levels 0 and +-s * 2^-k, so a multiply becomes a shift."""

from __future__ import annotations

from torch import Tensor

from ..base import HardwareFacts, IntegerCodes
from ..functional import abs_max, pot_codes, pot_exponent_count, scaled_codes, where_unsigned
from ..registry import register_scheme
from ._common import ObservedScheme


@register_scheme
class PowerOfTwo(ObservedScheme):
    """Power-of-two: ``y = s * P(x / s)`` with ``s = max|x|`` per channel and ``P`` the nearest of 0 and
    ``+-2^-k``, ``k < 2^(b-1) - 1`` (the sign at b = 1; ``2^b - 1`` exponents and no sign for
    non-negative activations). Gradient: ``dy/dx = 1`` for ``|x| <= s`` (all of a weight), plus the
    LSQ term ``P(x/s) - x/s`` passed through ``s`` to the max element.
    """

    name = "pot"

    def integer_codes(self, bits: int, unsigned: bool) -> IntegerCodes:
        """Levels s * 2^-k are the integers 2^(n-1-k) on the grid s / 2^(n-1), n exponents."""
        exponents = int(pot_exponent_count(bits, unsigned))
        top = 2 ** (exponents - 1)
        return IntegerCodes(0 if unsigned else -top, top, round_to_nearest=exponents <= 2 and (unsigned or bits > 1))
    tracked_stats = ("min", "absmax")

    def hardware(self, bits: int) -> HardwareFacts:
        return HardwareFacts("shift", self.effective_bits(bits))

    def _scale(self, x: Tensor) -> Tensor:
        """max|x|: zero for an all-zero channel, which then quantizes to exact zeros (even at 1 bit)."""
        known = self.tensor_abs_max(x)  # per tensor, from the input check's pass
        return self.statistic("absmax", lambda: abs_max(x, self.stat_dims(x)) if known is None else known)

    def fake_quantize(self, x: Tensor, bits: int) -> Tensor:
        scale, unsigned = self._scale(x), self.unsigned(x)
        def codes_of(_: Tensor, u: Tensor) -> Tensor:  # recomputed in backward rather than kept
            return pot_codes(u, bits, unsigned)

        return scaled_codes(x, scale, codes_of, where_unsigned(unsigned, 0.0, -1.0), 1.0)

    def grid_spec(self, x: Tensor, bits: int):
        """Levels 2^-k are integers on the grid s * 2^-(n-1); exact on the input only when n <= 2."""
        scale, unsigned = self._scale(x), bool(self.unsigned(x))
        exponents = int(pot_exponent_count(bits, unsigned))
        if exponents > 31:
            return None  # codes would not fit in int32
        top = 2 ** (exponents - 1)
        exact = exponents <= 2 and (unsigned or bits > 1)
        return scale / top, 0.0, 0 if unsigned else -top, top, exact
