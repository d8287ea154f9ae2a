"""Pareto analysis of a points table: fronts, hypervolumes and which baseline dominates which searched point.

Objectives, all minimised: the error ``1 - accuracy/100`` and each cost divided by the device's own
uniform w8a8 cost (so targets whose latencies differ by orders of magnitude are comparable). The
hypervolume reference point is error 1.0 (0 % accuracy) and ``REFERENCE_COST`` x w8a8 for every cost.

The recommended point of a target (:func:`recommend_point`) is the most accurate point meeting the budgets
every searched point was held to; without such budgets it is the knee of the accuracy/cost front
(:func:`knee_point`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BudgetError
from ..searching.budgets import Budget, parse_budget
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


# --- budgets and the recommended point -------------------------------------------------------------
@dataclass(frozen=True)
class Recommendation:
    """The point to deploy on one target and the rule that chose it (``budgets``, ``knee`` or ``none``)."""

    name: str | None
    rule: str
    budgets: tuple[str, ...] = ()
    cost_key: str = "latency_s"

    def describe(self) -> str:
        """Why this point, in one sentence fragment."""
        if self.rule == "budgets":
            return f"the most accurate point meeting {', '.join(self.budgets)}"
        if self.rule == "knee":
            return f"the knee of the accuracy/{METRIC_OF[self.cost_key]} front (no common budget)"
        return f"no point meets {', '.join(self.budgets)}" if self.budgets else "no finished point"


def point_budgets(text: object) -> list[Budget]:
    """The budgets in a points-table ``budget`` cell (``size=0.5x,latency=1x``); unreadable parts are skipped."""
    if not isinstance(text, str):
        return []
    budgets = []
    for part in text.split(","):
        try:
            budgets.append(parse_budget(part))
        except BudgetError:
            continue
    return budgets


def w8a8_reference(frame: pd.DataFrame) -> dict[str, float]:
    """The target's uniform w8a8 costs, from its first usable point (every run records them)."""
    points = usable(frame)
    if points.empty:
        return {}
    return {k: float(points[f"w8a8_{k}"].iloc[0]) for k in COST_KEYS}


def budget_bounds(frame: pd.DataFrame) -> dict[str, list[float]]:
    """Every distinct budget of the table (feasible or not), as sorted absolute bounds per cost key."""
    reference = w8a8_reference(frame)
    bounds: dict[str, set[float]] = {}
    for text in frame["budget"]:
        for budget in point_budgets(text):
            if budget.relative and not np.isfinite(reference.get(budget.key, np.nan)):
                continue
            bounds.setdefault(budget.key, set()).add(budget.resolve(reference))
    return {key: sorted(values) for key, values in bounds.items()}


def swept_key(frame: pd.DataFrame) -> str:
    """The cost a sweep varies: the first cost whose budget differs between points; latency otherwise."""
    for key, bounds in budget_bounds(frame).items():
        if len(bounds) > 1:
            return key
    return "latency_s"


def common_budgets(frame: pd.DataFrame) -> list[Budget]:
    """Budgets every usable searched point was held to: a sweep's fixed budgets, or a run's own budgets."""
    points = usable(frame)
    searched = points[points["kind"] == "search"]
    sets = [{str(b): b for b in point_budgets(text)} for text in searched["budget"]]
    if not sets:
        return []
    shared = set.intersection(*(set(s) for s in sets))
    return [sets[0][text] for text in sets[0] if text in shared]


def knee_point(frame: pd.DataFrame, cost_key: str = "latency_s") -> str | None:
    """The knee of the accuracy/``cost_key`` front: the front point nearest the ideal corner.

    Error and cost / w8a8 are each scaled to [0, 1] over the front (a flat objective scales to 0), and the
    point with the smallest Euclidean distance to (0, 0) wins; ties go to the more accurate point. A
    one-point front is its own knee.
    """
    points = usable(frame)
    values = objective_matrix(points, (cost_key,))
    if not len(values):
        return None
    on_front = non_dominated_mask(values)
    front, names = values[on_front], points["name"].to_numpy()[on_front]
    span = front.max(axis=0) - front.min(axis=0)
    scaled = np.divide(front - front.min(axis=0), span, out=np.zeros_like(front), where=span > 0)
    distance = np.hypot(scaled[:, 0], scaled[:, 1])
    order = np.lexsort((front[:, 1], front[:, 0], distance))  # distance, then error, then cost
    return str(names[order[0]])


def recommend_point(frame: pd.DataFrame, cost_key: str = "latency_s") -> Recommendation:
    """The most accurate point meeting :func:`common_budgets` (ties: cheaper in ``cost_key``); the
    :func:`knee_point` when there are none; ``rule="none"`` when no point meets them."""
    points = usable(frame)
    if points.empty:
        return Recommendation(None, "none", (), cost_key)
    budgets = common_budgets(frame)
    if not budgets:
        return Recommendation(knee_point(frame, cost_key), "knee", (), cost_key)
    reference = w8a8_reference(frame)
    within = np.ones(len(points), dtype=bool)
    for budget in budgets:
        within &= points[budget.key].to_numpy(float) <= budget.resolve(reference) * (1 + 1e-9)
    texts = tuple(str(b) for b in budgets)
    if not within.any():
        return Recommendation(None, "none", texts, cost_key)
    best = points[within].sort_values(["accuracy", cost_key], ascending=[False, True], kind="stable")
    return Recommendation(str(best["name"].iloc[0]), "budgets", texts, cost_key)

