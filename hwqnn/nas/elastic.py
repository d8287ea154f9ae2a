"""Elastic layers of a supernet: they run on slices of their largest weights, with bit-sharing.

Weight-sharing: a subnet's conv takes the first ``out`` filters and the first ``in`` input channels of the
largest weight, and the centre ``k x k`` of its largest kernel (once-for-all's slicing, without its kernel
transform matrices). Bit-sharing: one float weight per layer serves every bitwidth; the weight and input
quantizers are ordinary registered schemes, whose learned parameters are kept per bitwidth (e.g. LSQ's step
``step[bits - 1]`` in ``uniform``), so each bitwidth has its own step while the weight is shared.

The weight is quantized whole, then sliced: with a learned per-channel step the result is exactly the
quantization of the slice, which is what the extracted standalone subnet computes. BatchNorm statistics are
not kept per subnet: they are recalibrated for each evaluated subnet (:func:`recalibrate_bn`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..quantizers import create_scheme


class ElasticConv2d(nn.Module):
    """A conv whose active output channels, kernel size and (W, A) bits are set from outside."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 depthwise: bool = False, w_scheme: str = "uniform", a_scheme: str = "uniform"):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.depthwise = stride, depthwise
        self.weight = nn.Parameter(torch.empty(out_channels, 1 if depthwise else in_channels, kernel_size, kernel_size))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.w_quant = create_scheme(w_scheme, role="weight", channels=out_channels)
        self.a_quant = create_scheme(a_scheme, role="activation")
        self.active_out = out_channels
        self.active_kernel = kernel_size
        self.bits: tuple[int, int] | None = None  # (weight bits, activation bits); None: float

    def active_weight(self, in_channels: int) -> Tensor:
        w = self.weight if self.bits is None else self.w_quant(self.weight, self.bits[0])
        w = w[:in_channels] if self.depthwise else w[: self.active_out, :in_channels]
        k = self.active_kernel
        if k < self.kernel_size:
            start = (self.kernel_size - k) // 2
            w = w[:, :, start:start + k, start:start + k]
        return w

    def forward(self, x: Tensor) -> Tensor:
        in_channels = x.shape[1]
        if self.bits is not None:
            x = self.a_quant(x, self.bits[1])
        k = self.active_kernel
        return F.conv2d(x, self.active_weight(in_channels), None, self.stride, k // 2, 1,
                        in_channels if self.depthwise else 1)


class ElasticLinear(nn.Module):
    """A linear layer that reads the first ``in`` columns of its weight (the classifier of a supernet)."""

    def __init__(self, in_features: int, out_features: int, w_scheme: str = "uniform", a_scheme: str = "uniform"):
        super().__init__()
        ref = nn.Linear(in_features, out_features)
        self.weight, self.bias = ref.weight, ref.bias
        self.w_quant = create_scheme(w_scheme, role="weight", channels=out_features)
        self.a_quant = create_scheme(a_scheme, role="activation")
        self.bits: tuple[int, int] | None = None

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight
        if self.bits is not None:
            x = self.a_quant(x, self.bits[1])
            w = self.w_quant(w, self.bits[0])
        return F.linear(x, w[:, : x.shape[1]], self.bias)


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first ``C`` channels of its input's width (statistics and affine sliced)."""

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if momentum is None:  # cumulative average: what BN recalibration uses
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean[:c] if self.track_running_stats else None,
                            self.running_var[:c] if self.track_running_stats else None,
                            self.weight[:c], self.bias[:c], use_batch, momentum or 0.0, self.eps)


def elastic_layers(model: nn.Module) -> Iterable[tuple[str, nn.Module]]:
    """``(path, module)`` of every quantized elastic layer (convs and linears)."""
    return ((n, m) for n, m in model.named_modules() if isinstance(m, (ElasticConv2d, ElasticLinear)))


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Tensor]) -> None:
    """Reset every BatchNorm's running statistics and re-estimate them (cumulative average) on ``batches``
    with the model's current subnet and bits, then return the model to eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for images in batches:
        model(images)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()
