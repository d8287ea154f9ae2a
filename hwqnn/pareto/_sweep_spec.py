"""Sweep specifications: ``latency=0.4x:1.0x:6`` -> six budgets of one metric, ordered loose to tight."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import BudgetError
from ..policy import Policy
from ..searching.budgets import Budget, parse_budget

_PATTERN = re.compile(r"^\s*(\w+)\s*=\s*([^:]+):([^:]+):\s*(\d+)\s*$")
_AUTO = re.compile(r"^\s*auto\s*(?::\s*(\d+))?\s*$")

#: Uniform baselines run next to every sweep unless told otherwise.
DEFAULT_BASELINES = ("w8a8", "w4a4", "w3a3", "w2a2")
DEFAULT_SWEEP = "latency=0.4x:1.0x:6"
#: ``auto`` sweeps latency where lower bits make the device faster by at least this factor, else size.
AUTO_LATENCY_GAIN = 0.85
#: ... else size where lower bits shrink the stored model by at least this factor.
AUTO_SIZE_GAIN = 0.95


@dataclass(frozen=True)
class SweepSpec:
    """``count`` budgets of ``metric`` evenly spaced from ``low`` to ``high`` (relative or absolute)."""

    metric: str
    low: Budget
    high: Budget
    count: int

    @property
    def budgets(self) -> list[Budget]:
        """The budgets, loosest first: each point warm-starts from its looser neighbour."""
        values = np.linspace(self.high.value, self.low.value, self.count) if self.count > 1 else [self.high.value]
        return [Budget(self.metric, float(round(v, 4)), relative=self.low.relative) for v in values]

    def __str__(self) -> str:
        return f"{self.metric}={_endpoint(self.low)}:{_endpoint(self.high)}:{self.count}"


def _endpoint(budget: Budget) -> str:
    return str(budget).split("=", 1)[1]


def parse_sweep(text: str) -> SweepSpec:
    """Parse ``METRIC=LOW:HIGH:COUNT`` such as ``latency=0.4x:1.0x:6`` or ``size=200KiB:800KiB:4``."""
    match = _PATTERN.match(str(text))
    hint = "expected METRIC=LOW:HIGH:COUNT such as latency=0.4x:1.0x:6 or size=200KiB:800KiB:4"
    if not match:
        raise BudgetError(f"sweep {text!r} not understood; {hint}")
    metric, low_text, high_text, count = match[1].lower(), match[2].strip(), match[3].strip(), int(match[4])
    try:
        low, high = parse_budget(f"{metric}={low_text}"), parse_budget(f"{metric}={high_text}")
    except BudgetError as exc:
        raise BudgetError(f"sweep {text!r}: {exc}") from None
    if low.relative != high.relative:
        raise BudgetError(f"sweep {text!r} mixes a relative (x) and an absolute end; give both ends the same kind")
    if count < 1:
        raise BudgetError(f"sweep {text!r} asks for {count} points; ask for at least 1")
    if low.value > high.value:
        raise BudgetError(f"sweep {text!r} has LOW > HIGH; write the smaller budget first")
    return SweepSpec(metric, low, high, count)


def parse_baselines(text: str | None) -> list[str]:
    """``"w8a8,w4a4"`` -> ``["w8a8", "w4a4"]``; an empty string means no baselines."""
    if text is None:
        return list(DEFAULT_BASELINES)
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    for name in names:
        if not re.fullmatch(r"w\d+a\d+", name):
            raise BudgetError(f"baseline {name!r} not understood; expected uniform bits such as w8a8 or w4a4")
    return names


def baseline_bits(name: str) -> tuple[int, int]:
    """``"w4a8"`` -> ``(4, 8)``."""
    match = re.fullmatch(r"w(\d+)a(\d+)", name)
    if not match:
        raise BudgetError(f"baseline {name!r} not understood; expected uniform bits such as w8a8 or w4a4")
    return int(match[1]), int(match[2])


def is_auto(text: str | SweepSpec) -> bool:
    return isinstance(text, str) and _AUTO.match(text) is not None


def auto_sweep(text: str, workload, target: str, bits_range: tuple[int, int] = (2, 8)) -> SweepSpec:
    """Resolve ``auto[:COUNT]`` for one device from its cost model (uniform policies, ``uniform`` scheme).

    Latency is swept when some uniform bitwidth cuts the latency below ``AUTO_LATENCY_GAIN`` x w8a8 (bit-
    flexible accelerators, INT4 Tensor Cores); else model size, where lower bits shrink the stored model
    (a bit-packing runtime). Where neither moves (TensorRT, TFLite: every deployable policy runs and is
    stored in int8), there is nothing to trade, and the sweep is the single point latency=1x. The low end
    is the smallest uniform cost found (plus 5 %, rounded up to 0.01), so every point has a feasible policy.
    """
    import math

    import cost_models

    match = _AUTO.match(text)
    if not match:
        raise BudgetError(f"sweep {text!r} is not 'auto' or 'auto:COUNT'")
    count = int(match[1] or 6)
    lo, hi = bits_range
    profile = cost_models.load_profile(target)
    reference = cost_models.estimate(workload, None, profile, "w8a8")
    ratios = {key: [] for key in ("latency_s", "size_bytes")}
    for bits in range(lo, min(hi, 8) + 1):
        policy = Policy.uniform(f"w{bits}a{bits}")
        if placement_status(policy.resolve("default"), profile) != "native":
            continue  # not deployable on this target: it cannot set the sweep's range
        report = cost_models.estimate(workload, None, profile, policy)
        for key in ratios:
            ratios[key].append(getattr(report, key) / getattr(reference, key))
    if ratios["latency_s"] and min(ratios["latency_s"]) <= AUTO_LATENCY_GAIN:
        metric, key = "latency", "latency_s"
    elif ratios["size_bytes"] and min(ratios["size_bytes"]) <= AUTO_SIZE_GAIN:
        metric, key = "size", "size_bytes"
    else:
        return SweepSpec("latency", Budget("latency", 1.0, True), Budget("latency", 1.0, True), 1)
    low = max(0.05, math.ceil(min(ratios[key]) * 1.05 * 100) / 100)
    return SweepSpec(metric, Budget(metric, min(low, 1.0), True), Budget(metric, 1.0, True), count)


def placement_status(layer_policy, profile) -> str:
    """``native`` when ``profile``'s runtime runs this policy entry natively (or the profile does not say)."""
    from ..deployment import UNKNOWN, place_layer

    status = place_layer(layer_policy, profile.deployment).status
    return "native" if status == UNKNOWN else status
