"""Comparative reports for hardware teams: one self-contained HTML page (and its Markdown twin) per study.

:func:`build_report` reads sweep directories (``hwqnn pareto``) and run directories (``hwqnn search``)
without retraining; :func:`run_report` first runs a budget sweep per target, then builds the report.
"""

from ._build import assemble, build_report
from ._document import Code, Document, Figure, Section, Table
from ._figures import (
    BitsHeatmap,
    LayerBars,
    OverlayPanel,
    TargetSeries,
    get_bits_heatmap_info,
    get_layer_bars_info,
    get_overlay_info,
    render_bits_heatmaps,
    render_layer_bars,
    render_overlay,
)
from ._html import render_html
from ._markdown import render_markdown
from ._run import run_report
from ._sources import TargetRuns, collect_targets, expand_sources
from ._tables import readable as readable_table

__all__ = [
    "readable_table",
    "build_report",
    "run_report",
    "assemble",
    "collect_targets",
    "expand_sources",
    "TargetRuns",
    "Document",
    "Section",
    "Figure",
    "Table",
    "Code",
    "render_html",
    "render_markdown",
    "get_overlay_info",
    "render_overlay",
    "OverlayPanel",
    "TargetSeries",
    "get_bits_heatmap_info",
    "render_bits_heatmaps",
    "BitsHeatmap",
    "get_layer_bars_info",
    "render_layer_bars",
    "LayerBars",
]
