"""Shared fixtures: small workloads built from real layers (no weights downloaded)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cost_models import extract_workload


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 8 * 8, 10),
    )


@pytest.fixture
def small_cnn_model() -> nn.Module:
    torch.manual_seed(0)
    return small_cnn()


@pytest.fixture(scope="session")
def small_workload():
    torch.manual_seed(0)
    return extract_workload(small_cnn(), torch.randn(1, 3, 32, 32))


@pytest.fixture(scope="session")
def resnet18_workload():
    from cost_models.reference_workloads import reference_workload

    return reference_workload("resnet18", 224)
