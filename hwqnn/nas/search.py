"""Hardware-aware NSGA-II over (architecture, per-layer W/A bits) of a trained supernet, with optuna.

Genes: the depth of each stage, the width and kernel of every block slot, and the weight and activation bits
of every layer of the largest subnet (a smaller subnet reads the genes of the layers it has). Objectives:
accuracy inherited from the supernet (maximised) and the target's costs (minimised). Budgets are optuna
constraints (``cost - bound <= 0``), so NSGA-II's constrained domination keeps feasible subnets ahead of
infeasible ones. An infeasible subnet is not evaluated for accuracy (reported as 0).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from tqdm.auto import tqdm

from cost_models import CostMetric

from ..errors import BudgetInfeasibleError
from ..searching import format_cost
from .nets import active_layer_names
from .space import Arch, SpaceSpec
from .supernet import Subnet, uniform_subnet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrontPoint:
    """One evaluated subnet: its accuracy, costs and whether it meets every budget."""

    subnet: Subnet
    accuracy: float
    costs: Mapping[str, float]
    feasible: bool

    def to_dict(self, space: SpaceSpec) -> dict:
        return {"accuracy": self.accuracy, **dict(self.costs), "feasible": self.feasible,
                "mean_w_bits": self.subnet.mean_bits()[0], "mean_a_bits": self.subnet.mean_bits()[1],
                **self.subnet.to_dict(space)}


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (all objectives to minimise) not dominated by another row."""
    n = len(values)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        dominated = np.all(values <= values[i], axis=1) & np.any(values < values[i], axis=1)
        keep[i] = not dominated.any()
    return keep


def pareto_front(points: Sequence[FrontPoint], objectives: Sequence[str]) -> list[FrontPoint]:
    """The feasible points on the (accuracy, costs) Pareto front, most accurate first; duplicates once."""
    unique = list({p.subnet: p for p in points if p.feasible}.values())
    if not unique:
        return []
    values = np.array([[-p.accuracy, *(p.costs[o] for o in objectives)] for p in unique])
    front = [p for p, keep in zip(unique, pareto_mask(values)) if keep]
    return sorted(front, key=lambda p: (-p.accuracy, p.costs[objectives[0]]))


def _suggest(trial: optuna.Trial, space: SpaceSpec, w_bits: Sequence[int], a_bits: Sequence[int]) -> Subnet:
    depths, widths, kernels = [], [], []
    for i, stage in enumerate(space.stages):
        depths.append(trial.suggest_categorical(f"depth{i}", list(space.stage_depths(i))))
        widths.append(tuple(trial.suggest_categorical(f"width{i}.{b}", list(space.widths)) for b in range(stage.max_depth)))
        kernels.append(tuple(trial.suggest_categorical(f"kernel{i}.{b}", list(space.kernels))
                             if len(space.kernels) > 1 else space.kernels[0] for b in range(stage.max_depth)))
    arch = Arch(tuple(depths), tuple(widths), tuple(kernels)).canonical(space)
    bits = tuple((trial.suggest_categorical(f"w:{name}", list(w_bits)), trial.suggest_categorical(f"a:{name}", list(a_bits)))
                 for name in active_layer_names(None, space, arch))
    return Subnet(arch, bits)


def _params_of(subnet: Subnet, space: SpaceSpec, w_bits: Sequence[int], a_bits: Sequence[int]) -> dict:
    params = {}
    for i, stage in enumerate(space.stages):
        params[f"depth{i}"] = subnet.arch.depths[i]
        for b in range(stage.max_depth):
            params[f"width{i}.{b}"] = subnet.arch.widths[i][b]
            if len(space.kernels) > 1:
                params[f"kernel{i}.{b}"] = subnet.arch.kernels[i][b]
    largest = active_layer_names(None, space, space.largest())
    given = subnet.layer_bits(space)
    for name in largest:
        w, a = given.get(name, (max(w_bits), max(a_bits)))
        params[f"w:{name}"], params[f"a:{name}"] = w, a
    return params


def runs_on(subnet: Subnet, w_bits: Sequence[int], a_bits: Sequence[int]) -> bool:
    """Whether every layer of ``subnet`` uses bits the search may pick (the target's deployable ones)."""
    return all(w in w_bits and a in a_bits for w, a in subnet.bits)


def known_points(known: Mapping[Subnet, float], coster: Callable[[Subnet], dict], bounds: Mapping[str, float],
                 w_bits: Sequence[int], a_bits: Sequence[int]) -> list[FrontPoint]:
    """Subnets whose accuracy is already known (another target's search of the same supernet), costed here."""
    points = []
    for subnet, acc in known.items():
        if runs_on(subnet, w_bits, a_bits):
            costs = coster(subnet)
            feasible = all(costs[k] <= b * (1 + 1e-9) for k, b in bounds.items())
            points.append(FrontPoint(subnet, acc, costs, feasible))
    return points


def check_budgets_reachable(space: SpaceSpec, coster: Callable[[Subnet], dict], bounds: Mapping[str, float],
                            w_bits: Sequence[int], a_bits: Sequence[int], target: str) -> None:
    """Fail before searching when even the smallest subnet at the lowest bits misses a budget, naming the
    smallest achievable value of each budgeted cost."""
    if not bounds:
        return
    candidates = [uniform_subnet(space, space.smallest(), w, a) for w in (min(w_bits), max(w_bits))
                  for a in (min(a_bits), max(a_bits))]
    best = {key: min(coster(s)[key] for s in candidates) for key in bounds}
    missed = [key for key, bound in bounds.items() if best[key] > bound * (1 + 1e-9)]
    if missed:
        parts = [f"{CostMetric(k).budget_name} <= {format_cost(k, bounds[k])} "
                 f"(smallest achievable: {format_cost(k, best[k])})" for k in missed]
        raise BudgetInfeasibleError(f"no subnet of space '{space.name}' meets the budget on {target}: "
                                    f"{'; '.join(parts)}; relax the budget or pick another target")


def nsga2(space: SpaceSpec, evaluate: Callable[[Subnet], float], coster: Callable[[Subnet], dict],
          bounds: Mapping[str, float], objectives: Sequence[str], w_bits: Sequence[int], a_bits: Sequence[int], *,
          trials: int, population: int, seed: int, seeds: Sequence[Subnet] = ()) -> list[FrontPoint]:
    """Run NSGA-II and return every evaluated point (see :func:`pareto_front` for the front)."""
    keys = list(bounds)

    # optuna >= 5 takes constraints from Trial.set_constraint; optuna 4 from the sampler's constraints_func.
    native = hasattr(optuna.trial.Trial, "set_constraint")
    extra = {} if native else {"constraints_func": lambda t: t.user_attrs["constraints"]}
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed, **extra)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize"] + ["minimize"] * len(objectives), sampler=sampler)
    for subnet in seeds:
        study.enqueue_trial(_params_of(subnet, space, w_bits, a_bits))
    points: list[FrontPoint] = []
    bar = tqdm(total=trials, desc="NSGA-II", leave=False)

    def objective(trial: optuna.Trial) -> list[float]:
        subnet = _suggest(trial, space, w_bits, a_bits)
        costs = coster(subnet)
        violation = [costs[k] / bounds[k] - 1.0 for k in keys]
        trial.set_user_attr("constraints", violation)
        if native:
            for key, value in zip(keys, violation):
                trial.set_constraint(key, value)
        feasible = all(v <= 1e-9 for v in violation)
        acc = evaluate(subnet) if feasible else 0.0
        points.append(FrontPoint(subnet, acc, costs, feasible))
        bar.update(1)
        return [acc, *(costs[o] for o in objectives)]

    study.optimize(objective, n_trials=trials)
    bar.close()
    return points
