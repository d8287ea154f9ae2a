"""The user's model, data and device, resolved and checked once, at the edge (the CLI, or a script).

Zoo models and built-in data sets go by name; a user's own are ``package.module:factory`` or
``path/to/file.py:factory`` specs. What a run directory stores is the canonical spec (file paths made
absolute), so resuming, exporting or reporting a run rebuilds the same model and data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ._factory import canonical_spec, is_factory_spec, safe_name, short_name
from .errors import DeviceError, ModelError

#: The zoo model a data set gets when --model is not given, by the data's input shape.
DEFAULT_MODELS = {(1, 8, 8): "tiny_cnn", (3, 32, 32): "resnet20"}


@dataclass
class ModelAndData:
    """A built float model with its data, and what a run directory records to rebuild them."""

    model: torch.nn.Module
    model_name: str  # zoo name or canonical factory spec
    data: object  # hwqnn.data.DatasetSplits
    meta: dict

    @property
    def display_name(self) -> str:
        """The model's short name for messages and directory names (``[A-Za-z0-9._-]``)."""
        return short_name(self.model_name) if is_factory_spec(self.model_name) else safe_name(self.model_name)


def check_device(name: str) -> None:
    """Refuse an accelerator this machine lacks before any data is loaded."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: no CUDA device is available here; use --device cpu or auto")
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DeviceError("--device mps: the Apple MPS backend is not available here; use --device cpu or auto")


def load_model_and_data(model: str | None, data: str, data_dir: str | None, *, seed: int,
                        allow_pickle: bool = False, command: str = "") -> ModelAndData:
    """Load the data, pick and build the model (seeded with ``seed``), and check that they fit."""
    from .data import load_dataset

    splits = load_dataset(data, data_dir, seed=seed, allow_pickle=allow_pickle)
    model_name = canonical_spec(model) if model and is_factory_spec(model) else (model or default_model(splits, data))
    torch.manual_seed(seed)
    float_model = build_model(model_name, splits)
    meta = {"model": model_name, "num_classes": splits.num_classes, "input_shape": list(splits.input_shape),
            "data": canonical_spec(data) if is_factory_spec(data) else splits.name,
            "data_dir": str(Path(data_dir).expanduser().resolve()) if data_dir else None,
            "command": command}
    if allow_pickle:
        meta["allow_pickle"] = True
    return ModelAndData(float_model, model_name, splits, meta)


def default_run_dir(kind: str, model: str, target: str) -> Path:
    """``runs/[<kind>-]<model>-<target>-<time>``, always inside ``runs/`` whatever the names hold."""
    import time

    parts = [kind] if kind else []
    name = "-".join([*parts, safe_name(model), safe_name(target), time.strftime("%Y%m%d-%H%M%S")])
    return Path("runs") / name


def default_model(splits, data_arg: str) -> str:
    """tiny_cnn for 8x8 grey images (digits), resnet20 for 32x32 colour (CIFAR-10)."""
    name = DEFAULT_MODELS.get(tuple(splits.input_shape))
    if name is None:
        raise ModelError(f"--data {data_arg} gives inputs of shape {tuple(splits.input_shape)}, which no default "
                         "model takes; pass --model (a zoo model, or package.module:factory for your own)")
    return name


def build_model(model_name: str, splits) -> torch.nn.Module:
    """The float model for ``splits``; a shape or class-count mismatch is one clear error, not a crash
    in the first training step."""
    from .models import create_model, model_spec

    spec = model_spec(model_name)
    if spec.input_shape is not None and tuple(spec.input_shape) != tuple(splits.input_shape):
        raise ModelError(f"model '{model_name}' expects inputs {tuple(spec.input_shape)} but data '{splits.name}' "
                         f"has {tuple(splits.input_shape)}; pick a model made for {splits.name}")
    model = create_model(model_name, num_classes=splits.num_classes)
    if is_factory_spec(model_name):
        _check_outputs(model, model_name, splits)
    return model


def _check_outputs(model: torch.nn.Module, model_name: str, splits) -> None:
    """Run a user's model once on two training inputs: it must give (batch, num_classes) logits."""
    count = min(2, len(splits.train))
    example = torch.stack([splits.train[i][0] for i in range(count)])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(example)
    except Exception as exc:
        raise ModelError(f"--model {model_name} fails on inputs of shape {tuple(example.shape)} from data "
                         f"'{splits.name}': {type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    finally:
        model.train(was_training)
    expected = (count, splits.num_classes)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(f"--model {model_name} returns {got} for a batch of {count}; expected logits of shape "
                         f"{expected} ({splits.num_classes} classes in data '{splits.name}'; a factory that "
                         "takes num_classes= is given it)")
