"""The problem a search solves, resolved once at the edge and passed down as one typed object.

A user gives a target (a profile name, a YAML path, or an already loaded ``HardwareProfile``) and budgets
(strings such as ``latency=0.6x`` or ``Budget`` values). They are resolved here, once per run: the
profile is loaded, the cost model built on the converted model's workload, the w8a8 reference costed and
every budget turned into an absolute bound. Strategies, finalize and sweeps read this object; nothing
below it re-parses a target or a budget string; a sweep passes the loaded profile and typed budgets.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cost_models
from cost_models import COST_KEYS, CostMetric, CostModel, HardwareProfile

from ..policy import Policy
from .budgets import Budget, default_budgets, parse_budgets, resolve_budgets


def resolve_target(target: str | os.PathLike | HardwareProfile) -> HardwareProfile:
    """A loaded profile as it is; a name or a path loaded (once: call this at the edge only)."""
    if isinstance(target, HardwareProfile):
        return target
    return cost_models.load_profile(target)


def target_spec(profile: HardwareProfile) -> str:
    """How to name ``profile`` in a config so that a resumed run loads the same file: a shipped profile
    by its name, any other by its absolute path."""
    import hardware_profiles

    shipped = Path(hardware_profiles.__file__).resolve().parent
    path = Path(profile.file).resolve()
    return profile.name if path.parent == shipped else str(path)


def exact_budget_spec(budget: Budget) -> str:
    """A budget as text that parses back to exactly the same bound (SI units, shortest round-trip float)."""
    unit = "x" if budget.relative else CostMetric.from_budget_name(budget.metric).unit
    return f"{budget.metric}={budget.value!r}{unit}"


def cost_report(cost_model: CostModel, policy: Policy | str, layer_names: Iterable[str]):
    """The cost report (totals and per-layer frame) of ``policy`` for the cost model's workload."""
    names = list(layer_names)
    types = {layer.name: layer.op_type for layer in cost_model.workload.layers}
    return cost_model.evaluate(cost_models.resolve_precisions(policy, names, cost_model.profile,
                                                              [types.get(n) for n in names]))


def costs_of(cost_model: CostModel, policy: Policy | str, layer_names: Iterable[str]) -> dict[str, float]:
    """The hard (reported) costs of ``policy`` for the cost model's workload."""
    return totals_of(cost_report(cost_model, policy, layer_names))


def totals_of(report) -> dict[str, float]:
    """A cost report's totals, keyed by cost key."""
    return {key: float(getattr(report, key)) for key in COST_KEYS}


@dataclass(frozen=True)
class Problem:
    """Workload + device + budgets: what every search strategy optimises, and how it is priced."""

    profile: HardwareProfile
    cost_model: CostModel
    budgets: tuple[Budget, ...]
    #: Costs of uniform w8a8 on the same device: what relative budgets are multiples of.
    reference: Mapping[str, float]
    #: Absolute bound per budgeted cost key, in SI units.
    bounds: Mapping[str, float]

    @classmethod
    def build(cls, workload, target: str | os.PathLike | HardwareProfile,
              budgets: Iterable[str | Budget] | None = None, *, batch_size: int = 1) -> Problem:
        """Resolve ``target`` and ``budgets`` for ``workload`` (``None`` budgets: the target's defaults)."""
        profile = resolve_target(target)
        cost_model = CostModel(workload, profile, batch_size=batch_size)
        reference = costs_of(cost_model, "w8a8", workload.names)
        parsed = tuple(parse_budgets(budgets if budgets is not None else default_budgets(profile)))
        bounds = resolve_budgets(parsed, lambda: reference)
        return cls(profile, cost_model, parsed, MappingProxyType(reference), MappingProxyType(bounds))

    # --- reading it ---------------------------------------------------------------------------
    @property
    def target(self) -> str:
        return self.profile.name

    @property
    def workload(self):
        return self.cost_model.workload

    @property
    def layer_names(self) -> list[str]:
        return list(self.workload.names)

    def costs_of(self, policy: Policy | str) -> dict[str, float]:
        return costs_of(self.cost_model, policy, self.layer_names)

    def report_of(self, policy: Policy | str):
        return cost_report(self.cost_model, policy, self.layer_names)

    def within_budget(self, costs: Mapping[str, float]) -> dict[str, bool]:
        return {key: costs[key] <= bound * (1 + 1e-9) for key, bound in self.bounds.items()}

    def check_feasible(self, space) -> None:
        """Fail before any training if no integer policy over every scheme and bit meets the budgets."""
        from .finalize import build_options, option_costs, solve_or_raise

        layers = build_options(space, {}, sensitivity_weight=0.0, prior_weight=0.0, bits_weight=0.0)
        tables = option_costs(self.cost_model, space.ops, layers)
        solve_or_raise(layers, tables, self.bounds, self.target, "quantized", time_limit=30.0,
                       reference=self.reference)


__all__ = ["Problem", "resolve_target", "target_spec", "exact_budget_spec", "costs_of", "cost_report", "totals_of", "COST_KEYS"]
