"""Fixtures of the export tests. The suite runs with ``--import-mode=importlib``; this folder is added to
``sys.path`` so the test modules can share the plain helpers in ``export_helpers.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from export_helpers import digits_split  # noqa: E402

# One thread, as in tests/searching: on a shared 2-core machine more threads only oversubscribe it.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """(train images, test images, test labels) of the embedded digits set."""
    return digits_split()
