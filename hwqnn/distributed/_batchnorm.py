"""BatchNorm over the global batch on any device: what ``torch.nn.SyncBatchNorm`` does, on CPU (gloo) too.

Under DDP each rank sees only its share of a batch. A plain BatchNorm would normalise with the share's
mean and variance, so the two-process forward pass would not be the one-process forward pass. Here each
training-mode BatchNorm all-reduces the per-channel sum, sum of squares and count of its input (in
float64, so the reduction adds no error beyond float32's own), normalises with the global statistics and
updates its running statistics as one process would. The all-reduce is autograd-aware
(:class:`_SumOverRanks`), so the gradient also flows through the other ranks'
statistics, as in one process. ``torch.nn.SyncBatchNorm`` is used nowhere: it refuses CPU tensors.

The modules are not replaced (their type, state-dict keys and owners stay as they are): their ``forward``
is overridden on the instance for the duration of a training phase, and :func:`synchronize_batch_norms`
returns the function that undoes it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ._context import DistributedContext


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose backward is the all-reduce of the gradient: each rank's statistics feed every
    rank's output, so every rank's gradient flows back to each rank's input."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


def global_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: Tensor) -> Tensor:
    """``bn(x)`` in training mode, with the statistics of the batch that all ranks' ``x`` form together."""
    channels = x.shape[1]
    dims = [0, *range(2, x.dim())]
    wide = x.to(torch.float64)
    count = torch.full((1,), x.numel() / max(channels, 1), dtype=torch.float64, device=x.device)
    packed = _SumOverRanks.apply(torch.cat([wide.sum(dims), (wide * wide).sum(dims), count]))
    total = packed[-1]
    mean = packed[:channels] / total
    var = (packed[channels:2 * channels] / total - mean * mean).clamp_min(0.0)
    if bn.track_running_stats:
        _update_running(bn, mean.detach(), var.detach(), float(total.detach()))
    shape = [1, channels] + [1] * (x.dim() - 2)
    scale = torch.rsqrt(var + bn.eps)
    y = (wide - mean.view(shape)) * scale.view(shape)
    y = y.to(x.dtype)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return y


@torch.no_grad()
def _update_running(bn, mean: Tensor, var: Tensor, total: float) -> None:
    bn.num_batches_tracked.add_(1)
    factor = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
    unbiased = var * (total / max(total - 1.0, 1.0))
    bn.running_mean.lerp_(mean.to(bn.running_mean.dtype), factor)
    bn.running_var.lerp_(unbiased.to(bn.running_var.dtype), factor)


def synchronize_batch_norms(model: nn.Module, context: DistributedContext) -> Callable[[], None]:
    """Make every BatchNorm of ``model`` normalise over the global batch while training; returns the undo.

    A no-op (and a no-op undo) in a single process, so one process keeps PyTorch's own BatchNorm exactly.
    """
    if not context.active or context.world_size == 1:
        return lambda: None
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.forward = _synchronized_forward(bn)

    def undo() -> None:
        for bn in norms:
            bn.__dict__.pop("forward", None)

    return undo


def _synchronized_forward(bn):
    plain = type(bn).forward

    def forward(x: Tensor) -> Tensor:
        if bn.training and x.dim() >= 2:
            return global_batch_norm(bn, x)
        return plain(bn, x)

    return forward


__all__ = ["global_batch_norm", "synchronize_batch_norms"]
