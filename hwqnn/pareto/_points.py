"""Sweep points as rows of one table: accuracy, the four costs, the w8a8 reference and the policy.

A row is built from what a run leaves behind (``metrics.json`` + the policy), so a point of a live
sweep and a point read back from a run directory are the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cost_models import COST_KEYS, policy_layer_names

from ..searching.budgets import DISPLAY_UNIT, METRICS

#: The budget metric each cost key belongs to (cost keys and their order: cost_models.COST_KEYS).
METRIC_OF = {key: metric for metric, key in METRICS.items()}
COST_LABELS = {
    "latency_s": "latency",
    "energy_j": "energy",
    "size_bytes": "model size",
    "peak_memory_bytes": "peak memory",
}

POINT_COLUMNS = (
    "name", "kind", "status", "target", "model", "budget", "budget_value", "accuracy", "float_accuracy",
    *COST_KEYS, *(f"w8a8_{k}" for k in COST_KEYS), "mean_w_bits", "mean_a_bits", "schemes", "policy",
    "run_dir", "wall_time_s", "message",
)


_BYTES = (("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10), ("B", 1.0))
#: Units from large to small; :func:`display_unit` picks the largest that keeps values >= 1.
UNIT_LADDERS = {
    "latency_s": (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)),
    "energy_j": (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9)),
    "size_bytes": _BYTES,
    "peak_memory_bytes": _BYTES,
}


def display_unit(cost_key: str, values: Sequence[float] | None = None) -> tuple[str, float]:
    """(unit, scale) to show ``values`` of one cost readably; the budget display unit without values."""
    finite = [abs(float(v)) for v in (values if values is not None else []) if np.isfinite(v)]
    if not finite:
        return DISPLAY_UNIT[METRIC_OF[cost_key]]
    largest = max(finite)
    for unit, scale in UNIT_LADDERS[cost_key]:
        if largest >= scale:
            return unit, scale
    return UNIT_LADDERS[cost_key][-1]


def cost_label(cost_key: str, relative: bool = False, unit: str | None = None) -> str:
    """Axis label with its unit: ``latency (ms)`` or ``latency (x w8a8)``."""
    unit = "x w8a8" if relative else (unit or DISPLAY_UNIT[METRIC_OF[cost_key]][0])
    return f"{COST_LABELS[cost_key]} ({unit})"


def cost_scale(cost_key: str) -> float:
    """Divide an SI cost by this to get the budget display unit (``ms``, ``mJ``, ``KiB``)."""
    return DISPLAY_UNIT[METRIC_OF[cost_key]][1]


def policy_layers(policy: Mapping) -> dict[str, dict]:
    """The per-layer entries of a policy dict (``Policy.to_dict()`` or a loaded policy.yaml)."""
    layers = policy.get("layers", policy) if isinstance(policy, Mapping) else {}
    return {name: dict(entry) for name, entry in layers.items()}


def policy_text(policy: Mapping, layer_names: Sequence[str] | None = None) -> str:
    """One readable line: ``conv1=uniform:4/uniform:8; fc=...`` (``default`` covers unnamed layers)."""
    layers = policy_layers(policy)
    names = list(layer_names) if layer_names else list(layers)
    parts = []
    for name in names:
        entry = layers.get(name, layers.get("default"))
        if entry is None:
            continue
        parts.append(f"{name}={entry['w_scheme']}:{entry['w_bits']}/{entry['a_scheme']}:{entry['a_bits']}")
    return "; ".join(parts)


def point_row(metrics: Mapping, policy: Mapping, *, name: str, kind: str, budget: str = "",
              budget_value: float = float("nan"), run_dir: str = "", wall_time_s: float | None = None) -> dict:
    """One row of the points table from a finished run's metrics and policy."""
    layer_names = policy_layer_names(metrics.get("layer_costs", {})) or None
    layers = policy_layers(policy)
    resolved = [layers.get(n, layers.get("default")) for n in (layer_names or list(layers))]
    resolved = [e for e in resolved if e is not None]
    w_bits = [e["w_bits"] for e in resolved if e["w_scheme"] != "float"]
    a_bits = [e["a_bits"] for e in resolved if e["a_scheme"] != "float"]
    schemes = sorted({e["w_scheme"] for e in resolved} | {e["a_scheme"] for e in resolved})
    costs, reference = metrics.get("costs", {}), metrics.get("reference_w8a8", {})
    if wall_time_s is None:
        wall_time_s = (metrics.get("wall_time_s") or {}).get("total_s", float("nan"))
    return {
        "name": name, "kind": kind, "status": "ok", "target": metrics.get("target", ""),
        "model": metrics.get("model", ""), "budget": budget, "budget_value": budget_value,
        "accuracy": float(metrics["quantized_accuracy"]),
        "float_accuracy": _float_or_nan(metrics.get("float_accuracy")),
        **{k: float(costs[k]) for k in COST_KEYS},
        **{f"w8a8_{k}": float(reference.get(k, np.nan)) for k in COST_KEYS},
        "mean_w_bits": float(np.mean(w_bits)) if w_bits else np.nan,
        "mean_a_bits": float(np.mean(a_bits)) if a_bits else np.nan,
        "schemes": ",".join(schemes), "policy": policy_text(policy, layer_names),
        "run_dir": run_dir, "wall_time_s": float(wall_time_s), "message": "",
    }


def failed_row(*, name: str, kind: str, status: str, message: str, target: str, model: str = "",
               budget: str = "", budget_value: float = float("nan"), wall_time_s: float = float("nan")) -> dict:
    """A point that produced no policy (e.g. ``status="infeasible"``): kept in the table, never plotted."""
    row = {c: np.nan for c in POINT_COLUMNS}
    row.update(name=name, kind=kind, status=status, target=target, model=model, budget=budget,
               budget_value=budget_value, schemes="", policy="", run_dir="", wall_time_s=wall_time_s,
               message=message)
    return row


def points_frame(rows: Sequence[Mapping]) -> pd.DataFrame:
    """The points table with its columns in a fixed order."""
    frame = pd.DataFrame(list(rows))
    for column in POINT_COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    return frame[list(POINT_COLUMNS)].reset_index(drop=True)


def _float_or_nan(value) -> float:
    return float("nan") if value is None else float(value)
