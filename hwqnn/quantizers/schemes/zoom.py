"""Asymmetric min-max quantization with a zero point."""

from __future__ import annotations

from torch import Tensor

from ..base import IntegerCodes
from ..functional import affine_fake_quant, minmax_scale_zero_point, reduce
from ..registry import register_scheme
from ._common import ObservedScheme


@register_scheme
class Zoom(ObservedScheme):
    """Zoom: asymmetric affine ``y = (clamp(round(x/s) + z, 0, 2^b - 1) - z) * s`` over the range
    [min, max] (widened to contain 0) per channel, ``s = (max - min) / (2^b - 1)``,
    ``z = round(-min / s)``; activations use running (EMA) min and max, which suits post-ReLU tensors.
    Gradient: ``dy/dx = 1`` inside the range, 0 outside, plus the LSQ term through ``s`` to the
    min and max elements.
    """

    name = "zoom"

    def integer_codes(self, bits: int, unsigned: bool) -> IntegerCodes:
        return IntegerCodes(0, 2**bits - 1, zero_point=True)
    tracked_stats = ("min", "max")

    def _scale_zero_point(self, x: Tensor, bits: int) -> tuple[Tensor, Tensor]:
        dims = self.stat_dims(x)
        per_tensor = dims is None  # then the input check's aminmax pass already has both
        x_min = self.statistic("min", lambda: self.tensor_min(x) if per_tensor else reduce(x, "amin", dims))
        x_max = self.statistic("max", lambda: self.tensor_max(x) if per_tensor else reduce(x, "amax", dims))
        return minmax_scale_zero_point(x_min, x_max, bits)

    def fake_quantize(self, x: Tensor, bits: int) -> Tensor:
        scale, zero_point = self._scale_zero_point(x, bits)
        return affine_fake_quant(x, scale, zero_point, 0, 2**bits - 1)

    def grid_spec(self, x: Tensor, bits: int):
        scale, zero_point = self._scale_zero_point(x, bits)
        return scale, zero_point, 0, 2**bits - 1, True
