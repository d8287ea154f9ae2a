"""Unit strings in hardware profiles ("20 TOPS", "25.6 GB/s", "0.2 pJ", "8 MiB", "20 us") parsed to SI.

Each profile field has one dimension; a value is either a bare number (taken as already in SI) or a
string ``"<number> <unit>"`` whose unit must belong to that dimension.
"""

from __future__ import annotations

import math
import re

_SI_PREFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_SMALL_PREFIX = {"": 1.0, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}
_BINARY_PREFIX = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}


def _table() -> dict[str, dict[str, float]]:
    units: dict[str, dict[str, float]] = {
        "throughput": {"ops/s": 1.0, "op/s": 1.0},
        "bandwidth": {},
        "size": {},
        "energy": {},
        "energy_per_byte": {},
        "time": {},
        "frequency": {},
        "dimensionless": {"": 1.0, "%": 0.01},
        "count": {"": 1.0},
    }
    for prefix, scale in _SI_PREFIX.items():
        units["throughput"][f"{prefix}OPS"] = scale
        units["throughput"][f"{prefix}FLOPS"] = scale
        units["throughput"][f"{prefix}MAC/s"] = 2 * scale  # one multiply-accumulate is two operations
        units["bandwidth"][f"{prefix}B/s"] = scale
        units["bandwidth"][f"{prefix}bit/s"] = scale / 8
        units["bandwidth"][f"{prefix}b/s"] = scale / 8
        units["size"][f"{prefix}B"] = scale
        units["frequency"][f"{prefix}Hz"] = scale
    for prefix, scale in _BINARY_PREFIX.items():
        units["bandwidth"][f"{prefix}B/s"] = scale
        units["size"][f"{prefix}B"] = scale
    for prefix, scale in _SMALL_PREFIX.items():
        units["energy"][f"{prefix}J"] = scale
        units["energy"][f"{prefix}J/MAC"] = scale
        units["energy_per_byte"][f"{prefix}J/B"] = scale
        units["energy_per_byte"][f"{prefix}J/byte"] = scale
        units["energy_per_byte"][f"{prefix}J/bit"] = scale * 8
        units["time"][f"{prefix}s"] = scale
    return units


UNITS = _table()
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*$")


class UnitError(ValueError):
    """A value's unit is unknown or belongs to another dimension (the profile loader adds file and field)."""


def parse_quantity(value: object, dimension: str) -> float:
    """Return ``value`` in SI units of ``dimension`` (ops/s, B/s, B, J, J/B, s, Hz, or a plain number)."""
    if dimension not in UNITS:
        raise KeyError(f"unknown dimension {dimension!r}")
    if isinstance(value, bool):
        raise UnitError(f"expected a number or a '<number> <unit>' string, got a boolean {value!r}")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range
            raise UnitError(f"an integer of {value.bit_length()} bits is too large for a number") from None
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if not match:
            raise UnitError(f"cannot read {value!r} as '<number> <unit>' (e.g. {example(dimension)!r})")
        unit = match[2]
        if unit not in UNITS[dimension]:
            raise UnitError(f"unit {unit!r} in {value!r} is not a unit of {dimension}; "
                            f"use one of {', '.join(common_units(dimension))} (e.g. {example(dimension)!r})")
        number = float(match[1]) * UNITS[dimension][unit]
    else:
        raise UnitError(f"expected a number or a '<number> <unit>' string, got {type(value).__name__} {value!r}")
    if not math.isfinite(number):
        raise UnitError(f"value {value!r} is not finite")
    return number


def common_units(dimension: str) -> list[str]:
    """The units of a dimension worth suggesting in an error (no prefix variants nobody writes)."""
    return {
        "throughput": ["OPS", "GOPS", "TOPS", "GFLOPS", "TFLOPS", "GMAC/s"],
        "bandwidth": ["MB/s", "GB/s", "GiB/s", "Gbit/s"], "size": ["B", "KiB", "MiB", "GiB", "kB", "MB", "GB"],
        "energy": ["fJ", "pJ", "nJ"], "energy_per_byte": ["pJ/B", "pJ/bit", "nJ/B"], "time": ["ns", "us", "ms", "s"],
        "frequency": ["MHz", "GHz"], "dimensionless": ["a plain number", "%"], "count": ["a plain number"],
    }[dimension]


def example(dimension: str) -> str:
    return {
        "throughput": "20 TOPS", "bandwidth": "25.6 GB/s", "size": "8 MiB", "energy": "0.2 pJ",
        "energy_per_byte": "20 pJ/B", "time": "20 us", "frequency": "1.3 GHz", "dimensionless": "0.5",
        "count": "8",
    }[dimension]
