"""Quantizer statistics over the global batch under DDP, so that two ranks quantize as one process would.

An activation quantizer reads statistics of its whole input in training mode (min, max, mean, std, the
terms of a residual code, the first batch that sets a learned step) and keeps running averages of them.
Under DDP a rank sees only its share of the batch, so those statistics, and with them the forward pass,
the gradients of the scheme logits and the searched policy, would depend on the number of processes.

Here every slot that quantizes an activation gathers the ranks' shares into the global batch before it
runs (a forward pre-hook) and keeps this rank's rows of the result (a forward hook): the statistics,
the running averages and any lazy initialisation are those of the global batch, identical on every
rank. The gather is autograd-aware, so each rank's input gradient sums what every rank's loss says about
its rows, as in one process. The price: each rank quantizes the whole global batch at these slots and
exchanges the activations (an all-gather per slot and step). BatchNorms use the cheaper exchange of
sums instead (:mod:`._batchnorm`). Weight slots need nothing: the weights are identical on every rank.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ._context import DistributedContext


class _GatherRows(torch.autograd.Function):
    """Concatenate every rank's ``x`` along dim 0 (shares may differ in length by a few rows).

    Backward: the gradient of the global tensor summed over the ranks (an all-reduce, which every backend
    has), then this rank's rows of it.
    """

    @staticmethod
    def forward(ctx, x: Tensor, rows: list[int], rank: int) -> Tensor:
        widest = max(rows)
        padded = x.new_zeros((widest, *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in rows]
        dist.all_gather(parts, padded.contiguous())
        ctx.rows, ctx.rank = rows, rank
        return torch.cat([part[:n] for part, n in zip(parts, rows)])

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        start = sum(ctx.rows[: ctx.rank])
        return grad[start:start + ctx.rows[ctx.rank]], None, None


def gather_rows(x: Tensor, context: DistributedContext) -> tuple[Tensor, list[int]]:
    """The global batch that the ranks' ``x`` form together, and how many rows each rank gave."""
    mine = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
    counts = [torch.empty_like(mine) for _ in range(context.world_size)]
    dist.all_gather(counts, mine)
    rows = [int(c) for c in counts]
    return _GatherRows.apply(x, rows, context.rank), rows


def batch_slots(qmodel) -> list[nn.Module]:
    """The slots whose input is an activation: each op's activation slot, the weight slot of a matmul
    whose second operand is an activation (``q @ k^T``), and the joins' own slots."""
    slots = []
    for op in qmodel.quant_ops():
        if not getattr(op, "weight_only", False):
            slots.append(op.act_slot)
        if not getattr(op, "weight_is_param", True):
            slots.append(op.weight_slot)
    slots.extend(join.act_slot for join in qmodel.joins())
    return slots


def synchronize_batch_statistics(qmodel, context: DistributedContext) -> Callable[[], None]:
    """Make every activation slot of ``qmodel`` quantize the global batch while training; returns the undo.

    A no-op in a single process. Slots in float mode and slots in eval mode (running statistics, each
    sample on its own) are left alone.
    """
    if not context.active or context.world_size == 1:
        return lambda: None
    handles = []
    for slot in batch_slots(qmodel):
        handles += _hook(slot, context)

    def undo() -> None:
        for handle in handles:
            handle.remove()

    return undo


def _hook(slot: nn.Module, context: DistributedContext) -> list:
    layout: dict = {}

    def gather(module, args):
        layout.clear()
        if not module.training or getattr(module, "mode", None) == "float":
            return None
        x, *rest = args
        whole, rows = gather_rows(x, context)
        layout["rows"] = rows
        return (whole, *rest)

    def keep_mine(module, args, output):
        rows = layout.pop("rows", None)
        if rows is None:
            return None
        start = sum(rows[: context.rank])
        return output[start:start + rows[context.rank]]

    return [slot.register_forward_pre_hook(gather), slot.register_forward_hook(keep_mine)]


__all__ = ["gather_rows", "batch_slots", "synchronize_batch_statistics"]
