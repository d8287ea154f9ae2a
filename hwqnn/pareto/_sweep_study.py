"""Sweep points as the candidates of a shared study, so any number of workers evaluate them in parallel.

Every worker runs ``hwqnn pareto ... --storage URL`` with the same arguments. Each one pretrains (or loads
``--float-weights``) the float model, then opens the study named after the sweep: the first creates it and
enqueues one candidate per point (searched budgets, then uniform baselines); the others join, and are refused
when their settings, or their float weights, differ from the creator's. Each point runs as an independent
search from the float weights, in the worker's own ``--out``; its points-table row is stored in the study.
When every point has a row, each worker writes the whole sweep (points.csv, sweep.json, plots) to its
``--out``. A worker killed mid-point loses nothing: its point is retried by a live worker (see
``hwqnn.distributed.SharedStudy``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

from ..distributed import SharedStudy, StudyOptions, state_digest
from ..searching.config import SearchConfig
from ._points import failed_row
from ._sweep_spec import SweepSpec

log = logging.getLogger(__name__)
#: Settings that every worker of one study must share (the rest, e.g. --out or --threads, may differ).
SHARED_KEYS = ("target", "budgets", "method", "schemes", "scheme_sharing", "bits_range", "search_epochs",
               "finetune_epochs", "batch_size", "lr", "finetune_lr", "seed", "single_path", "augment", "rho",
               "dual_lr", "uniform_scheme")


def study_name_for(meta: dict, profile_name: str, spec: SweepSpec) -> str:
    """The default study name: what a person would call the sweep (workers started alike find each other)."""
    return f"hwqnn-pareto-{meta.get('model', 'model')}-{meta.get('data', 'data')}-{profile_name}-{spec}"


def run_points_on_study(pretrained, train_data, val_data, profile, cfg: SearchConfig, spec: SweepSpec, fixed,
                        baselines, baseline_epochs: int, out: Path | None, meta: dict, timings: dict, *,
                        storage: str, study_name: str | None = None,
                        options: StudyOptions | None = None) -> tuple[list[dict], dict]:
    """Every point's row, evaluated by this worker and its peers; and what this worker did."""
    from ._sweep import _point_config, _run_point, baseline_config, point_name

    tasks = []  # (candidate, config, budgets, budget value)
    for index, budget in enumerate(spec.budgets, start=1):
        tasks.append(({"name": point_name(index, budget), "kind": "search"}, _point_config(cfg, False, 1.0),
                      [budget, *fixed], budget.value))
    for baseline in baselines:
        tasks.append(({"name": baseline, "kind": "uniform"}, baseline_config(cfg, baseline, baseline_epochs),
                      list(fixed), float("nan")))
    settings = {**{k: cfg.to_dict().get(k) for k in SHARED_KEYS}, "sweep": str(spec),
                "fixed_budgets": [str(b) for b in fixed], "baselines": list(baselines),
                "baseline_epochs": baseline_epochs, "train_images": len(train_data), "eval_images": len(val_data),
                "float_weights": state_digest(pretrained.model.state_dict().values())}
    name = study_name or study_name_for(meta, profile.name, spec)
    study = SharedStudy.open(storage, name, [t[0] for t in tasks], settings, options or StudyOptions())

    def evaluate(index: int, candidate: dict) -> tuple[float, dict]:
        _, point_cfg, budgets, value = tasks[index]
        import math

        cpu = time.process_time()
        row, _, seconds = _run_point(pretrained.model, train_data, val_data, profile, point_cfg, budgets, out,
                                     candidate["name"], meta, warm_state=None, kind=candidate["kind"],
                                     budget_value=value)
        row = {**row, "worker": worker_id()}
        timings["points"][candidate["name"]] = seconds
        timings["points_cpu"][candidate["name"]] = time.process_time() - cpu
        accuracy = row.get("accuracy")
        return (accuracy if isinstance(accuracy, float) and math.isfinite(accuracy) else 0.0), row

    ran = study.work(evaluate)
    results, failures = study.results(), study.failures()
    rows = []
    for index, (candidate, _, budgets, value) in enumerate(tasks):
        if index in results:
            rows.append({k: v for k, v in results[index].items() if k != "worker"})
        else:
            rows.append(failed_row(name=candidate["name"], kind=candidate["kind"], status="failed",
                                   message=failures.get(index, "no result"), target=profile.name,
                                   model=meta.get("model", ""), budget=",".join(str(b) for b in budgets),
                                   budget_value=value))
    by = {results[i].get("name"): results[i].get("worker") for i in results}
    log.info("study %r done: this worker evaluated %d of %d points", name, ran, len(tasks))
    return rows, {"name": name, "worker": worker_id(), "evaluated_here": ran, "evaluated_by": by}


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


__all__ = ["run_points_on_study", "study_name_for", "SHARED_KEYS"]
