"""Sweep directories: ``points.csv``, ``sweep.json``, ``pareto.png``/``.svg`` and one run directory per point.

::

    <out>/sweep.json        spec, budgets, timings, front summaries (with the hypervolume reference point)
    <out>/points.csv        one row per point (searched, uniform, infeasible), with Pareto flags
    <out>/pareto.png|svg    accuracy against each cost, front drawn, baselines labelled
    <out>/runs/<point>/     the run directory ``hwqnn search`` writes, plus search_state.pt
    <out>/float_model.pt    the pretrained float weights shared by every point
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .._io import atomic_write_text
from ..errors import RunDirError
from ..run_dir import atomic_write_json
from ._points import POINT_COLUMNS

RUNS = "runs"
SWEEP_FILE = "sweep.json"
POINTS_FILE = "points.csv"


def write_sweep_outputs(out: Path, result) -> None:
    """Write the table, the metadata and the plots of a finished sweep (a ``SweepResult``)."""
    from ._plot import get_pareto_front_info, render_pareto_front, save_figure

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / POINTS_FILE, result.points.to_csv(index=False))
    atomic_write_json(out / SWEEP_FILE, result.meta)
    title = (f"{result.meta.get('model', '')} on {result.meta.get('target', '')}: sweep {result.meta.get('sweep', '')}; "
             f"{result.swept_front.describe()}")
    info = get_pareto_front_info(result.points, title=title)
    save_figure(render_pareto_front(info), out / "pareto")


@dataclass
class SweepRecord:
    """A sweep directory read back: its metadata and its points table."""

    path: Path
    meta: dict
    points: pd.DataFrame

    def run_dir(self, name: str) -> Path | None:
        row = self.points[self.points["name"] == name]
        if row.empty or not isinstance(row["run_dir"].iloc[0], str) or not row["run_dir"].iloc[0]:
            return None
        return self.path / row["run_dir"].iloc[0]


def is_sweep_dir(path: str | Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def load_sweep(path: str | Path) -> SweepRecord:
    """Read a sweep directory written by ``hwqnn pareto``; a clear RunDirError when it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"sweep directory {path} does not exist")
    missing = [f for f in (SWEEP_FILE, POINTS_FILE) if not (path / f).is_file()]
    if missing:
        raise RunDirError(f"{path} is not a finished sweep directory: missing {', '.join(missing)} "
                          f"(run 'hwqnn pareto --out {path}' first)")
    try:
        meta = json.loads((path / SWEEP_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path / SWEEP_FILE} is not valid JSON: {exc}") from None
    try:
        points = pd.read_csv(path / POINTS_FILE, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise RunDirError(f"{path / POINTS_FILE} cannot be read as CSV: {exc}") from None
    lacking = [c for c in POINT_COLUMNS if c not in points]
    if lacking:
        raise RunDirError(f"{path / POINTS_FILE} lacks columns {lacking}; it was not written by 'hwqnn pareto'")
    for column in ("name", "kind", "status", "run_dir", "policy", "schemes", "budget", "message"):
        points[column] = points[column].astype(object).fillna("").astype(str)
    return SweepRecord(path, meta, points)
