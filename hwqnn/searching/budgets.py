"""Budgets: upper bounds on one cost each, absolute (``latency=2ms``) or relative to uniform w8a8 (``0.6x``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..errors import BudgetError

#: Budget metric -> the cost-report key it bounds.
METRICS = {"latency": "latency_s", "energy": "energy_j", "size": "size_bytes", "memory": "peak_memory_bytes"}
UNITS = {
    "latency": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9},
    "energy": {"j": 1.0, "mj": 1e-3, "uj": 1e-6, "µj": 1e-6, "nj": 1e-9},
    "size": {"b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1024.0, "mib": 1024.0**2, "gib": 1024.0**3},
}
UNITS["memory"] = UNITS["size"]
DISPLAY_UNIT = {"latency": ("ms", 1e-3), "energy": ("mJ", 1e-3), "size": ("KiB", 1024.0), "memory": ("KiB", 1024.0)}

#: Defaults: half the w8a8 model size and no slower than w8a8 on the device. See ``default_budgets``.
DEFAULT_BUDGETS = ("size=0.5x", "latency=1.0x")

_PATTERN = re.compile(r"^\s*(\w+)\s*=\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Zµ]*)\s*$")


@dataclass(frozen=True)
class Budget:
    """An upper bound on one metric; ``relative`` means a multiple of the uniform w8a8 cost."""

    metric: str
    value: float
    relative: bool = False

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise BudgetError(f"unknown budget metric '{self.metric}'; expected one of {sorted(METRICS)}")
        if not self.value > 0:
            raise BudgetError(f"budget {self.metric} must be positive, got {self.value}")

    @property
    def key(self) -> str:
        return METRICS[self.metric]

    def resolve(self, reference: Mapping[str, float]) -> float:
        """The absolute bound in SI units; ``reference`` holds the uniform w8a8 costs."""
        return self.value * float(reference[self.key]) if self.relative else self.value

    def __str__(self) -> str:
        if self.relative:
            return f"{self.metric}={self.value:g}x"
        unit, scale = DISPLAY_UNIT[self.metric]
        return f"{self.metric}={self.value / scale:g}{unit}"


def parse_budget(text: str) -> Budget:
    """Parse ``metric=VALUE[unit|x]``, e.g. ``latency=2ms``, ``size=1MB``, ``energy=0.7x``."""
    if isinstance(text, Budget):
        return text
    match = _PATTERN.match(str(text))
    if not match:
        raise BudgetError(f"budget {text!r} not understood; expected METRIC=VALUE[UNIT] such as latency=2ms, "
                          f"size=1MB, energy=5mJ, memory=512KiB, or a multiple of w8a8 such as latency=0.6x")
    metric, number, unit = match[1].lower(), float(match[2]), match[3]
    if metric not in METRICS:
        raise BudgetError(f"budget {text!r}: unknown metric '{metric}'; expected one of {sorted(METRICS)}")
    if unit.lower() == "x":
        return Budget(metric, number, relative=True)
    units = UNITS[metric]
    if unit == "":
        raise BudgetError(f"budget {text!r} has no unit; use one of {sorted(units)} or 'x' (relative to w8a8)")
    if unit.lower() not in units:
        raise BudgetError(f"budget {text!r}: unit '{unit}' is not a {metric} unit; use one of {sorted(units)} or 'x'")
    return Budget(metric, number * units[unit.lower()])


def parse_budgets(items: Iterable[str | Budget] | None) -> list[Budget]:
    """Parse several budgets; a metric given twice is an error."""
    budgets = [parse_budget(b) for b in (items if items is not None else DEFAULT_BUDGETS)]
    seen = set()
    for b in budgets:
        if b.metric in seen:
            raise BudgetError(f"budget metric '{b.metric}' is given more than once")
        seen.add(b.metric)
    return budgets


def resolve_budgets(budgets: Iterable[Budget], reference: Callable[[], Mapping[str, float]]) -> dict[str, float]:
    """Absolute bounds keyed by cost key; ``reference`` (w8a8 costs) is called only if a budget is relative."""
    ref = None
    out = {}
    for b in budgets:
        if b.relative and ref is None:
            ref = reference()
        out[b.key] = b.resolve(ref or {})
    return out


def format_cost(metric_or_key: str, value: float) -> str:
    metric = next((m for m, k in METRICS.items() if k == metric_or_key), metric_or_key)
    unit, scale = DISPLAY_UNIT[metric]
    return f"{value / scale:.4g} {unit}"
