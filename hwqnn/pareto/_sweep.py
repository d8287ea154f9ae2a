"""Budget sweeps: one search per budget value, loose to tight, each warm-started from its neighbour.

The first point runs the full search. Every next point loads the looser neighbour's ``search_state``
(shared weights, scheme logits and bits, as HQNAS shares weights and bits across its search space),
searches for ``short_fraction`` of the epochs, then runs its own MILP finalize and a short fine-tune.
Uniform baselines start from the same pretrained float weights and fine-tune for as many epochs as the
first point trains its weights (search + fine-tune), under the fixed budgets only (they have no choice to make).
Each finished point leaves a run directory and its ``search_state.pt``, so an interrupted sweep resumes.

With ``storage`` (an RDB URL) the points are instead the candidates of a shared study that any number of
workers evaluate (``_sweep_study.py``); every point then starts from the pretrained float weights, since
which neighbour finishes first depends on the workers.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from cost_models import HardwareProfile

from ..errors import BudgetInfeasibleError, ConfigError, RunDirError
from ..run_dir import atomic_torch_save, read_metrics
from ..searching.budgets import Budget, parse_budgets
from ..searching.config import SearchConfig
from ..searching.problem import resolve_target, target_spec
from ._analysis import FrontSummary, mark_fronts, summarise_front
from ._points import COST_KEYS, failed_row, point_row, points_frame
from ._pretrain import pretrain_float
from ._sweep_dir import RUNS, write_sweep_outputs
from ._sweep_spec import (
    DEFAULT_BASELINES,
    DEFAULT_SWEEP,
    SweepSpec,
    auto_sweep,
    baseline_bits,
    is_auto,
    parse_sweep,
)

log = logging.getLogger(__name__)
STATE_FILE = "search_state.pt"
#: Epochs of a warm-started point, as a fraction of the first point's. Measured on digits (reports/sweep_cost.md):
#: a 6-point sweep costs 1.98x one search in CPU time at 1/8 and 2.49x at 1/4, with similar hypervolumes.
DEFAULT_SHORT_FRACTION = 0.125


@dataclass
class SweepResult:
    """All points of a sweep (fronts marked), its front summaries, timings and where it was written."""

    points: pd.DataFrame
    front: FrontSummary  # accuracy + every cost
    swept_front: FrontSummary  # accuracy + the swept cost
    timings: dict
    meta: dict = field(default_factory=dict)
    out_dir: Path | None = None


def point_name(index: int, budget: Budget) -> str:
    value = f"{budget.value:g}x" if budget.relative else str(budget).split("=", 1)[1]
    return f"{index:02d}-{budget.metric}-{value}"


def short_epochs(epochs: int, fraction: float) -> int:
    """``fraction`` of ``epochs``, at least 1 unless ``epochs`` is 0."""
    return 0 if epochs == 0 else max(1, round(epochs * fraction))


def run_sweep(
    model: nn.Module,
    train_data,
    val_data,
    *,
    target: str | Path | HardwareProfile,
    sweep: str | SweepSpec = DEFAULT_SWEEP,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    config: SearchConfig | None = None,
    fixed_budgets: Sequence[str] = (),
    out_dir: str | Path | None = None,
    meta: dict | None = None,
    warm_start: bool = True,
    short_fraction: float = DEFAULT_SHORT_FRACTION,
    float_weights: str | Path | None = None,
    baseline_epochs: int | None = None,
    pretrain_data=None,
    storage: str | None = None,
    study_name: str | None = None,
    study_options=None,
    **overrides,
) -> SweepResult:
    """Search every budget of ``sweep`` on ``target``, run the uniform ``baselines``, analyse the front.

    ``model`` is the float model: it is pretrained here once (``config.pretrain_epochs``, or loaded from
    ``float_weights`` when that file exists, else saved there). ``fixed_budgets`` hold at every point.
    ``warm_start=False`` runs every point as an independent full search from the float weights.
    ``sweep="auto[:COUNT]"`` picks latency or size per device (see ``auto_sweep``). Baselines fine-tune
    for ``baseline_epochs`` (default: search + fine-tune epochs, the weight training the first point gets).
    ``pretrain_data`` (default ``train_data``) is what the float model is pretrained on.
    ``storage`` (e.g. ``sqlite:///sweep/study.db``, ``postgresql://...``): evaluate the points through a shared
    optuna study that other workers, started with the same arguments, join (see ``_sweep_study.py``).
    """
    profile = resolve_target(target)  # once for the whole sweep; every point gets the loaded profile
    cfg = SearchConfig(**{**(config.to_dict() if config else {}), **overrides, "target": target_spec(profile)})
    spec = resolve_sweep(sweep, model, train_data, profile, tuple(cfg.bits_range))
    fixed = parse_budgets(fixed_budgets)
    if any(b.metric == spec.metric for b in fixed):
        raise ConfigError(f"fixed budgets {[str(b) for b in fixed]} repeat the swept metric '{spec.metric}'")
    if not 0 < short_fraction <= 1:
        raise ConfigError(f"short_fraction must be in (0, 1], got {short_fraction}")
    if storage is not None:
        from ..distributed import open_storage

        open_storage(storage)  # an unreachable storage fails here, before the float model is trained
    out = Path(out_dir) if out_dir else None
    meta = dict(meta or {})
    meta.setdefault("model", type(model).__name__)
    t_start = time.perf_counter()
    cache = float_weights or (out / "float_model.pt" if out else None)
    pretrained = pretrain_float(copy.deepcopy(model), pretrain_data if pretrain_data is not None else train_data,
                                val_data, cfg, cache=cache)
    #: per point: wall-clock seconds, and process CPU seconds (steadier on a shared machine)
    timings: dict = {"pretrain_s": pretrained.seconds, "points": {}, "points_cpu": {}}
    rows: list[dict] = []
    state: dict | None = None
    budgets = spec.budgets
    epochs = cfg.search_epochs + cfg.finetune_epochs if baseline_epochs is None else baseline_epochs
    if storage is not None:
        from ._sweep_study import run_points_on_study

        rows, worker = run_points_on_study(
            pretrained, train_data, val_data, profile, cfg, spec, fixed, baselines, epochs, out, meta, timings,
            storage=storage, study_name=study_name, options=study_options)
        meta = {**meta, "study": worker}
        warm_start = False
        budgets = spec.budgets
    with tqdm(total=len(budgets) + len(baselines), desc=f"sweep {profile.name}", unit="point",
              disable=storage is not None) as bar:
        for index, budget in enumerate(budgets if storage is None else [], start=1):
            name = point_name(index, budget)
            warm = warm_start and state is not None
            point_cfg = _point_config(cfg, warm, short_fraction)
            cpu = time.process_time()
            row, state_out, seconds = _run_point(
                pretrained.model, train_data, val_data, profile, point_cfg, [budget, *fixed], out, name, meta,
                warm_state=state if warm else None, kind="search", budget_value=budget.value)
            if state_out is not None:
                state = state_out
            timings["points"][name] = seconds
            timings["points_cpu"][name] = time.process_time() - cpu
            rows.append(row)
            bar.update(1)
        t_searched = time.perf_counter()
        for baseline in baselines if storage is None else []:
            point_cfg = baseline_config(cfg, baseline, epochs)
            cpu = time.process_time()
            row, _, seconds = _run_point(pretrained.model, train_data, val_data, profile, point_cfg, list(fixed),
                                         out, baseline, meta, warm_state=None, kind="uniform")
            timings["points"][baseline] = seconds
            timings["points_cpu"][baseline] = time.process_time() - cpu
            rows.append(row)
            bar.update(1)
    timings["sweep_s"] = t_searched - t_start
    timings["baselines_s"] = time.perf_counter() - t_searched
    timings["total_s"] = time.perf_counter() - t_start
    frame = points_frame(rows)
    frame["float_accuracy"] = pretrained.accuracy
    frame = mark_fronts(frame)
    front = summarise_front(frame)
    swept = summarise_front(frame, (Budget(spec.metric, 1.0).key,))
    sweep_meta = {
        **meta, "target": profile.name, "sweep": str(spec), "budgets": [str(b) for b in budgets],
        "fixed_budgets": [str(b) for b in fixed], "baselines": list(baselines), "warm_start": warm_start,
        "short_fraction": short_fraction, "baseline_epochs": epochs, "float_accuracy": pretrained.accuracy,
        "float_weights": str(pretrained.loaded_from or cache or ""), "pretrain_epochs_run": pretrained.epochs,
        "config": cfg.to_dict(), "seed": cfg.seed, "timings": timings,
        "train_images": len(train_data), "eval_images": len(val_data), "versions": _versions(),
        "pretrain_images": pretrained.info.get("images", len(pretrain_data if pretrain_data is not None else train_data)),
        "pretrain_seconds": pretrained.info.get("seconds", pretrained.seconds),
        "front": front.to_dict(), "swept_front": swept.to_dict(),
    }
    result = SweepResult(frame, front, swept, timings, sweep_meta, out)
    if out is not None:
        write_sweep_outputs(out, result)
    return result


def _versions() -> dict:
    import platform

    from .. import __version__

    return {"hwqnn": __version__, "torch": torch.__version__, "python": platform.python_version()}


def resolve_sweep(sweep: str | SweepSpec, model: nn.Module, train_data, profile: HardwareProfile,
                  bits_range: tuple[int, int] = (2, 8)) -> SweepSpec:
    """A SweepSpec from a spec, a ``METRIC=LOW:HIGH:COUNT`` string or ``auto[:COUNT]`` (needs the workload)."""
    if isinstance(sweep, SweepSpec):
        return sweep
    if not is_auto(sweep):
        return parse_sweep(sweep)
    import cost_models

    example = train_data[0][0][None]
    workload = cost_models.extract_workload(copy.deepcopy(model).eval(), example)
    return auto_sweep(sweep, workload, profile, bits_range)


def baseline_config(cfg: SearchConfig, baseline: str, epochs: int) -> SearchConfig:
    """A uniform baseline (``w4a4``) fine-tuned for ``epochs`` from the pretrained float weights."""
    w_bits, a_bits = baseline_bits(baseline)
    return SearchConfig(**{**cfg.to_dict(), "method": "uniform", "uniform_bits": (w_bits, a_bits),
                           "pretrain_epochs": 0, "search_epochs": 0, "finetune_epochs": epochs})


def _point_config(cfg: SearchConfig, warm: bool, fraction: float) -> SearchConfig:
    data = {**cfg.to_dict(), "pretrain_epochs": 0}
    if warm:
        data["search_epochs"] = short_epochs(cfg.search_epochs, fraction)
        data["finetune_epochs"] = short_epochs(cfg.finetune_epochs, fraction)
    return SearchConfig(**data)


def _run_point(float_model: nn.Module, train_data, val_data, profile: HardwareProfile, cfg: SearchConfig,
               budgets: list[Budget], out: Path | None, name: str, meta: dict, *, warm_state: dict | None, kind: str,
               budget_value: float = float("nan")) -> tuple[dict, dict | None, float]:
    """Run (or reuse, when its run directory is finished) one point; returns its row, search state and time."""
    from ..searching import search

    run_dir = out / RUNS / name if out else None
    budget_text = ",".join(str(b) for b in budgets) if kind == "search" else ""
    reused = _reuse(run_dir, name, kind, budget_text, budget_value, cfg, budgets)
    if reused is not None:
        return reused
    start = time.perf_counter()
    point_meta = {**meta, "sweep_point": name, "warm_started": warm_state is not None}
    try:
        result = search(copy.deepcopy(float_model), train_data, val_data, target=profile,
                        budgets=budgets, config=cfg, run_dir=run_dir, meta=point_meta,
                        warm_start=warm_state, overwrite=True)  # an unfinished point of this sweep restarts
    except BudgetInfeasibleError as exc:
        log.warning("sweep point %s is infeasible: %s", name, exc)
        seconds = time.perf_counter() - start
        return failed_row(name=name, kind=kind, status="infeasible", message=str(exc), target=profile.name,
                          model=meta.get("model", ""), budget=budget_text, budget_value=budget_value,
                          wall_time_s=seconds), None, seconds
    seconds = time.perf_counter() - start
    if run_dir is not None and result.search_state is not None:
        atomic_torch_save(result.search_state, run_dir / STATE_FILE)
    row = point_row(result.metrics, result.policy.to_dict(), name=name, kind=kind, budget=budget_text,
                    budget_value=budget_value, run_dir=f"{RUNS}/{name}" if run_dir else "", wall_time_s=seconds)
    return row, result.search_state, seconds


#: Settings a finished point must share with the sweep that finds it, to be reused.
_REUSE_KEYS = ("target", "method", "uniform_bits", "search_epochs", "finetune_epochs", "single_path", "batch_size",
               "seed", "bits_range", "scheme_sharing")


def _reuse(run_dir: Path | None, name: str, kind: str, budget: str, budget_value: float, cfg: SearchConfig,
           budgets: list[Budget]):
    """A finished point of an interrupted sweep: its row and search state, read back from disk."""
    if run_dir is None or not (run_dir / "metrics.json").is_file():
        return None
    state_path = run_dir / STATE_FILE
    if kind == "search" and not state_path.is_file():
        return None
    import yaml

    metrics = read_metrics(run_dir)
    stored, wanted = metrics.get("config") or {}, cfg.to_dict()
    differ = [k for k in _REUSE_KEYS if stored.get(k) != wanted.get(k)]
    if sorted(b["spec"] for b in (metrics.get("budgets") or {}).values()) != sorted(str(b) for b in budgets):
        differ.append("budgets")
    if differ:
        raise RunDirError(f"{run_dir} holds a finished point made with other settings ({', '.join(differ)}); "
                          f"pass a new --out (or delete it) to run this sweep")
    policy = yaml.safe_load((run_dir / "policy.yaml").read_text())
    state = torch.load(state_path, map_location="cpu", weights_only=True) if kind == "search" else None
    seconds = float((metrics.get("wall_time_s") or {}).get("total_s", float("nan")))
    log.info("sweep point %s already finished in %s; reusing it", name, run_dir)
    row = point_row(metrics, policy, name=name, kind=kind, budget=budget, budget_value=budget_value,
                    run_dir=f"{RUNS}/{name}", wall_time_s=seconds)
    return row, state, seconds


__all__ = ["run_sweep", "SweepResult", "point_name", "short_epochs", "COST_KEYS"]
