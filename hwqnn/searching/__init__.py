"""Search a policy for a device: resolve the problem once, run a registered strategy through the runner.

``search()`` is the edge: it converts the model (QAG), resolves the target and the budgets into a
:class:`Problem`, picks the strategy registered under ``config.method`` and hands all three to the
:class:`Runner`, which owns the phases, checkpoints and run directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from cost_models import HardwareProfile

from ..deployment import restrict_to_target
from ..distributed import current_context, on_main
from ..qag import convert
from ..run_dir import prepare_run_dir
from .budgets import DEFAULT_BUDGETS, Budget, default_budgets, format_cost, parse_budget, parse_budgets
from .config import SearchConfig
from .problem import Problem, exact_budget_spec, resolve_target, target_spec
from .runner import Runner, SearchResult, resolve_device
from .strategies import Strategy, StrategyError, get_strategy, list_strategies, register_strategy


def search(
    model: nn.Module,
    train_data,
    val_data,
    *,
    target: str | os.PathLike | HardwareProfile | None = None,
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

    ``target`` is a profile name, a YAML path or a loaded ``HardwareProfile`` (default: ``config.target``);
    ``budgets`` are strings (``latency=0.6x``) or ``Budget`` values (default: ``config.budgets``, else
    ``size=0.5x latency=1.0x``). Both are resolved here, once. ``train_data``/``val_data`` are map-style
    datasets of ``(input, label)``; ``val_data`` is held out and only used to report accuracy.
    ``overrides`` set SearchConfig fields (e.g. ``search_epochs=4``, ``method="uniform"``). With
    ``run_dir`` every phase checkpoints and the run directory is written; ``resume=True`` continues an
    interrupted run from it; a new run refuses a ``run_dir`` that already holds a run unless ``overwrite``.
    ``warm_start`` (a previous result's ``search_state``) starts the search from a neighbour's weights,
    logits and bits instead of from the float model.
    """
    cfg = SearchConfig(**{**(config.to_dict() if config else {}), **overrides})
    if run_dir is not None:  # under torchrun only rank 0 touches the run directory; its errors reach every rank
        on_main(current_context(resolve_device(cfg.device)),
                lambda: prepare_run_dir(run_dir, resume=resume, overwrite=overwrite))
    profile = resolve_target(target if target is not None else cfg.target)
    given = budgets if budgets is not None else cfg.budgets
    parsed = parse_budgets(given if given is not None else default_budgets(profile))
    cfg.target, cfg.budgets = target_spec(profile), [exact_budget_spec(b) for b in parsed]  # the run's record
    torch.manual_seed(cfg.seed)
    x0 = train_data[0][0]
    example = torch.stack([train_data[i][0] for i in range(min(2, len(train_data)))]).to(x0.dtype)
    qmodel = convert(model, example, schemes=cfg.schemes, bits_range=cfg.bits_range,
                     scheme_sharing=cfg.scheme_sharing, strict=cfg.strict)
    restrict_to_target(qmodel, profile, allow_emulated=cfg.allow_emulated)  # the deployable space by default
    if warm_start is not None:
        qmodel.load_state_dict(warm_start)
    problem = Problem.build(qmodel.workload, profile, parsed, batch_size=cfg.cost_batch_size)
    strategy = get_strategy(cfg.method)(problem, cfg)
    meta = {"input_shape": list(x0.shape), **(meta or {})}
    runner = Runner(qmodel, problem, strategy, train_data, val_data, cfg, run_dir=run_dir, meta=meta,
                    on_step=on_step)
    return runner.run(resume=resume)


__all__ = ["search", "SearchConfig", "SearchResult", "Runner", "Problem", "Budget", "parse_budget",
           "parse_budgets", "DEFAULT_BUDGETS", "default_budgets", "format_cost", "Strategy", "StrategyError", "register_strategy", "get_strategy",
           "list_strategies"]
