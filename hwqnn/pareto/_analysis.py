"""Pareto analysis of a points table: fronts, hypervolumes and which baseline dominates which searched point.

Objectives, all minimised: the error ``1 - accuracy/100`` and each cost divided by the device's own
uniform w8a8 cost (so targets whose latencies differ by orders of magnitude are comparable). The
hypervolume reference point is error 1.0 (0 % accuracy) and ``REFERENCE_COST`` x w8a8 for every cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._front import dominates, hypervolume, non_dominated_mask
from ._points import COST_KEYS, METRIC_OF

REFERENCE_ERROR = 1.0
REFERENCE_COST = 1.2


@dataclass(frozen=True)
class FrontSummary:
    """The front over ``cost_keys`` + accuracy: its members, hypervolume and the stated reference point."""

    cost_keys: tuple[str, ...]
    front: tuple[str, ...]
    hypervolume: float
    reference: tuple[float, ...]

    @property
    def objectives(self) -> tuple[str, ...]:
        return ("error", *(f"{METRIC_OF[k]}/w8a8" for k in self.cost_keys))

    def to_dict(self) -> dict:
        """JSON-ready, with the objective names next to the reference point they order."""
        return {"objectives": list(self.objectives), "reference": list(self.reference),
                "hypervolume": self.hypervolume, "front": list(self.front), "cost_keys": list(self.cost_keys)}

    def describe(self) -> str:
        ref = ", ".join(f"{name}={value:g}" for name, value in zip(self.objectives, self.reference))
        return f"hypervolume {self.hypervolume:.4f} over ({', '.join(self.objectives)}), reference point ({ref})"


def usable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that are real points (finished runs with an accuracy and costs)."""
    return frame[(frame["status"] == "ok") & frame["accuracy"].notna()]


def objective_matrix(frame: pd.DataFrame, cost_keys: Sequence[str]) -> np.ndarray:
    """(n, 1 + len(cost_keys)) minimisation objectives: error fraction, then cost / w8a8 cost."""
    columns = [1.0 - frame["accuracy"].to_numpy(float) / 100.0]
    for key in cost_keys:
        columns.append(frame[key].to_numpy(float) / frame[f"w8a8_{key}"].to_numpy(float))
    return np.column_stack(columns) if len(frame) else np.zeros((0, 1 + len(cost_keys)))


def summarise_front(frame: pd.DataFrame, cost_keys: Sequence[str] = COST_KEYS) -> FrontSummary:
    """Front members (by name) and hypervolume of the usable points over accuracy and ``cost_keys``."""
    points = usable(frame)
    values = objective_matrix(points, cost_keys)
    reference = (REFERENCE_ERROR, *([REFERENCE_COST] * len(cost_keys)))
    mask = non_dominated_mask(values)
    return FrontSummary(tuple(cost_keys), tuple(points["name"][mask]), hypervolume(values, reference), reference)


def mark_fronts(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``on_front`` (all four costs) and ``on_front_<metric>`` (accuracy vs that cost alone)."""
    out = frame.copy()
    ok = (out["status"] == "ok") & out["accuracy"].notna()
    for column, keys in [("on_front", COST_KEYS), *((f"on_front_{METRIC_OF[k]}", (k,)) for k in COST_KEYS)]:
        flags = np.zeros(len(out), dtype=bool)
        flags[ok.to_numpy()] = non_dominated_mask(objective_matrix(out[ok], keys))
        out[column] = flags
    return out


def baseline_dominations(frame: pd.DataFrame, cost_keys: Sequence[str] = COST_KEYS) -> list[dict]:
    """Every (searched point, uniform baseline) pair where the baseline dominates over accuracy + ``cost_keys``."""
    points = usable(frame)
    values = objective_matrix(points, cost_keys)
    kinds, names = points["kind"].to_numpy(), points["name"].to_numpy()
    found = []
    for i in np.flatnonzero(kinds == "search"):
        for j in np.flatnonzero(kinds == "uniform"):
            if dominates(values[j], values[i]):
                found.append({"searched": names[i], "baseline": names[j], "costs": ",".join(cost_keys),
                              "searched_accuracy": float(points["accuracy"].iloc[i]),
                              "baseline_accuracy": float(points["accuracy"].iloc[j])})
    return found
