"""Joint search: QSS (scheme DNAS) + QPL (learned bits) under device budgets, finalized by an exact MILP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from torch import nn

from ..run_dir import prepare_run_dir
from .budgets import DEFAULT_BUDGETS, Budget, parse_budget, parse_budgets
from .config import SearchConfig
from .study import SearchResult, Study


def search(
    model: nn.Module,
    train_data,
    val_data,
    *,
    target: str = "jetson",
    budgets: Sequence[str | Budget] | None = None,
    config: SearchConfig | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    meta: dict | None = None,
    on_step: Callable[[str, int], None] | None = None,
    warm_start: dict | None = None,
    overwrite: bool = False,
    **overrides,
) -> SearchResult:
    """Search a mixed-precision policy for ``target`` under ``budgets``, then fine-tune and evaluate it.

    ``train_data``/``val_data`` are map-style datasets of ``(input, label)``; ``val_data`` is held out
    and only used to report accuracy. ``overrides`` set SearchConfig fields (e.g. ``search_epochs=4``).
    With ``run_dir`` every phase checkpoints and the run directory is written; ``resume=True``
    continues an interrupted run from it. ``warm_start`` (a previous result's ``search_state``) starts
    the search from a neighbour's weights, logits and bits instead of from the float model.
    A new run refuses a ``run_dir`` that already holds a run unless ``overwrite`` (which replaces it).
    """
    if run_dir is not None:
        prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
    cfg = SearchConfig(**{**(config.to_dict() if config else {}), **overrides, "target": target,
                          "budgets": [str(b) for b in budgets] if budgets is not None else
                          (config.budgets if config else None)})
    study = Study(model, train_data, val_data, cfg, run_dir=run_dir, meta=meta, on_step=on_step,
                  warm_start=warm_start)
    return study.run(resume=resume)


__all__ = ["search", "SearchConfig", "SearchResult", "Study", "Budget", "parse_budget", "parse_budgets",
           "DEFAULT_BUDGETS"]
