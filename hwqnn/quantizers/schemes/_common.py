"""Machinery the built-in schemes share: input checks, statistics computed once per input, running
statistics for activations, and lazy initialisation of learned parameters from the first batch."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import Tensor

from ...errors import SchemeError
from ..base import AffineGrid, Scheme, check_bits
from ..functional import Dims, check_input, reduce, tiny

#: Input dtypes quantized in float32 and cast back. Their range and mantissa are too small for the grid
#: math: float16 overflows at 65504 (below the 16-bit unsigned code 65535, and below the sums that
#: statistics take), and neither holds integer codes above 2^11 (bfloat16: 2^8) exactly.
LOW_PRECISION = (torch.float16, torch.bfloat16)


def is_low_precision(x: object) -> bool:
    return torch.is_tensor(x) and x.dtype in LOW_PRECISION


class ObservedScheme(Scheme):
    """A :class:`Scheme` whose scales come from statistics of the tensor or from learned parameters.

    - Weights: statistics are recomputed from the weight on every call (per channel when ``channels``
      is given); nothing is stored.
    - Activations (always per tensor): each statistic named in ``tracked_stats`` has a buffer
      ``running_<name>`` (NaN until first seen). Training mode uses the batch value, with its gradient,
      and updates the buffer by EMA; eval mode uses the buffer, so the output of one sample does not
      depend on the rest of the batch. The first batch seen in eval mode fills an empty buffer.
    - One ``forward`` computes each statistic once, even when the continuous-bit path quantizes twice.
    - Inputs are checked to be finite on CPU (``SchemeError``); on accelerators the check is skipped
      because it costs a host sync, and a NaN input gives NaN outputs.
    - Signed or unsigned activation grid: a Python bool on CPU (free to read), a 0-d tensor elsewhere
      (no host sync); the functional helpers accept both.
    - The output has the input's dtype; float16 and bfloat16 inputs are quantized in float32
      (see :data:`LOW_PRECISION`).
    """

    #: EMA momentum of the running statistics.
    momentum: ClassVar[float] = 0.1
    #: Names of the per-tensor activation statistics kept as running buffers.
    tracked_stats: ClassVar[tuple[str, ...]] = ()

    def __init__(self, role: str = "weight", channels: int | None = None, channel_axis: int = 0):
        super().__init__(role=role, channels=channels, channel_axis=channel_axis)
        if role == "activation" and channels is not None:
            raise SchemeError(
                f"scheme '{self.name}': activations are quantized per tensor, got channels={channels!r}; "
                "pass channels=None for role='activation'"
            )
        self._memo: dict[str, Any] | None = None  # statistics of the input being quantized
        self._frozen = False  # True while affine_grid reads the state: no EMA update
        self._known: set[str] = set()  # statistics/parameters known to be initialised (avoids host syncs)
        if self.is_activation:
            for stat in self.tracked_stats:
                self.register_buffer(f"running_{stat}", torch.full((), float("nan")))

    @property
    def is_activation(self) -> bool:
        return self.role == "activation"

    # --- what subclasses implement ---------------------------------------------------------------
    @abstractmethod
    def fake_quantize(self, x: Tensor, bits: int) -> Tensor:
        """Quantize a checked, non-empty ``x`` at a validated integer ``bits``."""

    def grid_spec(self, x: Tensor, bits: int) -> tuple[Tensor, Tensor | float, Any, Any, bool] | None:
        """``(scale, zero_point, qmin, qmax, exact_on_input)`` of the output grid, or None."""
        return None

    # --- the Scheme contract -----------------------------------------------------------------------
    def forward(self, x: Tensor, bits: int | float | Tensor) -> Tensor:
        if is_low_precision(x):
            return self.forward(x.float(), bits).to(x.dtype)
        with self._observing(x):
            return super().forward(x, bits)

    def quantize(self, x: Tensor, bits: int) -> Tensor:
        bits = check_bits(bits, self.name)
        if self._memo is not None:
            return self._fake_quantize_nonempty(x, bits)
        if is_low_precision(x):
            return self.quantize(x.float(), bits).to(x.dtype)
        with self._observing(x):
            return self._fake_quantize_nonempty(x, bits)

    def affine_grid(self, x: Tensor, bits: int) -> AffineGrid | None:
        """The grid of ``quantize(x, bits)`` in the current mode; reads running statistics, never updates them."""
        bits = check_bits(bits, self.name)
        if is_low_precision(x):
            return self.affine_grid(x.float(), bits)
        with self._observing(x, frozen=True):
            spec = self.grid_spec(x, bits) if x.numel() else None
        if spec is None:
            return None
        scale, zero_point, qmin, qmax, exact = spec
        per_channel = self.stat_dims(x) is not None
        scale = scale.detach().to(x.dtype).clamp_min(tiny(x.dtype))  # a zero scale (all-zero input) is not a grid
        scale = scale.reshape(-1) if per_channel else scale.reshape(())
        zero_point = torch.as_tensor(zero_point, device=scale.device).detach()
        zero_point = zero_point.reshape(-1) if per_channel else zero_point.reshape(())
        return AffineGrid(scale=scale, zero_point=torch.broadcast_to(zero_point, scale.shape).to(torch.int32),
                          qmin=int(qmin), qmax=int(qmax), axis=self.channel_axis if per_channel else None,
                          exact_on_input=exact)

    def _fake_quantize_nonempty(self, x: Tensor, bits: int) -> Tensor:
        return x.clone() if x.numel() == 0 else self.fake_quantize(x, bits)

    @contextmanager
    def _observing(self, x: Tensor, frozen: bool = False) -> Iterator[None]:
        """Check ``x`` and open the statistics memo for it (the EMA is not updated when ``frozen``)."""
        self._check_tensor(x)
        extremes = check_input(x, self.name)
        self._memo = {} if extremes is None else {"_extremes": extremes}
        self._frozen = frozen
        try:
            yield
        finally:
            self._memo, self._frozen = None, False

    # --- statistics ----------------------------------------------------------------------------------
    def stat_dims(self, x: Tensor) -> Dims:
        """Reduction dims of a statistic: None per tensor, else all dims but ``channel_axis``."""
        if self.is_activation or self.channels is None or x.dim() == 0:
            return None
        return tuple(d for d in range(x.dim()) if d != self.channel_axis % x.dim())

    def memo(self) -> dict[str, Any]:
        """Scratch space valid while one input is being quantized (e.g. residual partial sums)."""
        return {} if self._memo is None else self._memo

    def memoized(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per input (no running statistic), e.g. a pair computed in one pass."""
        memo = self.memo()
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def statistic(self, name: str, compute: Callable[[], Tensor]) -> Tensor:
        """A statistic of the current input, computed once per input (see the class doc for activations)."""
        memo = self.memo()
        if name in memo:
            return memo[name]
        value = self._tracked(name, compute) if self.is_activation else compute()
        memo[name] = value
        return value

    def _tracked(self, name: str, compute: Callable[[], Tensor]) -> Tensor:
        running = getattr(self, f"running_{name}")
        if not self.training and self._running_known(name, running):
            return running
        batch = compute()
        if not self._frozen:
            with torch.no_grad():
                value = batch.detach().to(running.dtype).reshape(())
                running.copy_(torch.where(torch.isnan(running), value, torch.lerp(running, value, self.momentum)))
            self._known.add(name)
        return batch

    def _running_known(self, name: str, running: Tensor) -> bool:
        if name not in self._known and not bool(torch.isnan(running).any()):  # one sync, then cached
            self._known.add(name)
        return name in self._known

    def tensor_min(self, x: Tensor) -> Tensor:
        """min(x) per tensor, reusing the input check's pass when there was one."""
        extremes = self.memo().get("_extremes")
        return extremes[0] if extremes is not None else reduce(x, "amin", None)

    def tensor_max(self, x: Tensor) -> Tensor:
        """max(x) per tensor, reusing the input check's pass when there was one."""
        extremes = self.memo().get("_extremes")
        return extremes[1] if extremes is not None else reduce(x, "amax", None)

    def tensor_abs_max(self, x: Tensor) -> Tensor | None:
        """max|x| per tensor when the input check already knows it (for overflow-safe statistics)."""
        extremes = self.memo().get("_extremes")
        if extremes is None or self.stat_dims(x) is not None:
            return None
        return torch.maximum(-extremes[0], extremes[1])

    def unsigned(self, x: Tensor) -> bool | Tensor:
        """Activations: True when the (running) minimum is >= 0, e.g. after a ReLU; the grid then drops
        its negative half. Weights: False."""
        if not self.is_activation:
            return False
        nonnegative = self.statistic("min", lambda: self.tensor_min(x)) >= 0
        return bool(nonnegative) if nonnegative.device.type == "cpu" else nonnegative

    # --- learned parameters ----------------------------------------------------------------------------
    def lazy_init(self, key: str, flags: Tensor, index: int, init: Callable[[], bool]) -> bool:
        """Run ``init`` the first time ``key`` is used (``flags[index]`` records it in the state dict);
        return whether the parameter is initialised.

        ``init`` writes the parameter and returns True, or returns False without writing when the batch
        cannot set it (all zeros): the next batch then tries again.
        """
        if key in self._known:
            return True
        if not bool(flags[index]):
            with torch.no_grad():
                if not init():
                    return False
                flags[index] = True
        self._known.add(key)
        return True

    def per_channel_param(self, param: Tensor, x: Tensor) -> Tensor:
        """A (channels,) or (1,) parameter shaped to broadcast against ``x``."""
        if x.dim() == 0:
            return param.reshape(())
        return self.per_channel_view(param, x)

    def scale_count(self, x: Tensor) -> int:
        """Elements sharing one scale, as LSQ counts them (features per sample for activations)."""
        if self.is_activation:
            return max(x.numel() // x.shape[0], 1) if x.dim() > 1 else x.numel()
        return max(x.numel() // (self.channels or 1), 1)

    def _check_tensor(self, x: Tensor) -> None:
        if not torch.is_tensor(x) or self.channels is None or x.dim() == 0:
            return  # check_input reports non-tensors
        if not -x.dim() <= self.channel_axis < x.dim():
            raise SchemeError(
                f"scheme '{self.name}' quantizes channels on axis {self.channel_axis}, got a tensor of shape "
                f"{tuple(x.shape)}; create the scheme with a channel_axis the tensor has"
            )
        if x.shape[self.channel_axis] != self.channels:
            raise SchemeError(
                f"scheme '{self.name}' was built for {self.channels} channels on axis {self.channel_axis}, "
                f"got a tensor of shape {tuple(x.shape)}; create the scheme with "
                f"channels={x.shape[self.channel_axis]}"
            )

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._known.clear()  # loaded buffers decide again what is initialised
