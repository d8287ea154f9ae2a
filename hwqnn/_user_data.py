"""A user's own data set, from a ``package.module:factory`` or ``path/to/file.py:factory`` spec.

The factory (called with ``data_dir=`` and ``seed=`` if it accepts them) returns an object with ``.train``
and ``.test`` (map-style datasets of ``(input tensor, int label)``) and optionally ``.num_classes``,
``.input_shape``, ``.name`` and ``.classes``, or a tuple ``(train, test)``. What it does not declare is
inferred from the data. Everything is checked here, so a bad split fails with the spec's name instead of
deep inside the first training step.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from ._factory import accepts_keyword, call_factory, load_factory, short_name, type_phrase
from .data import DatasetSplits
from .errors import DataError

log = logging.getLogger(__name__)


def load_user_data(spec: str, data_dir: str | Path | None, seed: int) -> DatasetSplits:
    """Call a ``module:factory`` data factory and check what it returns, so a bad split fails here with
    the spec's name rather than deep inside training."""
    factory = load_factory(spec, flag="--data", error_type=DataError)
    offered = {"seed": seed, **({"data_dir": str(data_dir)} if data_dir is not None else {})}
    kwargs = {key: value for key, value in offered.items() if accepts_keyword(factory, key)}
    result = call_factory(factory, spec, flag="--data", error_type=DataError, **kwargs)
    if isinstance(result, (tuple, list)) and len(result) == 2:
        train, test, declared = result[0], result[1], None
    elif hasattr(result, "train") and hasattr(result, "test"):
        train, test, declared = result.train, result.test, result
    else:
        raise DataError(f"--data {spec}: the factory returned {type_phrase(result)}, expected an object with "
                        ".train and .test (map-style datasets of (input, label)) or a tuple (train, test)")
    train_shape = _check_split(train, "train", spec)
    test_shape = _check_split(test, "test", spec)
    if test_shape != train_shape:
        raise DataError(f"--data {spec}: train inputs have shape {train_shape} but test inputs {test_shape}")
    input_shape = getattr(declared, "input_shape", None)
    if input_shape is not None and tuple(input_shape) != train_shape:
        raise DataError(f"--data {spec}: input_shape says {tuple(input_shape)} but the inputs have shape {train_shape}")
    num_classes = _num_classes(train, test, getattr(declared, "num_classes", None), spec)
    classes = getattr(declared, "classes", None)
    classes = [str(c) for c in classes] if classes is not None else [str(c) for c in range(num_classes)]
    if data_dir is not None and not accepts_keyword(factory, "data_dir"):
        log.info("--data %s does not take data_dir; %s is ignored", spec, data_dir)
    name = getattr(declared, "name", None) or short_name(spec)
    return DatasetSplits(train=train, test=test, num_classes=num_classes, input_shape=train_shape,
                         classes=classes, name=str(name))


def _check_split(split, which: str, spec: str) -> tuple[int, ...]:
    """The input shape of a non-empty map-style split of ``(tensor, int label)`` items."""
    if not (hasattr(split, "__len__") and hasattr(split, "__getitem__")):
        raise DataError(f"--data {spec}: the {which} split is {type_phrase(split)}; expected a map-style "
                        "dataset (with __len__ and __getitem__) of (input, label)")
    try:
        size = len(split)
        item = split[0] if size else None
    except Exception as exc:
        raise DataError(f"--data {spec}: reading the {which} split failed: {type(exc).__name__}: {exc}") from exc
    if size == 0:
        raise DataError(f"--data {spec}: the {which} split is empty; both splits need at least one example")
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise DataError(f"--data {spec}: {which}[0] is {type_phrase(item)}; expected an (input, label) pair")
    inputs, label = item[0], item[1]
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point():
        what = f"{inputs.dtype} tensor" if isinstance(inputs, Tensor) else type(inputs).__name__
        raise DataError(f"--data {spec}: {which}[0] has an input of type {what}; expected a float torch.Tensor "
                        "(convert with torch.as_tensor(x, dtype=torch.float32))")
    if not _is_int_label(label):
        raise DataError(f"--data {spec}: {which}[0] has label {label!r}; expected an int class index")
    return tuple(inputs.shape)


def _is_int_label(label) -> bool:
    if isinstance(label, Tensor):
        return label.numel() == 1 and not label.is_floating_point() and label.dtype is not torch.bool
    return isinstance(label, (int, np.integer)) and not isinstance(label, bool)


def _labels(split) -> Tensor:
    """All labels of a split: from TensorDataset's or torchvision's label tensors, else item by item."""
    if isinstance(split, TensorDataset) and len(split.tensors) >= 2:
        return split.tensors[1].flatten()
    if getattr(split, "targets", None) is not None:
        return torch.as_tensor(np.asarray(split.targets)).flatten()
    return torch.as_tensor([int(split[i][1]) for i in range(len(split))])


def _num_classes(train, test, declared, spec: str) -> int:
    try:
        labels = torch.cat([_labels(train), _labels(test)])
    except Exception as exc:
        raise DataError(f"--data {spec}: cannot read the labels: {type(exc).__name__}: {exc}") from exc
    lowest, highest = int(labels.min()), int(labels.max())
    if lowest < 0:
        raise DataError(f"--data {spec}: labels span {lowest}..{highest}; expected class indices from 0")
    if declared is None:
        return highest + 1
    if isinstance(declared, bool) or not isinstance(declared, int) or declared < 1:
        raise DataError(f"--data {spec}: num_classes is {declared!r}; expected a positive int")
    if highest >= declared:
        raise DataError(f"--data {spec}: labels span {lowest}..{highest} but num_classes is {declared}")
    return declared
