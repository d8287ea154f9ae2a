"""What a report is built from: sweep directories (``hwqnn pareto``) and run directories (``hwqnn search``).

Both are grouped by target into :class:`TargetRuns`: one points table (the same columns as a sweep's
``points.csv``, fronts marked) and where each point's run directory lies, for its policy and layer costs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from ..errors import RunDirError
from ..pareto import METRIC_OF, is_sweep_dir, load_sweep, mark_fronts, point_row, points_frame
from ..run_dir import read_metrics
from ..searching.budgets import METRICS


@dataclass
class TargetRuns:
    """Every point measured for one target, whatever directories they came from."""

    target: str
    points: pd.DataFrame
    run_dirs: dict[str, Path] = field(default_factory=dict)
    metas: list[dict] = field(default_factory=list)  # one per source: sweep.json, or a run's metrics
    sources: list[Path] = field(default_factory=list)

    @property
    def meta(self) -> dict:
        return self.metas[0] if self.metas else {}

    @property
    def swept_keys(self) -> list[str]:
        """Cost keys of the swept metrics (latency_s, size_bytes...), in source order."""
        keys = []
        for meta in self.metas:
            metric = str(meta.get("sweep", "")).split("=", 1)[0]
            if metric in METRICS and METRICS[metric] not in keys:
                keys.append(METRICS[metric])
        return keys

    def policy(self, name: str) -> dict | None:
        run_dir = self.run_dirs.get(name)
        if run_dir is None or not (run_dir / "policy.yaml").is_file():
            return None
        return yaml.safe_load((run_dir / "policy.yaml").read_text())

    def metrics(self, name: str) -> dict | None:
        run_dir = self.run_dirs.get(name)
        if run_dir is None or not (run_dir / "metrics.json").is_file():
            return None
        return json.loads((run_dir / "metrics.json").read_text())


def is_run_dir(path: Path) -> bool:
    return (path / "metrics.json").is_file()


def expand_sources(paths: Iterable[str | Path]) -> list[Path]:
    """Sweep and run directories named, or found one level down (a report's ``sweeps/``, a folder of runs)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise RunDirError(f"--from {path}: no such directory; pass sweep directories (hwqnn pareto --out) "
                              f"or run directories (hwqnn search --out)")
        if not path.is_dir():
            raise RunDirError(f"--from {path}: is a file; pass a sweep or run directory")
        if is_sweep_dir(path) or is_run_dir(path):
            found.append(path)
            continue
        children = sorted(p for base in (path, path / "sweeps") if base.is_dir() for p in base.iterdir()
                          if p.is_dir() and (is_sweep_dir(p) or is_run_dir(p)))
        if not children:
            what = "is empty" if not any(path.iterdir()) else "holds no sweep.json or metrics.json"
            raise RunDirError(f"--from {path}: {what}; expected a sweep directory (with sweep.json, from "
                              f"'hwqnn pareto') or a finished run directory (with metrics.json, from 'hwqnn search')")
        found.extend(children)
    return found


def collect_targets(paths: Sequence[str | Path]) -> list[TargetRuns]:
    """Group every point under ``paths`` by target, in the order targets first appear."""
    groups: dict[str, TargetRuns] = {}
    for path in expand_sources(paths):
        if is_sweep_dir(path):
            record = load_sweep(path)
            target = str(record.meta.get("target") or _only_target(record.points, path))
            group = groups.setdefault(target, TargetRuns(target, points_frame([])))
            frame = record.points.copy()
            frame["name"] = [_unique(group, n) for n in frame["name"]]
            for old, new in zip(record.points["name"], frame["name"]):
                run_dir = record.run_dir(old)
                if run_dir is not None:
                    group.run_dirs[new] = run_dir
            _append(group, frame)
            group.metas.append(record.meta)
        else:
            metrics = read_metrics(path)  # verified: policy.yaml and model.pt exist and belong to these metrics
            for key in ("target", "quantized_accuracy", "costs", "reference_w8a8"):
                if key not in metrics:
                    raise RunDirError(f"--from {path}: metrics.json lacks '{key}'; it was not written by 'hwqnn search'")
            policy = yaml.safe_load((path / "policy.yaml").read_text())
            target = str(metrics["target"])
            group = groups.setdefault(target, TargetRuns(target, points_frame([])))
            kind = metrics.get("method", "search")
            name = _unique(group, _run_name(metrics, path))
            budget = ",".join(b["spec"] for b in metrics.get("budgets", {}).values()) if kind == "search" else ""
            row = point_row(metrics, policy, name=name, kind=kind, budget=budget, run_dir=str(path))
            _append(group, points_frame([row]))
            group.run_dirs[name] = path
            group.metas.append({k: metrics.get(k) for k in ("target", "model", "data", "command", "seed", "config",
                                                           "versions", "float_accuracy")})
        group.sources.append(path)
    for group in groups.values():
        group.points = mark_fronts(group.points)
    return list(groups.values())


def _append(group: TargetRuns, frame: pd.DataFrame) -> None:
    parts = [f for f in (group.points, frame) if not f.empty]
    group.points = points_frame(pd.concat(parts, ignore_index=True).to_dict("records")) if parts else frame


def _unique(group: TargetRuns, name: str) -> str:
    taken = set(group.points["name"]) if not group.points.empty else set()
    candidate, i = name, 2
    while candidate in taken:
        candidate, i = f"{name} ({i})", i + 1
    return candidate


def _run_name(metrics: dict, path: Path) -> str:
    config = metrics.get("config") or {}
    if metrics.get("method") == "uniform" and config.get("uniform_bits"):
        w_bits, a_bits = config["uniform_bits"]
        return f"w{w_bits}a{a_bits}"
    return path.name


def _only_target(points: pd.DataFrame, path: Path) -> str:
    targets = sorted({t for t in points["target"].dropna().astype(str) if t})
    if len(targets) != 1:
        raise RunDirError(f"{path}: sweep.json names no target and points.csv holds {targets or 'none'}")
    return targets[0]


__all__ = ["TargetRuns", "collect_targets", "expand_sources", "is_run_dir", "METRIC_OF"]
