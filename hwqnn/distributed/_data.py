"""Data for data-parallel training: each rank trains on its rows of the very batches one process would see.

Every rank iterates the single-process loader (same seed, so the same permutation and the same
augmentation draws) and keeps its contiguous share of each global batch (``torch.tensor_split``: sizes
differ by at most one). So the union of the ranks' k-th batches is, sample for sample, the k-th batch of
a one-process run: nothing is padded or dropped, and a run resumed with another number of processes sees
the same data it would have seen. The price is that each rank indexes (and augments) the whole global
batch; hwqnn's datasets are in-memory tensors, where that costs far less than the forward pass.

A short last batch splits unevenly, and DDP averages the ranks' gradients with equal weights, so each rank
scales its summed loss by ``world_size / global_batch`` (see :meth:`ShardedBatches.loss_scale`): the
averaged gradient is then the gradient of the global batch's mean loss, as in one process.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Subset

from ._collectives import all_reduce_sums
from ._context import DistributedContext
from ._errors import DistributedError


def per_rank_batch(global_batch: int, world_size: int) -> int:
    """The batch each rank trains on; the global batch must split evenly (or the gradient is not the same)."""
    if global_batch % world_size:
        fits = [n for n in range(1, global_batch + 1) if global_batch % n == 0 and n <= 64]
        raise DistributedError(f"the global batch size {global_batch} does not split evenly over {world_size} "
                               f"processes; run with a number of processes that divides it ({', '.join(map(str, fits))}) "
                               f"or choose another --batch-size")
    return global_batch // world_size


class ShardedBatches:
    """This rank's rows of each batch of ``loader`` (the single-process loader, iterated on every rank)."""

    def __init__(self, loader: DataLoader, context: DistributedContext):
        self.loader, self.context = loader, context
        self._global_rows = 0
        remainder = len(loader.dataset) % loader.batch_size
        if 0 < remainder < context.world_size:
            raise DistributedError(f"the last batch of an epoch has {remainder} image(s), too few for {context.world_size} "
                                   f"processes (each needs one); choose a --batch-size that leaves a remainder of 0 "
                                   f"or at least {context.world_size} of the {len(loader.dataset)} training images")

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y, *rest in self.loader:
            self._global_rows = int(y.shape[0])
            rank = self.context.rank
            yield (torch.tensor_split(x, self.context.world_size)[rank],
                   torch.tensor_split(y, self.context.world_size)[rank],
                   *(torch.tensor_split(t, self.context.world_size)[rank] for t in rest))

    def loss_scale(self) -> float:
        """The factor of this rank's summed loss on the batch last yielded: ``world_size / global rows``."""
        return self.context.world_size / max(self._global_rows, 1)


def sharded_loader(dataset, global_batch: int, seed: int, context: DistributedContext, *,
                   augment: bool = False) -> ShardedBatches:
    """This rank's share of every batch of ``make_loader(dataset, global_batch, seed=seed)``."""
    from ..data import make_loader

    per_rank_batch(global_batch, context.world_size)
    return ShardedBatches(make_loader(dataset, global_batch, train=True, augment=augment, seed=seed), context)


def loss_scale_of(loader):
    """The per-batch loss scale of a sharded loader, or None for a single-process loader (mean loss)."""
    return loader.loss_scale if isinstance(loader, ShardedBatches) else None


def eval_shard(dataset, context: DistributedContext):
    """Every N-th item from this rank's offset: the shards cover the set exactly once (no padding)."""
    return Subset(dataset, range(context.rank, len(dataset), context.world_size))


def evaluate_sharded(model, dataset, device: torch.device, context: DistributedContext,
                     batch_size: int = 256) -> dict[str, float]:
    """Top-1 accuracy (%) and mean cross-entropy over the whole ``dataset``, each rank scoring its shard."""
    from ..searching.train import accuracy_and_loss, score

    loader = DataLoader(eval_shard(dataset, context), batch_size=batch_size, shuffle=False)
    return accuracy_and_loss(*all_reduce_sums(context, score(model, loader, device)))


__all__ = ["per_rank_batch", "sharded_loader", "ShardedBatches", "loss_scale_of", "eval_shard", "evaluate_sharded"]
