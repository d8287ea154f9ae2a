"""``run_report``: one budget sweep per target from one shared float model, then the report."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from torch import nn
from tqdm.auto import tqdm

from cost_models import HardwareProfile

from ..errors import ConfigError
from ..pareto import DEFAULT_BASELINES, resolve_sweep, run_sweep
from ..searching.budgets import parse_budget
from ..searching.config import SearchConfig
from ..searching.problem import resolve_target
from ._build import build_report

SWEEPS = "sweeps"
log = logging.getLogger(__name__)


def run_report(
    model: nn.Module,
    train_data,
    val_data,
    *,
    targets: Sequence[str | Path | HardwareProfile],
    out_dir: str | Path,
    sweep: str = "auto:4",
    baselines: Sequence[str] = DEFAULT_BASELINES,
    config: SearchConfig | None = None,
    fixed_budgets: Sequence[str] = (),
    float_weights: str | Path | None = None,
    command: str = "",
    meta: dict | None = None,
    notes: Sequence[str] = (),
    title: str | None = None,
    work_dir: str | Path | None = None,
    **sweep_options,
) -> Path:
    """Sweep every target (each its own ``<work_dir>/<target>/``), then write ``<out>/report.html``.

    ``work_dir`` (default ``<out>/sweeps``) holds the sweep and run directories with their weights: keep it
    out of version control and rebuild the report from it with ``build_report`` / ``--from``.

    The float model is pretrained once (or loaded from ``float_weights``) and shared by every target.
    Unknown targets fail before any training. ``fixed_budgets`` hold at every point of every target, except
    a budget on the metric a target sweeps (with ``auto`` that differs per target). Finished sweep points are
    reused when re-run on the same ``work_dir``, so an interrupted report resumes.
    """
    profiles = [resolve_target(t) for t in targets]  # once; ProfileError for an unknown target, up front
    names = [p.name for p in profiles]
    for name in sorted({n for n in names if names.count(n) > 1}):
        files = ", ".join(p.file for p in profiles if p.name == name)
        raise ConfigError(f"two targets are both named '{name}' ({files}); their sweeps and report sections would "
                          f"collide: give one profile another name: field")
    out = Path(out_dir)
    work = Path(work_dir) if work_dir else out / SWEEPS
    shared_weights = Path(float_weights) if float_weights else work / "float_model.pt"
    sweep_dirs = []
    bits_range = tuple(config.bits_range) if config else tuple(SearchConfig().bits_range)
    for profile in tqdm(profiles, desc="targets", unit="target"):
        sweep_dir = work / profile.name
        spec = resolve_sweep(sweep, model, train_data, profile, bits_range)
        fixed = [b for b in fixed_budgets if parse_budget(b).metric != spec.metric]
        if len(fixed) < len(fixed_budgets):
            log.info("%s sweeps %s: the fixed %s budget does not apply there", profile.name, spec.metric, spec.metric)
        run_sweep(model, train_data, val_data, target=profile, sweep=spec, baselines=baselines, config=config,
                  fixed_budgets=fixed, out_dir=sweep_dir, meta=meta, float_weights=shared_weights, **sweep_options)
        sweep_dirs.append(sweep_dir)
    return build_report(sweep_dirs, out, command=command, notes=notes, title=title)
