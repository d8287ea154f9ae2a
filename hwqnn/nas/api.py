"""``hwqnn.nas(...)``: train a supernet (or continue / reuse one), search it for a target, extract the pick.

The phases and their files in the run directory:

1. supernet training (``checkpoint.pt`` every few steps; resumable), then ``supernet.pt``;
2. NSGA-II on the target (``front.csv``: every evaluated subnet, the Pareto front flagged);
3. extraction of the most accurate front subnet within budgets (or the cheapest in ``config.pick``), an
   optional fine-tune, then the ordinary run files (``policy.yaml``, ``model.pt``, ``metrics.json``,
   ``history.csv``), so ``hwqnn export`` and ``hwqnn report`` read it like any run.
"""

from __future__ import annotations

import copy
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from cost_models import CostMetric

from .._io import atomic_write_text
from ..data import load_dataset, split_train_val
from ..errors import BudgetInfeasibleError, DataError
from ..qag import QuantizedModel
from ..run_dir import atomic_torch_save, prepare_run_dir, read_checkpoint, tidy_for_json, write_finished_run
from ..searching import format_cost, parse_budgets
from ..searching.budgets import resolve_budgets
from ..searching.problem import resolve_target
from .config import NasConfig
from .evaluate import AccuracyEvaluator, SubnetCoster, accuracy, calibration_batches, searchable_bits
from .extract import extract, finetune
from .search import FrontPoint, check_budgets_reachable, known_points, nsga2, pareto_front, runs_on
from .space import get_space
from .store import StoredSupernet, load_supernet, read_evaluations, save_supernet, write_front
from .subnets import model_spec_of
from .supernet import Subnet, Supernet, uniform_subnet
from .train import Replay, SupernetTrainer

log = logging.getLogger(__name__)
METHOD = "hqnas"


@dataclass
class NasResult:
    """The extracted subnet (policy, quantized model, metrics), the search's points and front, the run dir."""

    subnet: Subnet
    policy: object
    model: QuantizedModel
    metrics: dict
    points: list[FrontPoint]
    front: list[FrontPoint]
    run_dir: Path | None
    supernet: Supernet


@dataclass
class _Data:
    fit_x: Tensor
    fit_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    name: str


def _tensors(dataset) -> tuple[Tensor, Tensor]:
    if hasattr(dataset, "tensors"):
        return dataset.tensors[0].float(), dataset.tensors[1].long()
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(xs).float(), torch.as_tensor(ys).long()


def load_data(config: NasConfig, space) -> _Data:
    name = config.data or space.default_data
    splits = load_dataset(name, config.data_dir, seed=config.seed)
    if tuple(splits.input_shape) != tuple(space.input_shape):
        raise DataError(f"data '{name}' has inputs of shape {tuple(splits.input_shape)}; space '{space.name}' "
                        f"takes {tuple(space.input_shape)}: pick a space for this data (hwqnn nas --list-spaces)")
    fit, val = split_train_val(splits.train, config.val_fraction, seed=config.seed)
    return _Data(*_tensors(fit), *_tensors(val), *_tensors(splits.test), splits.num_classes, name)


def _replay_sample(x: Tensor, y: Tensor, size: int, seed: int) -> tuple[Tensor, Tensor]:
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:size]
    return x[idx].clone(), y[idx].clone()


# --- phase 1: the supernet -------------------------------------------------------------------------
def _train(config: NasConfig, data: _Data, run_dir: Path | None, resume: bool,
           base: StoredSupernet | None, run_meta: dict) -> StoredSupernet:
    space = get_space(config.space)
    torch.manual_seed(config.seed)  # the supernet's initialisation
    supernet = copy.deepcopy(base.supernet) if base is not None else Supernet(space, data.num_classes)
    replay = None
    if base is not None:
        replay = Replay(base.replay_images, base.replay_labels, copy.deepcopy(base.supernet))
    trainer = SupernetTrainer(supernet, data.fit_x, data.fit_y, config, replay)
    elapsed = 0.0
    if resume and run_dir is not None and (run_dir / "checkpoint.pt").is_file():
        state = read_checkpoint(run_dir / "checkpoint.pt")
        if state["phase"] == "supernet":
            trainer.load_state_dict(state["strategy"])
            elapsed = float(state["meta"].get("train_time_s", 0.0))
    start = time.perf_counter()

    def save(t: SupernetTrainer) -> None:
        if run_dir is None:
            return
        atomic_torch_save({"phase": "supernet", "epoch": t.epoch, "model": {}, "history": t.history,
                           "strategy": t.state_dict(), "rng": torch.get_rng_state(), "policy": None,
                           "float_accuracy": None, "config": config.to_dict(),
                           "meta": {"train_time_s": elapsed + time.perf_counter() - start, "run_meta": run_meta}},
                          run_dir / "checkpoint.pt")

    trainer.run(save, desc="continue supernet" if base is not None else "supernet")
    images, labels = _replay_sample(data.fit_x, data.fit_y, config.replay_size, config.seed)
    if base is not None:  # keep old and new data in the replay sample, half each
        half = config.replay_size // 2
        images = torch.cat([base.replay_images[:half], images[: config.replay_size - half]])
        labels = torch.cat([base.replay_labels[:half], labels[: config.replay_size - half]])
    stored = StoredSupernet(supernet, config, images, labels, trainer.history, elapsed + time.perf_counter() - start)
    if run_dir is not None:
        save_supernet(run_dir, stored)
    return stored


# --- phases 2 and 3: search, extract, write ---------------------------------------------------------
#: What a subnet's inherited accuracy depends on besides the supernet: a re-target that changes none of these
#: reuses the source run's evaluations.
_EVALUATION_FIELDS = ("data", "data_dir", "seed", "val_fraction", "recal_batches", "batch_size")


def _reusable_evaluations(source: Path, base: StoredSupernet, config: NasConfig) -> tuple[dict, list]:
    if any(getattr(base.config, f) != getattr(config, f) for f in _EVALUATION_FIELDS):
        return {}, []
    return read_evaluations(source, base.supernet.space)


def _search_and_extract(stored: StoredSupernet, config: NasConfig, data: _Data, run_dir: Path | None,
                        meta: dict, known: dict | None = None, known_front: list | None = None) -> NasResult:
    space, supernet = stored.supernet.space, stored.supernet
    t0 = time.perf_counter()
    profile = resolve_target(config.target)
    w_bits, a_bits = searchable_bits(space, profile, config.all_bits)
    coster = SubnetCoster(space, profile, supernet.num_classes, config.cost_batch_size)
    reference = coster(uniform_subnet(space, space.largest(), 8, 8))
    budgets = parse_budgets(list(config.budgets))
    bounds = resolve_budgets(budgets, lambda: reference)
    check_budgets_reachable(space, coster, bounds, w_bits, a_bits, profile.name)
    calib = calibration_batches(data.fit_x, config.recal_batches, config.batch_size, config.seed)
    evaluate = AccuracyEvaluator(supernet, calib, data.val_x, data.val_y, known)
    seeds = [uniform_subnet(space, a, max(w_bits), max(a_bits)) for a in (space.largest(), space.smallest())]
    seeds += [uniform_subnet(space, space.largest(), min(w_bits), min(a_bits))]
    # a re-target starts from the source run's front and keeps every subnet it already evaluated
    seeds += [s for s in known_front or () if runs_on(s, w_bits, a_bits) and s not in seeds][: config.population]
    points = nsga2(space, evaluate, coster, bounds, config.objectives, w_bits, a_bits, trials=config.trials,
                   population=config.population, seed=config.seed, seeds=seeds)
    searched = {p.subnet for p in points}
    points += [p for p in known_points(known or {}, coster, bounds, w_bits, a_bits) if p.subnet not in searched]
    front = pareto_front(points, config.objectives)
    if not front:
        best = {k: min(p.costs[k] for p in points) for k in bounds}
        raise BudgetInfeasibleError(
            f"NSGA-II found no subnet within the budgets on {profile.name} in {config.trials} trials (smallest seen: "
            + ", ".join(f"{CostMetric(k).budget_name} {format_cost(k, v)}" for k, v in best.items())
            + "); relax the budget or raise --trials")
    chosen = max(front, key=lambda p: p.accuracy) if config.pick == "accuracy" else min(front, key=lambda p: p.costs[config.pick])
    search_time = time.perf_counter() - t0
    t1 = time.perf_counter()
    qmodel = extract(supernet, chosen.subnet, calib)
    extract_time = time.perf_counter() - t1
    test_time = 0.0

    def test_accuracy() -> float:  # reporting, not the search's own work: timed apart
        nonlocal test_time
        t = time.perf_counter()
        acc = accuracy(qmodel, data.test_x, data.test_y)
        test_time += time.perf_counter() - t
        return acc

    history = list(stored.history)
    inherited_test = test_acc = test_accuracy()
    if config.finetune_epochs:
        t1 = time.perf_counter()
        history += finetune(qmodel, data.fit_x, data.fit_y, epochs=config.finetune_epochs, lr=config.finetune_lr,
                            batch_size=config.batch_size, seed=config.seed)
        extract_time += time.perf_counter() - t1
        test_acc = test_accuracy()
    times = {"supernet": stored.train_time_s, "search": search_time, "extract": extract_time,
             "test_evaluation": test_time}
    policy = chosen.subnet.policy(space)
    policy.meta.update({"method": METHOD, "target": profile.name})
    report = coster.report(chosen.subnet)
    costs = {k: float(getattr(report, k)) for k in chosen.costs}
    metrics = _metrics(space, config, data, profile.name, chosen, costs, reference, budgets, bounds, report,
                       inherited_test, test_acc, front, times, meta)
    metrics["evaluations"] = {"evaluated": evaluate.evaluated, "reused": evaluate.reused,
                              "reusable_from_source": len(known or {})}
    if run_dir is not None:
        policy.save(run_dir / "policy.yaml")
        write_front(run_dir, points, space, front)
        atomic_write_text(run_dir / "history.csv", pd.DataFrame(history).to_csv(index=False))
        atomic_torch_save(qmodel.state_dict(), run_dir / "model.pt")
        metrics = write_finished_run(run_dir, metrics)
        checkpoint = run_dir / "checkpoint.pt"
        if checkpoint.exists():
            checkpoint.unlink()
    return NasResult(chosen.subnet, policy, qmodel, metrics, points, front, run_dir, supernet)


def _metrics(space, config, data, target, chosen, costs, reference, budgets, bounds, report, inherited_test,
             test_acc, front, times, meta) -> dict:
    from .. import __version__

    within = {k: costs[k] <= b * (1 + 1e-9) for k, b in bounds.items()}
    return tidy_for_json({
        **meta,
        "method": METHOD, "model": model_spec_of(space.encode(chosen.subnet.arch)), "space": space.name,
        "architecture": chosen.subnet.to_dict(space), "num_classes": data.num_classes,
        "input_shape": list(space.input_shape), "data": data.name, "data_dir": config.data_dir, "target": target,
        "num_layers": len(chosen.subnet.bits), "float_accuracy": None,
        "inherited_accuracy": 100 * chosen.accuracy, "inherited_test_accuracy": 100 * inherited_test,
        "quantized_accuracy": 100 * test_acc, "accuracy_unit": "%", "costs": costs, "reference_w8a8": reference,
        "reference_model": "largest subnet of the space at w8a8",
        "budgets": {b.key: {"spec": str(b), "bound": bounds[b.key]} for b in budgets}, "within_budget": within,
        "layer_costs": report.layers.to_dict(orient="list"), "seed": config.seed,
        "config": {**config.to_dict(), "cost_batch_size": config.cost_batch_size},
        "front": [p.to_dict(space) for p in front],
        "versions": {"hwqnn": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "wall_time_s": times,
        "units": {m.value: m.unit for m in CostMetric},
        "costs_readable": {k: format_cost(k, v) for k, v in costs.items()},
    })


def _resumed(path: Path, meta: dict | None) -> tuple[NasConfig, str | None, dict]:
    if (path / "checkpoint.pt").is_file():
        state = read_checkpoint(path / "checkpoint.pt")
        run_meta = dict(state.get("meta", {}).get("run_meta") or {})
        config = NasConfig.from_dict(state["config"])
    else:
        config, run_meta = load_supernet(path).config, {}
    run_meta = {**run_meta, **(meta or {})}
    return config, (run_meta.get("lifelong") or {}).get("continue_from"), run_meta


def nas(config: NasConfig | None = None, *, run_dir: str | Path | None = None, resume: bool = False,
        overwrite: bool = False, continue_from: str | Path | None = None, retarget: str | Path | None = None,
        meta: dict | None = None, **overrides) -> NasResult:
    """Joint architecture + quantization search (HQNAS) for one target.

    ``overrides`` set :class:`NasConfig` fields (``space``, ``target``, ``budgets``, ``epochs``, ...). With
    ``run_dir`` the run is checkpointed and written; ``resume=True`` continues a killed run there.
    ``continue_from=RUN`` continues RUN's supernet on new data (replay + distillation) before searching;
    ``retarget=RUN`` searches RUN's supernet for ``target``/``budgets`` without training.
    """
    config = (config or NasConfig()).replace(**overrides) if overrides else (config or NasConfig())
    if resume and run_dir is not None:  # a resumed run uses the configuration it started with
        config, continue_from, meta = _resumed(Path(run_dir), meta)
        overrides = {}
    source = continue_from or retarget
    base = None
    if source is not None:
        explicit_space = overrides.get("space")
        base = load_supernet(source, expect_space=explicit_space)
        inherited = base.config.to_dict()
        keep = {k: v for k, v in config.to_dict().items() if k in overrides}
        if retarget is not None and "data" not in overrides:
            keep.setdefault("data_dir", inherited.get("data_dir"))
        config = NasConfig.from_dict({**inherited, **keep, "space": base.supernet.space.name})
    space = get_space(config.space)
    path = prepare_run_dir(run_dir, resume=resume, overwrite=overwrite) if run_dir is not None else None
    data = load_data(config, space)
    meta = {**(meta or {}), "lifelong": {"continue_from": str(continue_from) if continue_from else None,
                                         "retarget": str(retarget) if retarget else None}}
    known, known_front = {}, []
    if retarget is not None:
        stored = base
        known, known_front = _reusable_evaluations(Path(retarget), base, config)
    elif resume and path is not None and (path / "supernet.pt").is_file() and not (path / "checkpoint.pt").is_file():
        stored = load_supernet(path)
    else:
        if data.num_classes != (base.supernet.num_classes if base else data.num_classes):
            raise DataError(f"new data has {data.num_classes} classes; the supernet of {source} has "
                            f"{base.supernet.num_classes}")
        stored = _train(config, data, path, resume, base, meta)
    return _search_and_extract(stored, config, data, path, meta, known, known_front)
