"""Pareto fronts of accuracy against device costs: budget sweeps, non-dominated sets, hypervolume, plots.

The math (:func:`non_dominated_mask`, :func:`hypervolume`) is pure numpy over objectives to minimise;
:func:`run_sweep` runs the searches of a budget sweep (warm-started, loose to tight) and the uniform
baselines; :func:`get_pareto_front_info` / :func:`render_pareto_front` draw the result.
"""

from ._analysis import (
    REFERENCE_COST,
    REFERENCE_ERROR,
    FrontSummary,
    Recommendation,
    baseline_dominations,
    budget_bounds,
    mark_fronts,
    objective_matrix,
    recommend_point,
    summarise_front,
    usable,
)
from ._front import dominates, hypervolume, non_dominated_mask, non_dominated_ranks, to_minimize
from ._plot import (
    ACCURACY_LABEL,
    ParetoFrontInfo,
    ParetoPanelInfo,
    PlotPoint,
    annotate_points,
    figure_bytes,
    get_pareto_front_info,
    render_pareto_front,
    save_figure,
)
from ._points import (
    COST_KEYS,
    COST_LABELS,
    METRIC_OF,
    cost_label,
    cost_scale,
    display_unit,
    failed_row,
    point_row,
    points_frame,
)
from ._pretrain import PretrainedFloat, pretrain_float
from ._sweep import DEFAULT_SHORT_FRACTION, SweepResult, point_name, resolve_sweep, run_sweep, short_epochs
from ._sweep_dir import SweepRecord, is_sweep_dir, load_sweep
from ._sweep_spec import DEFAULT_BASELINES, DEFAULT_SWEEP, SweepSpec, baseline_bits, parse_baselines, parse_sweep
from ._sweep_spec import is_auto as is_auto_sweep

__all__ = [
    "METRIC_OF",
    "display_unit",
    "Recommendation",
    "recommend_point",
    "budget_bounds",
    "ACCURACY_LABEL",
    "annotate_points",
    "is_auto_sweep",
    "non_dominated_mask",
    "non_dominated_ranks",
    "dominates",
    "hypervolume",
    "to_minimize",
    "FrontSummary",
    "summarise_front",
    "mark_fronts",
    "baseline_dominations",
    "objective_matrix",
    "usable",
    "REFERENCE_ERROR",
    "REFERENCE_COST",
    "ParetoFrontInfo",
    "ParetoPanelInfo",
    "PlotPoint",
    "get_pareto_front_info",
    "render_pareto_front",
    "save_figure",
    "figure_bytes",
    "COST_KEYS",
    "COST_LABELS",
    "cost_label",
    "cost_scale",
    "point_row",
    "failed_row",
    "points_frame",
    "PretrainedFloat",
    "pretrain_float",
    "run_sweep",
    "resolve_sweep",
    "SweepResult",
    "point_name",
    "short_epochs",
    "DEFAULT_SHORT_FRACTION",
    "SweepRecord",
    "load_sweep",
    "is_sweep_dir",
    "SweepSpec",
    "parse_sweep",
    "parse_baselines",
    "baseline_bits",
    "DEFAULT_BASELINES",
    "DEFAULT_SWEEP",
]
