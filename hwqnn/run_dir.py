"""Run directories: what a search leaves behind, written atomically, and how to load it back.

Layout (DESIGN.md): ``policy.yaml``, ``metrics.json``, ``model.pt`` (state dict, loaded with
``weights_only=True``), ``history.csv``, ``summary.png``, and ``checkpoint.pt`` while a run is unfinished.
``metrics.json`` carries what is needed to rebuild the model: ``model``, ``num_classes``, ``input_shape``.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ._io import atomic_write_bytes, atomic_write_text
from .errors import PolicyError, RunDirError
from .policy import Policy

REQUIRED_FILES = ("policy.yaml", "metrics.json", "model.pt")


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_write_json(path: str | os.PathLike, data: dict) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


@dataclass
class LoadedRun:
    """A finished run, rebuilt: the fixed quantized model with its fine-tuned weights."""

    path: Path
    policy: Policy
    metrics: dict
    model: torch.nn.Module  # hwqnn.QuantizedModel
    example_input: torch.Tensor


def read_metrics(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory: {path.name} is missing (run 'hwqnn search' first)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path} is not valid JSON: {exc}") from None


def check_run_dir(run_dir: str | os.PathLike) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"run directory {path} does not exist")
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise RunDirError(f"{path} is not a finished run directory: missing {', '.join(missing)}")
    return path


def load_run(run_dir: str | os.PathLike) -> LoadedRun:
    """Rebuild the quantized model of a finished run (policy + fine-tuned weights)."""
    from .models import create_model
    from .qag import apply_policy

    path = check_run_dir(run_dir)
    metrics = read_metrics(path)
    for key in ("model", "num_classes", "input_shape"):
        if key not in metrics:
            raise RunDirError(f"{path / 'metrics.json'} lacks '{key}', needed to rebuild the model")
    try:
        policy = Policy.load(path / "policy.yaml")
    except PolicyError as exc:
        raise RunDirError(f"{path}: {exc}") from None
    float_model = create_model(metrics["model"], num_classes=int(metrics["num_classes"]))
    example = torch.zeros(2, *metrics["input_shape"])
    try:
        model = apply_policy(float_model, policy, example)
    except PolicyError as exc:
        raise RunDirError(f"{path}: the policy does not match model '{metrics['model']}': {exc}") from None
    try:
        state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:
        raise RunDirError(f"{path / 'model.pt'} does not load into model '{metrics['model']}': {exc}") from None
    model.eval()
    return LoadedRun(path, policy, metrics, model, example)
