"""Supernet training by the sandwich rule with in-place distillation, resumable to the step.

Each step trains the largest subnet at the highest bits on the labels, then the smallest subnet at the lowest
bits and ``random_subnets`` random subnets with random per-layer bits on the largest one's soft outputs
(in-place distillation, BigNAS/OFA), accumulating gradients for one optimizer step. Every random draw (the
data order, augmentation, subnets) comes from a generator seeded by ``(seed, epoch, step)``, and checkpoints
hold the model, optimizer, scheduler and position, so a run killed at any point and resumed computes the
same weights as an uninterrupted one.

When continuing on new data (lifelong), a share of each batch comes from a replay sample of the old data,
and the largest subnet is also distilled from the frozen old supernet.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..data import random_crop_flip
from .config import NasConfig
from .supernet import Subnet, Supernet, random_subnet, uniform_subnet


@dataclass
class Replay:
    """Lifelong continuation: a stored sample of the old data and the frozen old supernet."""

    images: Tensor
    labels: Tensor
    teacher: Supernet


def _seed(*parts: int) -> int:
    value = 0
    for p in parts:
        value = (value * 1_000_003 + int(p) + 7) % (2**62)
    return value


def sandwich(supernet: Supernet, rng: random.Random, extra: int) -> list[Subnet]:
    """The largest subnet at the highest bits, the smallest at the lowest, and ``extra`` random ones."""
    space = supernet.space
    hi, lo = max(space.bits), min(space.bits)
    return [uniform_subnet(space, space.largest(), hi, hi), uniform_subnet(space, space.smallest(), lo, lo),
            *(random_subnet(space, rng) for _ in range(extra))]


def soft_cross_entropy(logits: Tensor, target_probs: Tensor, temperature: float) -> Tensor:
    return -(target_probs * F.log_softmax(logits / temperature, dim=1)).sum(1).mean() * temperature**2


class SupernetTrainer:
    """Owns the optimizer, the schedule and the position in the data; ``state_dict`` is a full checkpoint."""

    def __init__(self, supernet: Supernet, images: Tensor, labels: Tensor, config: NasConfig,
                 replay: Replay | None = None, epochs: int | None = None):
        self.supernet, self.images, self.labels, self.config, self.replay = supernet, images, labels, config, replay
        self.epochs = config.epochs if epochs is None else epochs
        self.steps_per_epoch = max(1, math.ceil(len(images) / config.batch_size))
        self.optimizer = torch.optim.SGD(supernet.parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay, nesterov=True)
        total = max(1, self.epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))
        self.epoch, self.step, self.history = 0, 0, []
        if replay is not None:
            replay.teacher.eval().requires_grad_(False)

    # --- one step ----------------------------------------------------------------------------------
    def _batch(self, perm: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        bs = self.config.batch_size
        gen = torch.Generator().manual_seed(_seed(self.config.seed, self.epoch, self.step, 1))
        n_replay = int(round(bs * self.config.replay_fraction)) if self.replay is not None else 0
        idx = perm[self.step * bs:(self.step + 1) * bs][: bs - n_replay] if n_replay else perm[self.step * bs:(self.step + 1) * bs]
        x, y, old = self.images[idx], self.labels[idx], None
        if n_replay:
            pick = torch.randint(0, len(self.replay.labels), (n_replay,), generator=gen)
            old = self.replay.images[pick]
            x, y = torch.cat([x, old]), torch.cat([y, self.replay.labels[pick]])
        if self.config.augment:
            x = random_crop_flip(x, gen)
            if old is not None:
                old = x[-len(old):]
        return x, y, old

    def train_step(self, perm: Tensor) -> float:
        x, y, old = self._batch(perm)
        rng = random.Random(_seed(self.config.seed, self.epoch, self.step, 2))
        self.supernet.train()
        self.optimizer.zero_grad(set_to_none=True)
        total, soft = 0.0, None
        t = self.config.distill_temperature
        for i, subnet in enumerate(sandwich(self.supernet, rng, self.config.random_subnets)):
            self.supernet.activate(subnet)
            logits = self.supernet(x)
            if i == 0:
                loss = F.cross_entropy(logits, y)
                if old is not None and self.config.distill_old > 0:
                    with torch.no_grad():
                        self.replay.teacher.activate(subnet)
                        old_probs = F.softmax(self.replay.teacher(old) / t, dim=1)
                    loss = loss + self.config.distill_old * soft_cross_entropy(logits[-len(old):], old_probs, t)
                soft = F.softmax(logits.detach() / t, dim=1)
            else:
                loss = soft_cross_entropy(logits, soft, t)  # in-place distillation from the largest subnet
            loss.backward()
            total += float(loss.detach())
        nn.utils.clip_grad_norm_(self.supernet.parameters(), 5.0)
        self.optimizer.step()
        self.scheduler.step()
        return total

    def permutation(self) -> Tensor:
        return torch.randperm(len(self.images), generator=torch.Generator().manual_seed(_seed(self.config.seed, self.epoch)))

    # --- the loop ----------------------------------------------------------------------------------
    def run(self, save: Callable[[SupernetTrainer], None] | None = None, desc: str = "supernet") -> list[dict]:
        """Train from the current position to the last epoch, calling ``save`` every ``checkpoint_every`` steps."""
        done = self.epoch * self.steps_per_epoch + self.step
        bar = tqdm(total=self.epochs * self.steps_per_epoch, initial=done, desc=desc, leave=False)
        while self.epoch < self.epochs:
            perm = self.permutation()
            running, count = 0.0, 0
            while self.step < self.steps_per_epoch:
                running += self.train_step(perm)
                count += 1
                self.step += 1
                bar.update(1)
                if save is not None and (self.epoch * self.steps_per_epoch + self.step) % self.config.checkpoint_every == 0:
                    save(self)
            self.history.append({"phase": "supernet", "epoch": self.epoch, "loss": running / max(count, 1),
                                 "lr": self.optimizer.param_groups[0]["lr"]})
            self.epoch, self.step = self.epoch + 1, 0
            if save is not None:
                save(self)
        bar.close()
        return self.history

    def state_dict(self) -> dict:
        return {"model": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "step": self.step,
                "history": copy.deepcopy(self.history), "rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.supernet.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step, self.history = int(state["epoch"]), int(state["step"]), list(state["history"])
        torch.set_rng_state(state["rng"])
