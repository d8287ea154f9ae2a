"""The report's tables, as raw DataFrames (written to CSV) plus readable formatted copies (shown)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cost_models import policy_layer_names

from ..pareto import (
    COST_KEYS,
    COST_LABELS,
    METRIC_OF,
    Recommendation,
    baseline_dominations,
    display_unit,
    recommend_point,
    short_epochs,
    summarise_front,
    usable,
)
from ..searching.budgets import parse_budget
from ._sources import TargetRuns


def representative_point(group: TargetRuns) -> str | None:
    """The searched point shown in per-layer figures: the tightest budget that produced a policy."""
    points = usable(group.points)
    searched = points[points["kind"] == "search"]
    if searched.empty:
        return None if points.empty else str(points.sort_values("accuracy").iloc[-1]["name"])
    with_budget = searched[searched["budget_value"].notna()]
    if with_budget.empty:
        return str(searched.iloc[-1]["name"])
    return str(with_budget.sort_values("budget_value", kind="stable").iloc[0]["name"])


def recommendation(group: TargetRuns) -> Recommendation:
    """The target's recommended point: the most accurate one meeting the budgets every searched point was
    held to, else the knee of the accuracy front of the swept cost (latency when nothing was swept)."""
    return recommend_point(group.points, (group.swept_keys or ["latency_s"])[0])


def recommended(groups: Sequence[TargetRuns]) -> pd.DataFrame:
    """One row per target: the recommended point, why, its accuracy and costs (and as multiples of w8a8)."""
    rows = []
    for group in groups:
        choice = recommendation(group)
        row = {"target": group.target, "recommended point": choice.name or "(none)", "rule": choice.describe()}
        match = usable(group.points)[usable(group.points)["name"] == choice.name]
        if not match.empty:
            point = match.iloc[0]
            row.update({"kind": point["kind"], "accuracy_pct": float(point["accuracy"]),
                        **{k: float(point[k]) for k in COST_KEYS},
                        **{f"{METRIC_OF[k]}_x_w8a8": float(point[k]) / float(point[f"w8a8_{k}"]) for k in COST_KEYS},
                        "schemes": point["schemes"], "policy": point["policy"]})
        rows.append(row)
    return pd.DataFrame(rows)


def reference_costs(group: TargetRuns) -> dict[str, float]:
    """The target's uniform w8a8 costs (every run records them)."""
    points = usable(group.points)
    if points.empty:
        return {}
    row = points.iloc[0]
    return {k: float(row[f"w8a8_{k}"]) for k in COST_KEYS}


def best_at_budgets(group: TargetRuns, fp16: Mapping[str, float] | None) -> pd.DataFrame:
    """For each budget of each sweep: the most accurate point (searched or uniform) within it."""
    points = usable(group.points)
    reference = reference_costs(group)
    budgets: list[tuple[str, str, float]] = []  # (text, cost key, bound)
    for meta in group.metas:
        for text in meta.get("budgets") or []:
            budget = parse_budget(text)
            budgets.append((text, budget.key, budget.resolve(reference) if reference else np.nan))
    if not budgets:  # loose run directories: each run under its own budgets (none for a uniform run)
        budgets = [(row["name"], "", np.nan) for _, row in points.iterrows()]
    rows = []
    for text, key, bound in budgets:
        if key:
            within = points[points[key] <= bound * (1 + 1e-9)]
        else:
            within = points[points["name"] == text]
            if len(within):
                text = within["budget"].iloc[0] or "(uniform, no budget)"
        if within.empty:
            rows.append({"target": group.target, "budget": text, "best point": "(none feasible)"})
            continue
        best = within.sort_values(["accuracy", "latency_s"], ascending=[False, True], kind="stable").iloc[0]
        row = {"target": group.target, "budget": text, "best point": best["name"], "kind": best["kind"],
               "accuracy_pct": float(best["accuracy"]), **{k: float(best[k]) for k in COST_KEYS},
               "speedup_vs_w8a8": reference.get("latency_s", np.nan) / float(best["latency_s"]),
               "speedup_vs_fp16": (fp16 or {}).get("latency_s", np.nan) / float(best["latency_s"]),
               "energy_saving_vs_w8a8": 1.0 - float(best["energy_j"]) / reference.get("energy_j", np.nan)}
        rows.append(row)
    return pd.DataFrame(rows)


def front_summary(groups: Sequence[TargetRuns]) -> pd.DataFrame:
    rows = []
    for group in groups:
        points = group.points
        ok = usable(points)
        swept = group.swept_keys or ["latency_s"]
        swept_front = summarise_front(points, tuple(swept[:1]))
        full = summarise_front(points)
        searched, uniform = ok[ok["kind"] == "search"], ok[ok["kind"] == "uniform"]
        rows.append({
            "target": group.target,
            "sweep": "; ".join(str(m.get("sweep", "")) for m in group.metas if m.get("sweep")) or "run directories",
            "points_ok": len(ok), "points_infeasible": int((points["status"] == "infeasible").sum()),
            "on_front": len(full.front),
            f"hypervolume_{METRIC_OF[swept[0]]}": swept_front.hypervolume,
            "hypervolume_all_costs": full.hypervolume,
            "float_accuracy_pct": float(points["float_accuracy"].dropna().iloc[0]) if points["float_accuracy"].notna().any() else np.nan,
            "best_searched_accuracy_pct": float(searched["accuracy"].max()) if len(searched) else np.nan,
            "best_uniform_accuracy_pct": float(uniform["accuracy"].max()) if len(uniform) else np.nan,
        })
    return pd.DataFrame(rows)


def dominations(groups: Sequence[TargetRuns]) -> pd.DataFrame:
    """Uniform baselines that dominate a searched point, over (accuracy, swept cost) and over every cost."""
    rows = []
    for group in groups:
        for keys, scope in (((group.swept_keys or ["latency_s"])[0],), "swept cost"), (COST_KEYS, "all costs"):
            for found in baseline_dominations(group.points, keys):
                rows.append({"target": group.target, "scope": scope, **found})
    columns = ["target", "scope", "searched", "baseline", "costs", "searched_accuracy", "baseline_accuracy"]
    return pd.DataFrame(rows, columns=columns)


def sweep_cost(groups: Sequence[TargetRuns]) -> pd.DataFrame:
    """Measured wall-clock of each sweep: the full first point against the warm-started rest."""
    rows = []
    for group in groups:
        for meta in group.metas:
            timings = meta.get("timings")
            if not timings:
                continue
            ok = set(usable(group.points)["name"])
            searched = [name for name in timings["points"] if name[:2].isdigit() and name in ok]
            failed = [name for name in timings["points"] if name[:2].isdigit() and name not in ok]
            seconds = [float(timings["points"][n]) for n in searched]
            first = seconds[0] if seconds else np.nan
            rows.append({
                "target": group.target, "sweep": meta.get("sweep", ""), "K": len(seconds),
                "infeasible_points": len(failed),
                "warm_start": meta.get("warm_start"), "pretrain_s": float(timings.get("pretrain_s", np.nan)),
                "first_point_s": first, "later_points_mean_s": float(np.mean(seconds[1:])) if len(seconds) > 1 else np.nan,
                "sweep_s": float(np.nansum(seconds)), "sweep_over_first_point": float(np.nansum(seconds)) / first,
                "K_x_first_point_s (estimate of K independent searches)": len(seconds) * first,
                "baselines_s": float(timings.get("baselines_s", np.nan)),
                **_cpu_columns(timings.get("points_cpu") or {}, searched),
            })
    return pd.DataFrame(rows)


def _cpu_columns(cpu: dict, searched: list[str]) -> dict:
    """Process CPU seconds (steadier than wall-clock on a shared machine), when the sweep recorded them."""
    seconds = [float(cpu[n]) for n in searched if n in cpu]
    if len(seconds) != len(searched) or not seconds:
        return {}
    return {"first_point_cpu_s": seconds[0], "sweep_cpu_s": sum(seconds),
            "sweep_over_first_point_cpu": sum(seconds) / seconds[0]}


def training_budget(groups: Sequence[TargetRuns]) -> pd.DataFrame:
    """How few epochs were used: what a reader must know before trusting any accuracy in the report."""
    rows = []
    for group in groups:
        for meta in group.metas:
            config = meta.get("config") or {}
            fraction = meta.get("short_fraction")
            search_epochs, finetune_epochs = config.get("search_epochs"), config.get("finetune_epochs")
            rows.append({
                "target": group.target,
                "float weights": meta.get("float_weights") or "-",
                "pretrain epochs": meta.get("pretrain_epochs_run", config.get("pretrain_epochs")),
                "pretrain images": meta.get("pretrain_images", "-"),
                "search epochs (first point)": search_epochs,
                "search epochs (warm points)": short_epochs(search_epochs, fraction) if fraction and search_epochs is not None else "-",
                "fine-tune epochs (first point)": finetune_epochs,
                "fine-tune epochs (warm points)": short_epochs(finetune_epochs, fraction) if fraction and finetune_epochs is not None else "-",
                "baseline fine-tune epochs": meta.get("baseline_epochs", "-"),
                "single_path": config.get("single_path"), "batch size": config.get("batch_size"),
                "search/fine-tune images": meta.get("train_images", "-"), "eval images": meta.get("eval_images", "-"),
                "seed": config.get("seed"),
            })
    return pd.DataFrame(rows)


def policy_long(group: TargetRuns, names: Sequence[str]) -> pd.DataFrame:
    """One row per (point, layer): schemes and bits, in layer order."""
    rows = []
    for name in names:
        policy = group.policy(name)
        metrics = group.metrics(name)
        if policy is None:
            continue
        layers = policy.get("layers", {})
        layer_names = (policy_layer_names((metrics or {}).get("layer_costs", {}))
                       or [n for n in layers if n != "default"])
        for layer in layer_names:
            entry = layers.get(layer, layers.get("default"))
            if entry is not None:
                rows.append({"target": group.target, "point": name, "layer": layer, **entry})
    return pd.DataFrame(rows, columns=["target", "point", "layer", "w_scheme", "w_bits", "a_scheme", "a_bits"])


def layer_costs(group: TargetRuns, name: str) -> pd.DataFrame:
    """The per-layer cost table of one point, with the roofline split into its bound and the overhead."""
    metrics = group.metrics(name) or {}
    table = metrics.get("layer_costs")
    if not table:
        return pd.DataFrame()
    frame = pd.DataFrame(table)
    roofline = np.maximum(frame["compute_s"], frame["memory_s"])
    frame.insert(0, "target", group.target)
    frame.insert(1, "point", name)
    frame["roofline_s"] = roofline
    frame["overhead_s"] = np.maximum(frame["latency_s"] - roofline, 0.0)
    return frame


def profile_rows(profile) -> pd.DataFrame:
    """Every number of a hardware profile with where it came from (``source:``/``derived:``, or the default)."""
    from cost_models import HOROWITZ_SOURCE, mac_energy

    rows: list[dict] = []
    _walk(profile.raw, "", rows)
    energy = profile.raw.get("energy") or {}
    defaults = {"int8_mac": mac_energy("int", 8, 8, {}), "float16_mac": mac_energy("float", 16, 16, {}),
                "float32_mac": mac_energy("float", 32, 32, {})}
    for key, value in defaults.items():
        if key not in energy:
            rows.append({"field": f"energy.{key}", "value": f"{value * 1e12:.3g} pJ", "source": f"default: {HOROWITZ_SOURCE}"})
    raw_memory = profile.raw.get("memory") or {}
    for level in profile.memory.values():
        if "energy_per_byte" not in (raw_memory.get(level.name) or {}):
            rows.append({"field": f"memory.{level.name}.energy_per_byte",
                         "value": f"{level.energy_per_byte * 1e12:.3g} pJ/B", "source": f"default: {HOROWITZ_SOURCE}"})
    frame = pd.DataFrame(rows, columns=["field", "value", "source"])
    frame.insert(0, "target", profile.name)
    return frame


def _walk(node, prefix: str, rows: list[dict]) -> None:
    if isinstance(node, dict) and "value" in node and ({"source", "derived"} & set(node)):
        provenance = "; ".join(f"{k}: {node[k]}" for k in ("source", "derived") if k in node)
        rows.append({"field": prefix, "value": _text(node["value"]), "source": provenance})
        return
    if isinstance(node, dict):
        for key, value in node.items():
            _walk(value, f"{prefix}.{key}" if prefix else str(key), rows)
        return
    if isinstance(node, list) and all(isinstance(item, dict) for item in node):  # deployment.formats
        for i, item in enumerate(node):
            _walk(item, f"{prefix}[{i}]", rows)
        return
    if prefix in ("schema_version", "name", "description", "notes"):
        return
    rows.append({"field": prefix, "value": _text(node), "source": ""})


def _text(value) -> str:
    if isinstance(value, dict):  # a deployment format: name, bits, zero-point rules, ops
        return "; ".join(f"{k} {_text(v)}" for k, v in value.items())
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


# --- formatting for reading ----------------------------------------------------------------------
def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Costs in readable units (chosen per column), percentages and ratios rounded; column names spelled out."""
    out = frame.copy()
    for key in COST_KEYS:
        if key in out:
            unit, scale = display_unit(key, out[key].to_numpy(float))
            out[key] = [_num(v / scale) for v in out[key]]
            out = out.rename(columns={key: f"{COST_LABELS[key]} ({unit})"})
    for column in out.columns:
        if out[column].dtype.kind == "f":
            if column.endswith(("_pct", "accuracy")):
                out[column] = [f"{v:.2f}" if pd.notna(v) else "" for v in out[column]]
            elif column.startswith("speedup") or "_over_first_point" in column or column.endswith("_x_w8a8"):
                out[column] = [f"{v:.2f}x" if pd.notna(v) else "" for v in out[column]]
            elif column.startswith("energy_saving"):
                out[column] = [f"{100 * v:.1f}%" if pd.notna(v) else "" for v in out[column]]
            elif column.endswith("_s") or "_s " in column:
                out[column] = [f"{v:.1f}" if pd.notna(v) else "" for v in out[column]]
            else:
                out[column] = [_num(v) for v in out[column]]
    return out.rename(columns=lambda c: str(c).replace("_pct", " (%)").replace("_", " "))


def _num(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.4g}"
