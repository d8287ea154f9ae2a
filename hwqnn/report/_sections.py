"""The report's sections, one function each: they add text, tables and figures to a Document and register
the raw frame behind every table and figure (``csv(name, frame)`` returns the CSV's relative path).
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from pathlib import Path

import pandas as pd

import cost_models

from ..pareto import COST_KEYS, COST_LABELS, METRIC_OF, REFERENCE_COST, REFERENCE_ERROR, figure_bytes, usable
from ..searching.budgets import format_cost
from . import _tables as tables
from ._document import Code, Document, Figure, Table
from ._figures import (
    get_bits_heatmap_info,
    get_layer_bars_info,
    get_overlay_info,
    overlay_frame,
    render_bits_heatmaps,
    render_layer_bars,
    render_overlay,
)
from ._sources import TargetRuns

log = logging.getLogger(__name__)
CsvSink = Callable[[str, pd.DataFrame], str]


def recommended(doc: Document, groups: list[TargetRuns], csv: CsvSink) -> None:
    s = doc.section("Recommended policy per target")
    frame = tables.recommended(groups)
    s.add("The recommended point of a target is the most accurate point (searched or uniform) that meets the "
          "budgets every searched point of that target was held to (a sweep's fixed budgets, or a run's own "
          "budgets; ties go to the cheaper point in the swept cost). Where no budget holds for every searched point "
          "(a sweep varies it), it is the knee of the accuracy front of the swept cost (latency when nothing was "
          "swept): the front point nearest the ideal corner, with error and cost / w8a8 each scaled to [0, 1] over "
          "the front. The figures mark it with a star.")
    s.add(*(recommendation_line(row) for row in frame.to_dict("records")))
    shown = tables.readable(frame.drop(columns=["policy"], errors="ignore"))
    s.add(Table("recommended", "Recommended point per target (its per-layer policy is in the CSV).", shown,
                csv("recommended", frame)))


def recommendation_line(row: dict) -> str:
    """``**target**: `point` (kind), 85.00 % top-1, latency 0.05 ms (0.85x w8a8), ...: why.``"""
    if "accuracy_pct" not in row or pd.isna(row.get("accuracy_pct")):
        return f"**{row['target']}**: no recommended point ({row['rule']})."
    costs = ", ".join(f"{COST_LABELS[k]} {format_cost(k, row[k])} ({row[f'{METRIC_OF[k]}_x_w8a8']:.2f}x w8a8)"
                      for k in COST_KEYS)
    return (f"**{row['target']}**: `{row['recommended point']}` ({row['kind']}), {row['accuracy_pct']:.2f} % top-1; "
            f"{costs}. Chosen as {row['rule']}.")


def summary(doc: Document, groups: list[TargetRuns], csv: CsvSink) -> None:
    s = doc.section("Summary per target")
    budget = tables.training_budget(groups)
    if not budget.empty:
        s.add("**Training budget.** Every accuracy below comes from the epochs in this table; with so few epochs "
              "the numbers show how the targets and policies compare, not the accuracy this model can reach.",
              Table("training_budget", "Epochs and data used.", budget, csv("training_budget", budget)))
    fp16 = {g.target: fp16_costs(g) for g in groups}
    best = pd.concat([tables.best_at_budgets(g, fp16[g.target]) for g in groups], ignore_index=True)
    s.add("For every budget of each sweep, the most accurate point (searched or uniform) whose swept cost fits in "
          "it, with its costs and its speed-up over the same device's uniform int8 (w8a8) and fp16 baselines "
          "(latency ratios from the cost model of that device).",
          Table("best_at_budgets", "Best accuracy at each budget.", tables.readable(best), csv("best_at_budgets", best)))
    fronts = tables.front_summary(groups)
    s.add(f"Hypervolumes are computed over error = 1 - accuracy/100 and each cost divided by the device's own w8a8 "
          f"cost (all minimised), against the reference point error {REFERENCE_ERROR:g} and cost "
          f"{REFERENCE_COST:g} x w8a8; larger is better.",
          Table("front_summary", "Fronts per target.", tables.readable(fronts), csv("front_summary", fronts)))


def fronts(doc: Document, groups: list[TargetRuns], csv: CsvSink) -> None:
    overlay = get_overlay_info(groups)
    doc.section("Pareto fronts, all targets").add(Figure(
        "fronts", "Accuracy against each cost for every target: each line is that target's front for that cost "
        "alone; filled markers are searched points on it, hollow ones dominated searched points, squares uniform "
        "baselines, thin vertical lines the target's budgets and the star its recommended point.",
        figure_bytes(render_overlay(overlay), "png"),
        csv("fronts", overlay_frame(groups))))


def policies(doc: Document, groups: list[TargetRuns], csv: CsvSink) -> None:
    s = doc.section("Per-layer policies")
    frames = []
    for group in groups:
        ok = usable(group.points)
        frames.append(tables.policy_long(group, list(ok[ok["kind"] == "search"]["name"])))
    long = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if long.empty:
        s.add("No searched point with a policy file was found.")
        return
    bits_range = tuple((groups[0].meta.get("config") or {}).get("bits_range") or (2, 8))
    heatmaps = render_bits_heatmaps(get_bits_heatmap_info(long), bits_range)
    s.add(Figure("bits_heatmaps", "Bits per layer for every searched point (columns, loosest budget first); grey "
                 "'fp' cells stay in float.", figure_bytes(heatmaps, "png"), csv("policies", long)))
    chosen = chosen_schemes(groups, long)
    s.add(Table("chosen_schemes", "Chosen schemes and bits (weight / activation) at each target's tightest "
                "feasible budget.", chosen, csv("chosen_schemes", chosen)))


def layer_costs(doc: Document, groups: list[TargetRuns], csv: CsvSink) -> None:
    s = doc.section("Per-layer cost breakdown")
    frames = [tables.layer_costs(g, name) for g in groups if (name := tables.representative_point(g))]
    frames = [f for f in frames if not f.empty]
    if not frames:
        s.add("No run directory with per-layer costs was found.")
        return
    layers = pd.concat(frames, ignore_index=True)
    s.add("Latency of each layer at each target's tightest feasible budget, from the device's roofline: the bar is "
          "max(compute time, memory time), red when compute dominates and blue when memory traffic does, topped by "
          "the fixed per-layer overhead.",
          Figure("layer_costs", "Per-layer latency, compute- vs memory-bound.",
                 figure_bytes(render_layer_bars(get_layer_bars_info(layers)), "png"), csv("layer_costs", layers)))


def dominations(doc: Document, groups: list[TargetRuns], csv: CsvSink) -> None:
    s = doc.section("Searched vs uniform")
    found = tables.dominations(groups)
    path = csv("dominations", found)
    if found.empty:
        s.add("**No uniform baseline dominates any searched point**, neither in accuracy and the swept cost nor in "
              "accuracy and all four costs together.")
        return
    s.add(f"**{len(found)} (searched point, baseline) pairs** where the uniform baseline is at least as good in "
          f"accuracy and every cost considered, and better in one:",
          Table("dominations", "Searched points dominated by a uniform baseline.", tables.readable(found), path))


def sweep_cost(doc: Document, groups: list[TargetRuns], csv: CsvSink) -> None:
    cost = tables.sweep_cost(groups)
    if cost.empty:
        return
    doc.section("Sweep cost").add(
        "Measured wall-clock (and, where recorded, process CPU time, steadier on a shared machine) of each sweep: the "
        "first point is a full search; the later points warm-start from their looser neighbour's search state with a "
        "shorter search and fine-tune. The column 'K x first point' is an estimate of K independent searches, not a "
        "measurement (see reports/sweep_cost.md for a measured side-by-side comparison).",
        Table("sweep_cost", "Sweep cost (seconds).", tables.readable(cost), csv("sweep_cost", cost)))


def profiles(doc: Document, groups: list[TargetRuns], csv: CsvSink) -> None:
    s = doc.section("Hardware profiles used")
    loaded = {g.target: cost_models.load_profile(_profile_spec(g)) for g in groups}
    frame = pd.concat([tables.profile_rows(p) for p in loaded.values()], ignore_index=True)
    path = csv("profiles", frame)
    for target, profile in loaded.items():
        rows = frame[frame["target"] == target].drop(columns="target")
        s.add(f"**{profile.name}** ({profile.type}): {profile.description}. File: `{Path(profile.file).name}`.",
              Table(f"profile_{target}", f"Numbers of {profile.name} and their sources.", rows, path))


def _profile_spec(group: TargetRuns) -> str:
    """The profile a group's runs were priced with: the name or file path their config recorded."""
    return str((group.meta.get("config") or {}).get("target") or group.target)


def reproduction(doc: Document, groups: list[TargetRuns], command: str) -> None:
    from .. import __version__

    s = doc.section("Reproduction")
    if command:
        s.add("This report was generated with:", Code(command))
    commands = sorted({str(m.get("command")) for g in groups for m in g.metas if m.get("command")})
    if commands and commands != [command]:
        s.add("Its sweeps and runs were produced with:", Code("\n".join(commands)))
    seeds = sorted({str(m.get("seed")) for g in groups for m in g.metas if m.get("seed") is not None})
    versions = next((m["versions"] for g in groups for m in g.metas if m.get("versions")), None)
    if versions is None:
        run_metrics = (g.metrics(n) or {} for g in groups for n in g.run_dirs)
        versions = next((m["versions"] for m in run_metrics if m.get("versions")), {})
    s.add(f"Seed(s): {', '.join(seeds) or 'unknown'}. Runs made with "
          + (", ".join(f"{k} {v}" for k, v in versions.items()) or "unrecorded versions")
          + f". Report built with hwqnn {__version__}, Python {platform.python_version()}, pandas {pd.__version__}.")


def chosen_schemes(groups: list[TargetRuns], policies: pd.DataFrame) -> pd.DataFrame:
    columns = {}
    layers: list[str] = []
    for group in groups:
        name = tables.representative_point(group)
        rows = policies[(policies["target"] == group.target) & (policies["point"] == name)]
        layers += [layer for layer in rows["layer"] if layer not in layers]
        columns[f"{group.target} ({name})"] = {
            r.layer: f"{r.w_scheme}:{r.w_bits} / {r.a_scheme}:{r.a_bits}" for r in rows.itertuples(index=False)}
    return pd.DataFrame({"layer": layers, **{c: [v.get(layer, "") for layer in layers] for c, v in columns.items()}})


def fp16_costs(group: TargetRuns) -> dict[str, float] | None:
    """The fp16 costs of the target's model on the target, from its cost model (None if the model is not in the zoo)."""
    import torch

    from ..models import create_model

    metrics = next((group.metrics(n) for n in group.run_dirs if group.metrics(n)), None)
    if not metrics or not all(k in metrics for k in ("model", "num_classes", "input_shape")):
        return None
    try:
        model = create_model(metrics["model"], num_classes=int(metrics["num_classes"]))
    except Exception as exc:  # a custom model: no fp16 column, say why in the log
        log.info("no fp16 reference for %s: %s", group.target, exc)
        return None
    batch = int((metrics.get("config") or {}).get("cost_batch_size", 1))
    report = cost_models.estimate(model.eval(), torch.zeros(1, *metrics["input_shape"]), _profile_spec(group), "fp16",
                                  batch_size=batch)
    return {k: float(getattr(report, k)) for k in COST_KEYS}

