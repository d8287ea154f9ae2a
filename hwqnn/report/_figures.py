"""Report figures, each an info function (pure data, tested) and a matplotlib (Agg) renderer.

* overlaid Pareto fronts of every target (absolute costs, log scale where devices differ by decades), with
  each target's budgets (thin vertical lines) and recommended point (star), and baseline names placed so
  that they do not overprint;
* per-layer bit heatmaps (weights and activations, one column per searched point);
* per-layer latency as stacked bars: the roofline part, coloured by its bound, plus the fixed overhead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..pareto import (
    ACCURACY_LABEL,
    COST_KEYS,
    METRIC_OF,
    annotate_points,
    budget_bounds,
    cost_label,
    display_unit,
    usable,
)
from ._sources import TargetRuns
from ._tables import recommendation

#: Costs drawn on a log axis when the points span more than a decade (targets that differ by orders).
LOG_SCALE_COSTS = ("latency_s", "energy_j")
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "^", "D", "v", "P", "X")
#: Dash-dot-dot, unlike every target's line style, so a budget is never read as a front.
BUDGET_STYLE = (0, (6, 2, 1, 2, 1, 2))


# --- overlaid fronts -----------------------------------------------------------------------------
class TargetSeries(NamedTuple):
    target: str
    front: list[tuple[float, float, str]]  # (cost in display unit, accuracy %, point name), sorted by cost
    others: list[tuple[float, float, str]]
    baselines: list[tuple[float, float, str]]
    budgets: tuple[float, ...] = ()  # every budget on this cost, in the display unit
    recommended: tuple[float, float, str] | None = None


class OverlayPanel(NamedTuple):
    cost_key: str
    x_label: str
    log_x: bool
    series: list[TargetSeries]


def get_overlay_info(groups: Sequence[TargetRuns], cost_keys: Sequence[str] = COST_KEYS) -> list[OverlayPanel]:
    """Per cost: each target's 2-D front (accuracy vs that cost), its other points, its baselines, its
    budgets on that cost and its recommended point (see ``recommendation``)."""
    panels = []
    chosen = {g.target: recommendation(g).name for g in groups}
    for key in cost_keys:
        values = np.concatenate([usable(g.points)[key].to_numpy(float) for g in groups]) if groups else []
        unit, scale = display_unit(key, values)
        flag = f"on_front_{METRIC_OF[key]}"
        series = []
        for group in groups:
            points = usable(group.points)
            triples = [(float(c) / scale, float(a), str(n), bool(f), str(k)) for c, a, n, f, k in
                       zip(points[key], points["accuracy"], points["name"], points[flag], points["kind"])]
            front = sorted(((x, y, n) for x, y, n, f, _ in triples if f), key=lambda t: (t[0], -t[1]))
            others = [(x, y, n) for x, y, n, f, k in triples if not f and k != "uniform"]
            baselines = [(x, y, n) for x, y, n, _, k in triples if k == "uniform"]
            budgets = tuple(b / scale for b in budget_bounds(group.points).get(key, []))
            recommended = next(((x, y, n) for x, y, n, _, _ in triples if n == chosen[group.target]), None)
            series.append(TargetSeries(group.target, front, others, baselines, budgets, recommended))
        finite = [v for v in values if np.isfinite(v) and v > 0]
        spread = max(finite) / min(finite) if finite else 1.0
        panels.append(OverlayPanel(key, cost_label(key, unit=unit), key in LOG_SCALE_COSTS and spread > 10, series))
    return panels


def render_overlay(panels: Sequence[OverlayPanel]):
    plt = _pyplot()
    cols = 2
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(13, 4.6 * rows + 0.6), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        _draw_overlay_panel(plt, ax, panel)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles = _target_handles(plt, panels[0].series if panels else []) + _kind_handles(plt)
    columns = 3
    fig.legend(handles=handles, loc="lower center", fontsize=7.5, ncols=columns, frameon=False)
    legend_inches = 0.2 * np.ceil(len(handles) / columns) + 0.15
    fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))
    for ax, panel in zip(axes.flat, panels):
        labels = [(x, y, name, plt.cm.tab10(i % 10)) for i, s in enumerate(panel.series) for x, y, name in s.baselines]
        markers = [(x, y) for s in panel.series for x, y, _ in (*s.front, *s.others, *s.baselines)]
        annotate_points(ax, labels, markers, fontsize=6.5)
    return fig


def _draw_overlay_panel(plt, ax, panel: OverlayPanel) -> None:
    count = len(panel.series)
    for i, series in enumerate(panel.series):
        color = plt.cm.tab10(i % 10)
        style, marker = LINE_STYLES[i % len(LINE_STYLES)], MARKERS[i % len(MARKERS)]
        if series.front:  # earlier targets drawn wider, so identical fronts stay visible under later ones
            xs, ys, _ = zip(*series.front)
            ax.step(xs, ys, where="post", color=color, lw=1.2 + 1.0 * (count - 1 - i), ls=style, alpha=0.85)
            searched = [(x, y) for x, y, n in series.front if n not in {b[2] for b in series.baselines}]
            if searched:
                ax.scatter(*zip(*searched), color=color, marker=marker, s=30, zorder=3)
        if series.others:
            xs, ys, _ = zip(*series.others)
            ax.scatter(xs, ys, facecolor="none", edgecolor=color, marker=marker, alpha=0.5, s=22, zorder=2)
        for x, y, _ in series.baselines:
            ax.scatter([x], [y], marker="s", facecolor="white", edgecolor=color, s=34, zorder=4, linewidth=1.2)
        for bound in series.budgets:
            ax.axvline(bound, color=color, ls=BUDGET_STYLE, lw=0.8, alpha=0.6, zorder=1)
        if series.recommended is not None:
            x, y, _ = series.recommended
            ax.scatter([x], [y], marker="*", s=240, facecolor="none", edgecolor=color, linewidth=1.5, zorder=6)
    if panel.log_x:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(panel.x_label + (" — log scale" if panel.log_x else ""))
    ax.set_ylabel(ACCURACY_LABEL)
    ax.grid(True, which="both", alpha=0.25)


def _target_handles(plt, series: Sequence[TargetSeries]) -> list:
    """One legend entry per target: its colour, line style and marker."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=plt.cm.tab10(i % 10), ls=LINE_STYLES[i % len(LINE_STYLES)],
                   marker=MARKERS[i % len(MARKERS)], label=f"{s.target}: Pareto front".replace("$", r"\$"))
            for i, s in enumerate(series)]


def _kind_handles(plt) -> list:
    """What each marker means, drawn in grey (the colour says the target)."""
    from matplotlib.lines import Line2D

    grey = "0.3"
    return [
        Line2D([], [], ls="none", marker="o", color=grey, label="filled marker: searched point on the front"),
        Line2D([], [], ls="none", marker="o", markerfacecolor="none", color=grey, alpha=0.6,
               label="hollow marker: searched point, dominated"),
        Line2D([], [], ls="none", marker="s", markerfacecolor="white", color=grey,
               label="square: uniform baseline (named)"),
        Line2D([], [], ls=BUDGET_STYLE, lw=0.8, color=grey, label="thin vertical line: a budget"),
        Line2D([], [], ls="none", marker="*", markersize=12, markerfacecolor="none", color=grey,
               label="star: recommended point"),
    ]


def overlay_frame(groups: Sequence[TargetRuns]) -> pd.DataFrame:
    """The CSV behind the overlay: every point of every target with its front flags."""
    frames = [g.points.assign(target=g.target) for g in groups]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --- bit heatmaps --------------------------------------------------------------------------------
class BitsHeatmap(NamedTuple):
    target: str
    layers: list[str]
    points: list[str]
    w_bits: np.ndarray  # (layers, points); NaN where the layer stays float
    a_bits: np.ndarray
    w_schemes: list[list[str]]
    a_schemes: list[list[str]]


def get_bits_heatmap_info(policies: pd.DataFrame) -> list[BitsHeatmap]:
    """From ``policy_long`` rows: per target, the matrix of bits per (layer, point) for weights and activations."""
    maps = []
    for target, group in policies.groupby("target", sort=False):
        layers = list(dict.fromkeys(group["layer"]))
        points = list(dict.fromkeys(group["point"]))
        shape = (len(layers), len(points))
        w, a = np.full(shape, np.nan), np.full(shape, np.nan)
        ws, as_ = [[""] * len(points) for _ in layers], [[""] * len(points) for _ in layers]
        for row in group.itertuples(index=False):
            i, j = layers.index(row.layer), points.index(row.point)
            if row.w_scheme != "float":
                w[i, j] = row.w_bits
            if row.a_scheme != "float":
                a[i, j] = row.a_bits
            ws[i][j], as_[i][j] = row.w_scheme, row.a_scheme
        maps.append(BitsHeatmap(str(target), layers, points, w, a, ws, as_))
    return maps


def render_bits_heatmaps(maps: Sequence[BitsHeatmap], bits_range: tuple[int, int] = (2, 8)):
    plt = _pyplot()
    rows = max(1, len(maps))
    height = max((len(m.layers) for m in maps), default=4) * 0.24 + 1.6
    fig, axes = plt.subplots(rows, 2, figsize=(13, height * rows), squeeze=False, layout="constrained")
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    low, high = 1, max(bits_range[1], 2)  # 1: binary schemes sit below any bits_range
    for (ax_w, ax_a), heatmap in zip(axes, maps):
        for ax, values, what in ((ax_w, heatmap.w_bits, "weight"), (ax_a, heatmap.a_bits, "activation")):
            image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=cmap, vmin=low, vmax=high)
            for (i, j), value in np.ndenumerate(values):
                text = "fp" if np.isnan(value) else f"{int(value)}"
                dark = not np.isnan(value) and value < (low + high) / 2
                ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color="white" if dark else "black")
            ax.set_xticks(range(len(heatmap.points)), heatmap.points, rotation=30, ha="right", fontsize=7,
                          parse_math=False)
            ax.set_yticks(range(len(heatmap.layers)), heatmap.layers, fontsize=6.5, parse_math=False)
            ax.set_title(f"{heatmap.target}: {what} bits per layer", fontsize=9, parse_math=False)
        fig.colorbar(image, ax=[ax_w, ax_a], shrink=0.8, label="bits")
    return fig


# --- per-layer latency breakdown -----------------------------------------------------------------
class LayerBars(NamedTuple):
    target: str
    point: str
    layers: list[str]
    roofline: np.ndarray  # seconds, in the display unit
    overhead: np.ndarray
    compute_bound: np.ndarray  # bool per layer
    unit: str


def get_layer_bars_info(layer_costs: pd.DataFrame) -> list[LayerBars]:
    """From ``layer_costs`` rows: per target, the roofline part (and its bound) and the overhead of each layer."""
    bars = []
    for (target, point), group in layer_costs.groupby(["target", "point"], sort=False):
        unit, scale = display_unit("latency_s", group["latency_s"].to_numpy(float))
        bars.append(LayerBars(str(target), str(point), list(group["name"]), group["roofline_s"].to_numpy(float) / scale,
                              group["overhead_s"].to_numpy(float) / scale,
                              (group["bound"] == "compute").to_numpy(bool), unit))
    return bars


def render_layer_bars(bars: Sequence[LayerBars]):
    plt = _pyplot()
    rows = max(1, len(bars))
    fig, axes = plt.subplots(rows, 1, figsize=(14, 3.3 * rows), squeeze=False)
    colors = {True: "tab:red", False: "tab:blue"}
    for ax, item in zip(axes[:, 0], bars):
        x = np.arange(len(item.layers))
        ax.bar(x, item.roofline, color=[colors[bool(c)] for c in item.compute_bound])
        ax.bar(x, item.overhead, bottom=item.roofline, color="0.75")
        ax.set_xticks(x, item.layers, rotation=60, ha="right", fontsize=6.5, parse_math=False)
        ax.set_ylabel(f"latency ({item.unit})")
        ax.set_title(f"{item.target}, point {item.point}: per-layer latency", fontsize=9, parse_math=False)
        ax.grid(True, axis="y", alpha=0.3)
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("tab:red", "tab:blue", "0.75")]
        ax.legend(handles, ["compute-bound (roofline)", "memory-bound (roofline)", "per-layer overhead"], fontsize=7,
                  loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return fig


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
