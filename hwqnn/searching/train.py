"""Training and evaluation steps shared by pretraining, the search and fine-tuning."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm


@torch.no_grad()
def score(model: nn.Module, loader, device: torch.device) -> tuple[int, int, float]:
    """(correct top-1, samples, summed cross-entropy) over a loader, in eval mode: sums, so shards add up."""
    was_training = model.training
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        total += int(y.numel())
    model.train(was_training)
    return correct, total, loss_sum


def accuracy_and_loss(correct: float, total: float, loss_sum: float) -> dict[str, float]:
    return {"accuracy": 100.0 * correct / max(total, 1), "loss": loss_sum / max(total, 1)}


def evaluate(model: nn.Module, loader, device: torch.device) -> dict[str, float]:
    """Top-1 accuracy (%) and mean cross-entropy over a loader, in eval mode."""
    return accuracy_and_loss(*score(model, loader, device))


def train_epoch(
    model: nn.Module,
    loader,
    optimizers: list[torch.optim.Optimizer],
    device: torch.device,
    *,
    extra_loss: Callable[[], torch.Tensor] | None = None,
    after_step: Callable[[], None] | None = None,
    loss_scale: Callable[[], float] | None = None,
    desc: str = "train",
) -> dict[str, float]:
    """One epoch of ``cross_entropy + extra_loss()``; every optimizer steps on every batch.

    ``loss_scale`` (data-parallel ranks only, see ``hwqnn.distributed.ShardedBatches``): the summed
    cross-entropy is scaled by it instead of averaged, so that DDP's average of the ranks' gradients is
    the gradient of the global batch's mean loss even when the ranks' shares differ in size. The stats
    then also hold ``images`` (this rank's share), to combine the ranks' stats with.
    """
    model.train()
    tally = _Tally()
    for x, y in tqdm(loader, desc=desc, leave=False, mininterval=1.0):
        x, y = x.to(device), y.to(device)
        logits, loss, weight = _loss(model, x, y, loss_scale)
        if extra_loss is not None:
            loss = loss + extra_loss().to(loss.dtype)
        _step(loss, optimizers, optimizers)
        if after_step is not None:
            after_step()
        tally.add(logits, y, loss, weight)
    return tally.stats(with_images=loss_scale is not None)


class _Tally:
    """An epoch's running loss (weighted as ``_loss`` says) and training accuracy."""

    def __init__(self) -> None:
        self.correct, self.total, self.loss_sum = 0, 0, 0.0

    def add(self, logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor, weight: float) -> None:
        self.loss_sum += float(loss.detach()) * weight
        self.correct += int((logits.detach().argmax(1) == y).sum())
        self.total += int(y.numel())

    def stats(self, with_images: bool) -> dict[str, float]:
        """Mean loss and accuracy; data-parallel ranks also report their image count (to combine ranks)."""
        stats = {"loss": self.loss_sum / max(self.total, 1), "train_accuracy": 100.0 * self.correct / max(self.total, 1)}
        return {**stats, "images": self.total} if with_images else stats


def _loss(model, x, y, loss_scale):
    """(logits, loss, the batch's weight in the epoch's mean loss): the mean cross-entropy, or on a
    data-parallel rank the summed one times ``loss_scale()``, weighted by this rank's nominal share (the
    global loss is the mean of the ranks' losses)."""
    logits = model(x)
    if loss_scale is None:
        return logits, F.cross_entropy(logits, y), int(y.numel())
    scale = loss_scale()
    return logits, F.cross_entropy(logits, y, reduction="sum") * scale, 1.0 / scale


def _step(loss: torch.Tensor, zeroed, stepped) -> None:
    """Backpropagate ``loss`` into fresh gradients of ``zeroed``'s parameters and step ``stepped``."""
    for opt in zeroed:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for opt in stepped:
        opt.step()


def alternating_epoch(
    model: nn.Module,
    weight_loader,
    arch_loader,
    weight_optimizers: list[torch.optim.Optimizer],
    arch_optimizers: list[torch.optim.Optimizer],
    device: torch.device,
    *,
    extra_loss: Callable[[], torch.Tensor] | None = None,
    after_arch_step: Callable[[], None] | None = None,
    loss_scales: tuple[Callable[[], float] | None, Callable[[], float] | None] = (None, None),
    desc: str = "train",
) -> dict[str, float]:
    """One epoch of bilevel (first-order DNAS) updates: per weight batch, a weight step on its
    cross-entropy, then an architecture step on ``cross_entropy + extra_loss()`` of the next batch of the
    held-out ``arch_loader`` (restarted when it runs out). Each optimizer sees only its own step's gradients."""
    model.train()
    tally = _Tally()
    arch_batches = iter(arch_loader)
    for x, y in tqdm(weight_loader, desc=desc, leave=False, mininterval=1.0):
        x, y = x.to(device), y.to(device)
        logits, loss, weight = _loss(model, x, y, loss_scales[0])
        _step(loss, (*weight_optimizers, *arch_optimizers), weight_optimizers)
        try:
            ax, ay = next(arch_batches)
        except StopIteration:
            arch_batches = iter(arch_loader)
            ax, ay = next(arch_batches)
        _, arch_loss, _ = _loss(model, ax.to(device), ay.to(device), loss_scales[1])
        if extra_loss is not None:
            arch_loss = arch_loss + extra_loss().to(arch_loss.dtype)
        _step(arch_loss, (*weight_optimizers, *arch_optimizers), arch_optimizers)
        if after_arch_step is not None:
            after_arch_step()
        tally.add(logits, y, loss, weight)
    return tally.stats(with_images=loss_scales[0] is not None)
