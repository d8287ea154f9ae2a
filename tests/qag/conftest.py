"""Shared fixtures of the QAG tests: zoo models with an example input, conversions cached per session
(for read-only checks), and a convert without QAG's warnings."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

import hwqnn
from hwqnn.models import create_model, model_spec

if str(Path(__file__).parent) not in sys.path:  # --import-mode=importlib: share the plain helpers in sweep.py
    sys.path.insert(0, str(Path(__file__).parent))


@dataclass(frozen=True)
class ZooConversion:
    """A zoo model, its example input, its default conversion, and the QAG warnings that conversion gave."""

    model: nn.Module
    example: torch.Tensor
    qmodel: hwqnn.QuantizedModel
    qag_warnings: tuple[str, ...]


def _zoo_model_and_input(name: str, batch_size: int = 2, seed: int = 0, **model_kwargs) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model = create_model(name, **model_kwargs).eval()
    example = torch.randn(batch_size, *model_spec(name).input_shape)
    return model, example


def _convert_quietly(model: nn.Module, example, **kwargs) -> hwqnn.QuantizedModel:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="QAG:")
        return hwqnn.convert(model, example, **kwargs)


@pytest.fixture
def zoo() -> Callable[..., tuple[nn.Module, torch.Tensor]]:
    """``zoo(name, batch_size=2, seed=0, **model_kwargs)``: a seeded zoo model in eval mode and a random batch."""
    return _zoo_model_and_input


@pytest.fixture
def quiet_convert() -> Callable[..., hwqnn.QuantizedModel]:
    """``hwqnn.convert`` with QAG's fallback warnings silenced (warning tests call convert directly)."""
    return _convert_quietly


@pytest.fixture(scope="session")
def converted_zoo() -> Callable[[str], ZooConversion]:
    """``converted_zoo(name)``: one default conversion per zoo model per session. Tests must not modify it."""
    cache: dict[str, ZooConversion] = {}

    def get(name: str) -> ZooConversion:
        if name not in cache:
            model, example = _zoo_model_and_input(name)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                qmodel = hwqnn.convert(model, example)
            messages = tuple(str(w.message) for w in caught if str(w.message).startswith("QAG:"))
            cache[name] = ZooConversion(model, example, qmodel, messages)
        return cache[name]

    return get
