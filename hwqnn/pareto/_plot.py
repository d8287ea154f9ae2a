"""Pareto plots, split into an info function (pure data, tested) and a matplotlib (Agg) renderer."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .._io import atomic_write_bytes
from ._analysis import (
    REFERENCE_COST,
    REFERENCE_ERROR,
    budget_bounds,
    objective_matrix,
    recommend_point,
    swept_key,
    usable,
    w8a8_reference,
)
from ._front import non_dominated_mask
from ._points import COST_KEYS, cost_label, display_unit

ACCURACY_LABEL = "top-1 accuracy (%)"


class PlotPoint(NamedTuple):
    name: str
    kind: str  # "search" or "uniform"
    x: float  # cost in the panel's unit
    y: float  # accuracy in %
    on_front: bool


class ParetoPanelInfo(NamedTuple):
    """One cost against accuracy: the front (sorted by cost), the dominated points and the baselines, the
    budgets on that cost (in the panel's unit) and the recommended point (see :func:`recommend_point`)."""

    cost_key: str
    x_label: str
    y_label: str
    front: list[PlotPoint]
    dominated: list[PlotPoint]
    baselines: list[PlotPoint]
    budgets: tuple[float, ...] = ()
    recommended: PlotPoint | None = None


class ParetoFrontInfo(NamedTuple):
    title: str
    panels: list[ParetoPanelInfo]
    note: str
    recommendation: str = ""


def get_pareto_front_info(frame: pd.DataFrame, cost_keys: Sequence[str] = COST_KEYS, *, relative: bool = False,
                          title: str = "") -> ParetoFrontInfo:
    """What :func:`render_pareto_front` draws: one panel per cost, each with its own 2-D front, the budgets of
    the table's points and the recommended point (for the swept cost)."""
    points = usable(frame)
    recommendation = recommend_point(frame, swept_key(frame))
    bounds, reference = budget_bounds(frame), w8a8_reference(frame)
    panels = []
    for key in cost_keys:
        mask = non_dominated_mask(objective_matrix(points, (key,)))
        unit, scale = display_unit(key, points[key].to_numpy(float))
        if relative:
            scale = points[f"w8a8_{key}"].to_numpy(float)
        xs = points[key].to_numpy(float) / scale
        plotted = [PlotPoint(str(n), str(k), float(x), float(y), bool(f))
                   for n, k, x, y, f in zip(points["name"], points["kind"], xs, points["accuracy"], mask)]
        front = sorted((p for p in plotted if p.on_front), key=lambda p: (p.x, -p.y))
        dominated = [p for p in plotted if not p.on_front]
        baselines = [p for p in plotted if p.kind == "uniform"]
        budgets = tuple(b / (reference.get(key, np.nan) if relative else scale) for b in bounds.get(key, []))
        chosen = next((p for p in plotted if p.name == recommendation.name), None)
        panels.append(ParetoPanelInfo(key, cost_label(key, relative, unit), ACCURACY_LABEL, front, dominated, baselines,
                                      budgets, chosen))
    note = (f"front: no other point is both cheaper and more accurate; hypervolume reference point: "
            f"accuracy 0 % (error {REFERENCE_ERROR:g}), cost {REFERENCE_COST:g} x w8a8")
    said = f"recommended: {recommendation.name}, {recommendation.describe()}" if recommendation.name else ""
    return ParetoFrontInfo(title, panels, note, said)


def render_pareto_front(info: ParetoFrontInfo, columns: int = 2):
    """A matplotlib Figure (Agg): front as a staircase, dominated points grey, baselines labelled squares,
    budgets as dashed lines, the recommended point as a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, int(np.ceil(len(info.panels) / columns)))
    cols = min(columns, max(1, len(info.panels)))
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.4 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, info.panels):
        _draw_panel(ax, panel)
    for ax in list(axes.flat)[len(info.panels):]:
        ax.set_visible(False)
    if info.title:
        fig.suptitle(info.title, parse_math=False)
    note = info.note + (f"\n{info.recommendation}" if info.recommendation else "")
    fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=7, color="0.35")
    fig.tight_layout(rect=(0, 0.05 if info.recommendation else 0.03, 1, 0.96 if info.title else 1))
    for ax, panel in zip(axes.flat, info.panels):
        everything = [*panel.front, *panel.dominated, *panel.baselines]
        annotate_points(ax, [(p.x, p.y, p.name, "0.25") for p in panel.baselines], [(p.x, p.y) for p in everything])
    return fig


def _draw_panel(ax, panel: ParetoPanelInfo) -> None:
    dominated = [p for p in panel.dominated if p.kind == "search"]
    if dominated:
        ax.scatter([p.x for p in dominated], [p.y for p in dominated], color="0.7", s=28, zorder=2,
                   label="searched, dominated")
    front = panel.front
    if front:
        ax.step([p.x for p in front], [p.y for p in front], where="post", color="tab:blue", lw=1.2, zorder=3,
                label="Pareto front")
        searched = [p for p in front if p.kind == "search"]
        if searched:
            ax.scatter([p.x for p in searched], [p.y for p in searched], color="tab:blue", s=36, zorder=4,
                       label="searched, on front")
    for on_front, face, edge, label in ((True, "tab:orange", "tab:orange", "uniform baseline, on front"),
                                        (False, "white", "0.55", "uniform baseline, dominated")):
        chosen = [p for p in panel.baselines if p.on_front == on_front]
        if chosen:
            ax.scatter([p.x for p in chosen], [p.y for p in chosen], marker="s", s=46, facecolor=face, edgecolor=edge,
                       linewidth=1.3, zorder=5, label=label)
    for i, bound in enumerate(panel.budgets):
        ax.axvline(bound, color="0.35", ls="--", lw=0.9, zorder=1, label="budget" if i == 0 else None)
    if panel.recommended is not None:
        p = panel.recommended
        ax.scatter([p.x], [p.y], marker="*", s=260, facecolor="none", edgecolor="crimson", linewidth=1.4, zorder=6,
                   label=f"recommended: {p.name}".replace("$", r"\$"))
    ax.set_xlabel(panel.x_label)
    ax.set_ylabel(panel.y_label)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


# --- labels that do not overprint -------------------------------------------------------------------
#: Distances (points) from a marker at which a label is tried, nearest first; beyond the first, a thin
#: leader line joins the label to its marker.
LABEL_RINGS = (4.0, 12.0, 22.0, 34.0)
#: Half the side (points) of the box kept free around every marker.
MARKER_HALF = 3.5

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def label_candidates(width: float, height: float) -> list[tuple[float, float]]:
    """Lower-left offsets of a ``width`` x ``height`` label around its anchor: right-up first, then the
    other corners and sides, ring by ring outwards."""
    out = []
    for r in LABEL_RINGS:
        lift = 0.6 * r
        out += [(r, lift), (r, -lift - height), (-r - width, lift), (-r - width, -lift - height),
                (r, -height / 2), (-r - width, -height / 2), (-width / 2, r), (-width / 2, -r - height)]
    return out


def place_labels(anchors: Sequence[tuple[float, float]], sizes: Sequence[tuple[float, float]],
                 obstacles: Sequence[Box] = (), bounds: Box | None = None) -> list[tuple[float, float]]:
    """Greedy placement: each label (in order) takes the first candidate offset whose box overlaps no label
    placed before, no obstacle and stays within ``bounds``; when none does, the one overlapping least.

    Everything is in one unit (points); returns each label's lower-left offset from its anchor.
    """
    placed: list[Box] = []
    offsets = []
    for (x, y), (w, h) in zip(anchors, sizes):
        best, best_overlap = None, np.inf
        for dx, dy in label_candidates(w, h):
            box = (x + dx, y + dy, x + dx + w, y + dy + h)
            overlap = sum(_overlap(box, other) for other in (*placed, *obstacles))
            if bounds is not None and not _inside(box, bounds):
                overlap += w * h  # as bad as covering another label entirely
            if overlap < best_overlap:
                best, best_overlap = (dx, dy), overlap
            if overlap == 0:
                break
        offsets.append(best)
        placed.append((x + best[0], y + best[1], x + best[0] + w, y + best[1] + h))
    return offsets


def _overlap(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def _gap(dx: float, dy: float, width: float, height: float) -> float:
    """Distance from the anchor to the nearest edge of its label box (0 when the box covers it)."""
    return float(np.hypot(max(dx, 0.0, -(dx + width)), max(dy, 0.0, -(dy + height))))


def _inside(box: Box, bounds: Box) -> bool:
    return box[0] >= bounds[0] and box[1] >= bounds[1] and box[2] <= bounds[2] and box[3] <= bounds[3]


def annotate_points(ax, labels: Sequence[tuple[float, float, str, object]], markers: Sequence[tuple[float, float]] = (),
                    fontsize: float = 7.5) -> None:
    """Label points ``(x, y, text, colour)`` of ``ax`` without overprinting one another or ``markers``.

    Call it once the layout and the axis limits are final: placement works on the drawn positions.
    """
    if not labels:
        return
    ax.get_xlim(), ax.get_ylim()  # settle a pending autoscale: placement needs the final data-to-page transform
    sizes = _label_sizes(ax.figure, [text for _, _, text, _ in labels], fontsize)
    anchors = [_on_page(ax, x, y) for x, y, _, _ in labels]
    obstacles = [(px - MARKER_HALF, py - MARKER_HALF, px + MARKER_HALF, py + MARKER_HALF)
                 for px, py in (_on_page(ax, x, y) for x, y in markers)]
    frame = ax.get_window_extent(ax.figure.canvas.get_renderer())
    to_points = 72.0 / ax.figure.dpi
    bounds = (frame.x0 * to_points, frame.y0 * to_points, frame.x1 * to_points, frame.y1 * to_points)
    for (x, y, text, color), (dx, dy), (w, h) in zip(labels, place_labels(anchors, sizes, obstacles, bounds), sizes):
        leader = {"arrowstyle": "-", "color": color, "lw": 0.5, "shrinkA": 0, "shrinkB": 2}
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), ha="left", va="bottom",
                    fontsize=fontsize, color=color, zorder=7, parse_math=False,
                    arrowprops=leader if _gap(dx, dy, w, h) > LABEL_RINGS[0] + 2.0 else None)


def _on_page(ax, x: float, y: float) -> tuple[float, float]:
    """A data point's position on the figure, in points (the unit of label offsets)."""
    px, py = ax.transData.transform((x, y)) * (72.0 / ax.figure.dpi)
    return float(px), float(py)


def _label_sizes(fig, texts: Sequence[str], fontsize: float) -> list[tuple[float, float]]:
    """Width and height (points, plus a 1-point margin) of each text as drawn, line height included."""
    renderer = fig.canvas.get_renderer()
    to_points = 72.0 / fig.dpi
    sizes = []
    for text in texts:
        probe = fig.text(0, 0, text, fontsize=fontsize, parse_math=False)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        sizes.append((extent.width * to_points + 1.0, extent.height * to_points + 1.0))
    return sizes


def figure_bytes(fig, fmt: str, dpi: int = 110) -> bytes:
    """Encode and close a figure."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def save_figure(fig, stem: Path, formats: Sequence[str] = ("png", "svg"), dpi: int = 110) -> list[Path]:
    """Write ``stem.png``/``stem.svg`` atomically; returns the paths."""
    import matplotlib.pyplot as plt

    paths = []
    for fmt in formats:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=dpi)
        paths.append(atomic_write_bytes(stem.with_suffix(f".{fmt}"), buffer.getvalue()))
    plt.close(fig)
    return paths
