"""Budgets: upper bounds on one cost each, absolute (``latency=2ms``) or relative to uniform w8a8 (``0.6x``)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Real

import numpy as np

from cost_models import BUDGET_METRICS

from ..errors import BudgetError

#: Budget metric -> the cost-report key it bounds (owned by cost_models.CostMetric).
METRICS = BUDGET_METRICS
UNITS = {
    "latency": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9},
    "energy": {"j": 1.0, "mj": 1e-3, "uj": 1e-6, "µj": 1e-6, "nj": 1e-9},
    "size": {"b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1024.0, "mib": 1024.0**2, "gib": 1024.0**3},
}
UNITS["memory"] = UNITS["size"]
DISPLAY_UNIT = {"latency": ("ms", 1e-3), "energy": ("mJ", 1e-3), "size": ("KiB", 1024.0), "memory": ("KiB", 1024.0)}
#: Byte units from large to small: a byte count prints in the largest one that keeps it >= 1.
BYTE_UNITS = (("GiB", 1024.0**3), ("MiB", 1024.0**2), ("KiB", 1024.0), ("B", 1.0))

#: Defaults: half the w8a8 model size and no slower than w8a8 on the device. See ``default_budgets``.
DEFAULT_BUDGETS = ("size=0.5x", "latency=1.0x")
#: Defaults where the runtime stores weights in fixed containers (TensorRT, TFLite int8): no policy is
#: smaller than w8a8 there, so a size budget below 1x could never be met.
CONTAINER_DEFAULT_BUDGETS = ("latency=1.0x",)


def default_budgets(profile) -> tuple[str, ...]:
    """The budgets a search uses when none are given: a size budget only where bits shrink the model."""
    deployment = getattr(profile, "deployment", None)
    if deployment is not None and deployment.storage == "container":
        return CONTAINER_DEFAULT_BUDGETS
    return DEFAULT_BUDGETS

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
        value = self.value
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not value > 0:
            raise BudgetError(f"budget {self.metric} must be a finite number > 0, got {value!r}")

    @property
    def key(self) -> str:
        return METRICS[self.metric]

    def resolve(self, reference: Mapping[str, float]) -> float:
        """The absolute bound in SI units; ``reference`` holds the uniform w8a8 costs."""
        return self.value * float(reference[self.key]) if self.relative else self.value

    def __str__(self) -> str:
        if self.relative:
            return f"{self.metric}={plain_number(self.value, 6)}x"
        unit, scale = _display_unit(self.metric, self.value)
        return f"{self.metric}={plain_number(self.value / scale, 6)}{unit}"


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
        return Budget(metric, _finite_positive(number, text), relative=True)
    units = UNITS[metric]
    if unit == "":
        raise BudgetError(f"budget {text!r} has no unit; use one of {sorted(units)} or 'x' (relative to w8a8)")
    if unit.lower() not in units:
        raise BudgetError(f"budget {text!r}: unit '{unit}' is not a {metric} unit; use one of {sorted(units)} or 'x'")
    return Budget(metric, _finite_positive(number * units[unit.lower()], text))


def _finite_positive(value: float, text: str) -> float:
    """``value`` if it is a usable bound; one BudgetError naming the budget text otherwise."""
    if not math.isfinite(value):
        raise BudgetError(f"budget {text!r} is too large to be a number; give a finite bound such as latency=2ms")
    if not value > 0:
        raise BudgetError(f"budget {text!r} must be positive (> 0); a zero or vanishing bound admits no policy")
    return value


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
    """A cost for people: bytes in B / KiB / MiB / GiB, latency in ms, energy in mJ, 4 significant digits,
    never in scientific notation; ``n/a`` for a value that is not a finite number."""
    metric = next((m for m, k in METRICS.items() if k == metric_or_key), metric_or_key)
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    unit, scale = _display_unit(metric, float(value))
    return f"{plain_number(float(value) / scale, 4)} {unit}"


def _display_unit(metric: str, value: float) -> tuple[str, float]:
    """Bytes in the largest unit that keeps them >= 1; latency and energy in their fixed display unit."""
    if metric in ("size", "memory"):
        return next(((u, s) for u, s in BYTE_UNITS if abs(value) >= s), BYTE_UNITS[-1])
    return DISPLAY_UNIT[metric]


def plain_number(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits in positional notation (``0.0000513``, ``123500``)."""
    text = f"{value:.{digits}g}"
    if "e" not in text:
        return text
    return np.format_float_positional(value, precision=digits, unique=False, fractional=False, trim="-")
