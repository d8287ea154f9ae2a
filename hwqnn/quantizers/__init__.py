"""Quantizing schemes: one file per family, registered by name (see ``registry``)."""

# Importing the scheme modules registers them (binary, ternary, uniform, ul2q, pot, zoom, clip, residual).
from . import schemes as _schemes  # noqa: E402,F401
from .base import COMPUTE_KINDS, MAX_BITS, MIN_BITS, AffineGrid, HardwareFacts, Scheme
from .registry import create_scheme, get_scheme, list_schemes, register_scheme

__all__ = [
    "COMPUTE_KINDS",
    "MIN_BITS",
    "MAX_BITS",
    "AffineGrid",
    "HardwareFacts",
    "Scheme",
    "register_scheme",
    "get_scheme",
    "create_scheme",
    "list_schemes",
]
