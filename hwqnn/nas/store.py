"""What an HQNAS run keeps besides the ordinary run files: the trained supernet (``supernet.pt``, with its
space, data and a replay sample of its training data) and the searched points (``front.csv``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from .._io import atomic_write_text
from ..errors import RunDirError
from ..run_dir import atomic_torch_save
from .config import NasConfig
from .search import FrontPoint
from .space import SpaceError, SpaceSpec
from .supernet import Subnet, Supernet

SUPERNET_FILE = "supernet.pt"
FRONT_FILE = "front.csv"


@dataclass
class StoredSupernet:
    supernet: Supernet
    config: NasConfig
    replay_images: Tensor
    replay_labels: Tensor
    history: list
    train_time_s: float


def save_supernet(path: Path, stored: StoredSupernet) -> None:
    atomic_torch_save({"space": stored.supernet.space.name, "num_classes": stored.supernet.num_classes,
                       "model": stored.supernet.state_dict(), "config": stored.config.to_dict(),
                       "replay_images": stored.replay_images, "replay_labels": stored.replay_labels,
                       "history": stored.history, "train_time_s": stored.train_time_s}, path / SUPERNET_FILE)


def load_supernet(run_dir: str | Path, expect_space: str | None = None) -> StoredSupernet:
    """The supernet of an HQNAS run; one clear error for a directory without one or from another space."""
    path = Path(run_dir) / SUPERNET_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} holds no trained supernet ({SUPERNET_FILE} is missing); "
                          f"pass the run directory of a finished 'hwqnn nas' run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunDirError(f"cannot read {path} ({type(exc).__name__}); it is truncated or not an HQNAS supernet") from None
    if expect_space is not None and state["space"] != expect_space:
        raise SpaceError(f"{run_dir} holds a supernet of space '{state['space']}', not '{expect_space}'; "
                         f"drop --space or pass a run of space '{expect_space}'")
    supernet = Supernet(state["space"], int(state["num_classes"]))
    supernet.load_state_dict(state["model"])
    return StoredSupernet(supernet, NasConfig.from_dict(state["config"]), state["replay_images"],
                          state["replay_labels"], list(state["history"]), float(state["train_time_s"]))


def write_front(path: Path, points: list[FrontPoint], space: SpaceSpec, front: list[FrontPoint]) -> pd.DataFrame:
    on_front = {p.subnet for p in front}
    rows = [{**p.to_dict(space), "on_front": p.subnet in on_front} for p in points]
    frame = pd.DataFrame(rows)
    for col in ("bits", "widths", "kernels", "depths"):
        if col in frame:
            frame[col] = frame[col].astype(str)
    atomic_write_text(path / FRONT_FILE, frame.to_csv(index=False))
    return frame


def read_evaluations(run_dir: str | Path, space: SpaceSpec) -> tuple[dict[Subnet, float], list[Subnet]]:
    """The inherited accuracy of every subnet a finished run evaluated (from its ``front.csv``), and its front.

    A subnet's inherited accuracy depends on the supernet and the data, not on the target, so re-targeting the
    same supernet on the same data reuses these instead of evaluating them again. Infeasible points were never
    evaluated (their accuracy is a placeholder) and are left out. A run without a ``front.csv`` gives nothing.
    """
    path = Path(run_dir) / FRONT_FILE
    if not path.is_file():
        return {}, []
    frame = pd.read_csv(path)
    known: dict[Subnet, float] = {}
    front: list[Subnet] = []
    for row in frame.itertuples(index=False):
        if not bool(row.feasible):
            continue
        subnet = Subnet.from_dict({"space": row.space, "architecture": row.architecture,
                                   "bits": json.loads(row.bits)}, space)
        known[subnet] = float(row.accuracy)
        if bool(row.on_front):
            front.append(subnet)
    return known, front


def read_nas_config(run_dir: str | Path) -> NasConfig:
    """The configuration a finished HQNAS run trained its supernet with."""
    return load_supernet(run_dir).config
