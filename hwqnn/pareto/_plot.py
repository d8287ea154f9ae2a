"""Pareto plots, split into an info function (pure data, tested) and a matplotlib (Agg) renderer."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .._io import atomic_write_bytes
from ._analysis import REFERENCE_COST, REFERENCE_ERROR, objective_matrix, usable
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
    """One cost against accuracy: the front (sorted by cost), the dominated points and the baselines."""

    cost_key: str
    x_label: str
    y_label: str
    front: list[PlotPoint]
    dominated: list[PlotPoint]
    baselines: list[PlotPoint]


class ParetoFrontInfo(NamedTuple):
    title: str
    panels: list[ParetoPanelInfo]
    note: str


def get_pareto_front_info(frame: pd.DataFrame, cost_keys: Sequence[str] = COST_KEYS, *, relative: bool = False,
                          title: str = "") -> ParetoFrontInfo:
    """What :func:`render_pareto_front` draws: one panel per cost, each with its own 2-D front."""
    points = usable(frame)
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
        panels.append(ParetoPanelInfo(key, cost_label(key, relative, unit), ACCURACY_LABEL, front, dominated, baselines))
    note = (f"front: no other point is both cheaper and more accurate; hypervolume reference point: "
            f"accuracy 0 % (error {REFERENCE_ERROR:g}), cost {REFERENCE_COST:g} x w8a8")
    return ParetoFrontInfo(title, panels, note)


def render_pareto_front(info: ParetoFrontInfo, columns: int = 2):
    """A matplotlib Figure (Agg): front as a staircase, dominated points grey, baselines labelled squares."""
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
        fig.suptitle(info.title)
    fig.text(0.5, 0.005, info.note, ha="center", va="bottom", fontsize=7, color="0.35")
    fig.tight_layout(rect=(0, 0.03, 1, 0.96 if info.title else 1))
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
        ax.scatter([p.x for p in searched], [p.y for p in searched], color="tab:blue", s=36, zorder=4,
                   label="searched, on front")
    for i, p in enumerate(panel.baselines):
        face = "tab:orange" if p.on_front else "white"
        edge = "tab:orange" if p.on_front else "0.55"
        ax.scatter([p.x], [p.y], marker="s", s=46, facecolor=face, edgecolor=edge, linewidth=1.3, zorder=5,
                   label="uniform baseline" if i == 0 else None)
        ax.annotate(p.name, (p.x, p.y), textcoords="offset points", xytext=(5, -10 if i % 2 else 5), fontsize=8,
                    color="0.25")
    ax.set_xlabel(panel.x_label)
    ax.set_ylabel(panel.y_label)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


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
