"""Fixtures of the quantizer tests: every registered scheme (a ninth one is covered automatically).

The suite runs with ``--import-mode=importlib``, which does not put test folders on ``sys.path``; this
folder is added so that the test modules can share the plain helpers in ``quantizer_helpers.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hwqnn.quantizers import list_schemes

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(params=list_schemes(), scope="session")  # session: usable under hypothesis
def name(request) -> str:
    return request.param


@pytest.fixture(params=("weight", "activation"), scope="session")
def role(request) -> str:
    return request.param
