"""The Scheme contract: one quantizing function family, bound to one tensor role.

A scheme maps a tensor and a bitwidth to a fake-quantized tensor (same shape, same dtype) with a
straight-through (or better) gradient, and declares what its output costs on hardware.

Bitwidths may be integers (a fixed policy) or a continuous tensor ``b~`` (QPL). The continuous path is
implemented once, here: the output interpolates linearly between the quantizations at floor(b~) and
floor(b~)+1, so it equals the integer quantization exactly at integer b~ and gives b~ the gradient
``Q_hi(x) - Q_lo(x)``.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from cost_models import COMPUTE_KINDS  # the compute kinds a scheme can declare; the cost models price each

from ..errors import SchemeError

ROLES = ("weight", "activation")
MIN_BITS = 1
MAX_BITS = 16


@dataclass(frozen=True)
class AffineGrid:
    """An integer grid that reproduces a scheme's output exactly (what ONNX Q/DQ export needs).

    With ``fq(v) = (clamp(round(v / scale) + zero_point, qmin, qmax) - zero_point) * scale`` and
    ``scale``/``zero_point`` per tensor (0-d) or per channel along ``axis``:

    - ``exact_on_input=True``: ``quantize(x, bits) == fq(x)``; Q/DQ nodes may be put on the raw tensor.
    - ``exact_on_input=False``: the scheme's thresholds are not round-to-nearest on this grid (binary's
      sign, ternary's 0.7*mean|x|), so only ``fq(quantize(x, bits)) == quantize(x, bits)`` holds: export
      the scheme's output (e.g. the quantized weight as integers), not Q/DQ on its input.
    """

    scale: Tensor
    zero_point: Tensor
    qmin: int
    qmax: int
    axis: int | None = None
    exact_on_input: bool = True


@dataclass(frozen=True)
class IntegerCodes:
    """The integer codes a scheme's output takes at some bits, known before any data is seen.

    Deployment checks read this to decide whether a runtime's integer container holds the scheme
    exactly: codes in ``[qmin, qmax]`` times one scale (per channel or tensor), plus a zero point when
    ``zero_point`` is true. ``round_to_nearest`` is false when the scheme's thresholds are not the grid's
    midpoints (binary's sign, ternary's 0.7*mean|x|), so a QuantizeLinear on the input would differ.
    """

    qmin: int
    qmax: int
    zero_point: bool = False
    round_to_nearest: bool = True


@dataclass(frozen=True)
class HardwareFacts:
    """What one quantized tensor costs on hardware.

    ``compute_kind`` is the arithmetic a device needs (``int`` multiply-accumulate, ``binary``
    xnor-popcount, ``shift`` for power-of-two levels, ``float``). ``bits`` is both the storage bits
    per element and the compute precision; for the ``binary`` kind with ``bits > 1`` it is the number
    of binary passes (residual binarization).
    """

    compute_kind: str
    bits: int

    def __post_init__(self) -> None:
        if self.compute_kind not in COMPUTE_KINDS:
            raise SchemeError(f"compute_kind must be one of {COMPUTE_KINDS}, got {self.compute_kind!r}")
        if not (isinstance(self.bits, int) and 1 <= self.bits <= 32):
            raise SchemeError(f"hardware bits must be an integer in [1, 32], got {self.bits!r}")


def check_bits(bits: int, scheme: str) -> int:
    """Validate an integer bitwidth; raise SchemeError naming the scheme otherwise."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise SchemeError(
            f"scheme '{scheme}' got bitwidth {bits!r}; expected an integer in [{MIN_BITS}, {MAX_BITS}]"
        )
    return bits


def check_bits_argument(bits: object, scheme: str) -> None:
    """Reject what ``Scheme.forward`` cannot read as a bitwidth (str, bool, NaN, a non-scalar tensor)."""
    if torch.is_tensor(bits):
        ok = bits.numel() == 1 and bits.dtype != torch.bool  # a NaN value is caught in forward (no extra sync)
    else:
        ok = isinstance(bits, numbers.Real) and not isinstance(bits, bool) and math.isfinite(bits)
    if not ok:
        raise SchemeError(
            f"scheme '{scheme}' got bitwidth {bits!r}; expected an int, a float or a one-element tensor "
            f"with a finite value (integers in [{MIN_BITS}, {MAX_BITS}]; tensors are clamped to that range)"
        )


class Scheme(nn.Module, ABC):
    """Base class of every quantizing scheme.

    Subclasses implement :meth:`quantize` (integer bits) and :meth:`hardware`; they may keep learned
    parameters (a step size, a clipping range) and running statistics (for activations in eval mode).

    Args:
        role: ``"weight"`` or ``"activation"``.
        channels: number of channels for per-channel scales (weights); ``None`` means per-tensor.
        channel_axis: the axis that holds the channels (0 for conv/linear weights).
    """

    #: Stable registry name.
    name: ClassVar[str] = ""
    #: Bitwidth-independent schemes (binary: 1, ternary: 2) set this; others leave it None.
    fixed_bits: ClassVar[int | None] = None

    def __init__(self, role: str = "weight", channels: int | None = None, channel_axis: int = 0):
        super().__init__()
        if role not in ROLES:
            raise SchemeError(f"scheme '{self.name}': role must be one of {ROLES}, got {role!r}")
        if channels is not None and (not isinstance(channels, int) or channels < 1):
            raise SchemeError(f"scheme '{self.name}': channels must be a positive int or None, got {channels!r}")
        self.role = role
        self.channels = channels
        self.channel_axis = channel_axis

    # --- what subclasses implement -------------------------------------------------------------
    @abstractmethod
    def quantize(self, x: Tensor, bits: int) -> Tensor:
        """Fake-quantize ``x`` at an integer bitwidth, with a straight-through-or-better gradient."""

    def hardware(self, bits: int) -> HardwareFacts:
        """Hardware facts of this scheme at ``bits`` (default: integer arithmetic at its storage bits)."""
        return HardwareFacts("int", self.effective_bits(bits))

    def integer_codes(self, bits: int, unsigned: bool) -> IntegerCodes | None:
        """Codes of the output at ``bits`` for signed or non-negative data; None if the levels are not
        integer multiples of one scale (then no integer container holds them exactly)."""
        return None

    def affine_grid(self, x: Tensor, bits: int) -> AffineGrid | None:
        """The exact integer grid of ``quantize(x, bits)``, or None if the levels are not a uniform grid."""
        return None

    def levels(self, bits: int) -> int:
        """Upper bound on the number of distinct output values (per channel) at ``bits``."""
        return 2 ** self.effective_bits(bits)

    # --- shared machinery ----------------------------------------------------------------------
    def effective_bits(self, bits: int) -> int:
        """The bits a tensor really uses: ``fixed_bits`` for binary/ternary, else ``bits``."""
        return self.fixed_bits if self.fixed_bits is not None else check_bits(int(bits), self.name)

    def forward(self, x: Tensor, bits: int | float | Tensor) -> Tensor:
        """Quantize at an integer bitwidth, or interpolate at a continuous one (QPL).

        With a tensor ``bits`` the result is ``lerp(Q(x, lo), Q(x, lo + 1), bits - lo)``, where
        ``lo = floor(bits)`` (or ``bits - 1`` at the top of the range). It equals ``Q(x, bits)``
        exactly at integer values, and ``d out / d bits = Q(x, lo + 1) - Q(x, lo)``.
        """
        check_bits_argument(bits, self.name)
        if not torch.is_tensor(bits):
            if float(bits) != int(bits):
                bits = torch.tensor(float(bits), device=x.device)
            else:
                return self.quantize(x, check_bits(int(bits), self.name))
        if self.fixed_bits is not None:
            # Bitwidth-independent: the output does not depend on b~ (its gradient is exactly 0).
            return self.quantize(x, self.fixed_bits) + 0.0 * bits.sum()
        lo, frac = self.split_bits(bits)
        frac = frac.to(x.dtype)
        q_lo = self.quantize(x, lo)
        q_hi = self.quantize(x, lo + 1)
        return torch.lerp(q_lo, q_hi, frac)

    def split_bits(self, bits: Tensor) -> tuple[int, Tensor]:
        """``(lo, frac)`` of a continuous bitwidth: ``bits = lo + frac`` with ``0 <= frac <= 1`` (``frac`` keeps
        the gradient), ``lo = floor(bits)`` clamped to ``[MIN_BITS, MAX_BITS - 1]`` so ``lo + 1`` is valid."""
        b = bits.clamp(MIN_BITS, MAX_BITS)
        b_value = float(b.detach())
        if math.isnan(b_value):
            raise SchemeError(f"scheme '{self.name}' got a NaN bitwidth tensor; check the bitwidth parameter")
        lo = min(int(math.floor(b_value)), MAX_BITS - 1)
        return lo, b - lo

    def per_channel_view(self, stat: Tensor, x: Tensor) -> Tensor:
        """Reshape a per-channel statistic so that it broadcasts against ``x`` along ``channel_axis``."""
        shape = [1] * x.dim()
        if stat.numel() > 1 and x.dim() > 0:
            shape[self.channel_axis] = -1
        return stat.reshape(shape)

    def reduce_dims(self, x: Tensor) -> tuple[int, ...]:
        """The dims to reduce for a per-channel (all but ``channel_axis``) or per-tensor statistic."""
        if self.channels is None or x.dim() == 0:
            return tuple(range(x.dim()))
        return tuple(d for d in range(x.dim()) if d != self.channel_axis % x.dim())

    def extra_repr(self) -> str:
        return f"role={self.role}, channels={self.channels}"
