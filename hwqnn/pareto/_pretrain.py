"""Pretrain the float model once per sweep (or report), optionally cached as a state dict on disk.

Every sweep point and every baseline then starts from the same float weights with ``pretrain_epochs=0``.
The loop mirrors the search's own pretraining phase (AdamW, cosine schedule, same batch size and augmentation).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import RunDirError
from ..run_dir import atomic_torch_save, atomic_write_json
from ..searching.config import SearchConfig

log = logging.getLogger(__name__)


@dataclass
class PretrainedFloat:
    model: nn.Module
    accuracy: float  # % on the held-out split
    seconds: float  # 0 when loaded from the cache
    loaded_from: Path | None = None
    epochs: int = 0  # how many epochs produced these weights (from the cache's record when loaded)
    info: dict = field(default_factory=dict)


def pretrain_float(model: nn.Module, train_data, val_data, config: SearchConfig, *,
                   cache: str | Path | None = None) -> PretrainedFloat:
    """Train ``model`` in float for ``config.pretrain_epochs`` (or load ``cache`` if it exists; else save it)."""
    from ..data import make_loader
    from ..searching.runner import resolve_device
    from ..searching.train import evaluate, train_epoch

    device = resolve_device(config.device)
    cache = Path(cache) if cache else None
    val_loader = make_loader(val_data, 256, train=False)
    if cache is not None and cache.is_file():
        try:
            state = torch.load(cache, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:
            raise RunDirError(f"cached float weights {cache} do not load into {type(model).__name__}: {exc}; "
                              f"delete the file or pass another --float-weights path") from None
        model.to(device)
        accuracy = evaluate(model, val_loader, device)["accuracy"]
        info = read_pretrain_info(cache)
        log.info("loaded float weights from %s (accuracy %.2f%%)", cache, accuracy)
        return PretrainedFloat(model, accuracy, 0.0, cache, int(info.get("epochs", 0)), info)
    start = time.perf_counter()
    model.to(device)
    epochs = config.pretrain_epochs
    if epochs > 0:
        torch.manual_seed(config.seed)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        for epoch in tqdm(range(epochs), desc="pretrain (float, once)", unit="epoch"):
            loader = make_loader(train_data, config.batch_size, train=True, augment=config.augment,
                                 seed=config.seed * 100_003 + epoch)
            train_epoch(model, loader, [opt], device, desc=f"pretrain {epoch + 1}/{epochs}")
            sched.step()
    accuracy = evaluate(model, val_loader, device)["accuracy"]
    seconds = time.perf_counter() - start
    info = {"epochs": epochs, "images": len(train_data), "accuracy": accuracy, "seconds": seconds,
            "config": config.to_dict()}
    if cache is not None:
        atomic_torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, cache)
        atomic_write_json(info_path(cache), info)
        log.info("saved float weights to %s", cache)
    return PretrainedFloat(model, accuracy, seconds, None, epochs, info)


def info_path(cache: Path) -> Path:
    """Where the cache's training record lives: next to it, ``<name>.json``."""
    return cache.with_suffix(".json")


def read_pretrain_info(cache: Path) -> dict:
    """How the cached weights were trained (epochs, images, accuracy, seconds); empty if unrecorded."""
    path = info_path(cache)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        log.warning("ignoring unreadable %s", path)
        return {}
