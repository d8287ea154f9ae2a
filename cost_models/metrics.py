"""The four costs every report, budget and table speaks of: one enum, owned here.

Members are strings (``CostMetric.LATENCY == "latency_s"``), so they index the dicts and frame columns
of cost reports directly; the order of ``COST_KEYS`` is the column order of every table.
"""

from __future__ import annotations

from enum import Enum


class CostMetric(str, Enum):
    """A cost of one inference on a device, in SI units."""

    LATENCY = "latency_s"
    ENERGY = "energy_j"
    SIZE = "size_bytes"
    MEMORY = "peak_memory_bytes"

    def __str__(self) -> str:  # the key, as in reports and metrics.json
        return self.value

    @property
    def budget_name(self) -> str:
        """The name a budget uses for it: ``latency``, ``energy``, ``size`` or ``memory``."""
        return _BUDGET_NAMES[self]

    @property
    def unit(self) -> str:
        """Its SI unit: ``s``, ``J`` or ``B``."""
        return _UNITS[self]

    @property
    def additive(self) -> bool:
        """Whether the model's cost is the sum of its layers' (peak memory is a maximum, not a sum)."""
        return self is not CostMetric.MEMORY

    @classmethod
    def from_budget_name(cls, name: str) -> CostMetric:
        return _BY_BUDGET_NAME[name]


_BUDGET_NAMES = {CostMetric.LATENCY: "latency", CostMetric.ENERGY: "energy", CostMetric.SIZE: "size",
                 CostMetric.MEMORY: "memory"}
_BY_BUDGET_NAME = {name: metric for metric, name in _BUDGET_NAMES.items()}
_UNITS = {CostMetric.LATENCY: "s", CostMetric.ENERGY: "J", CostMetric.SIZE: "B", CostMetric.MEMORY: "B"}

#: The cost keys in table order.
COST_KEYS: tuple[str, ...] = tuple(m.value for m in CostMetric)
#: Budget name -> cost key (``"latency" -> "latency_s"``).
BUDGET_METRICS: dict[str, str] = {m.budget_name: m.value for m in CostMetric}

__all__ = ["CostMetric", "COST_KEYS", "BUDGET_METRICS"]
