"""Budgets as constraints: an augmented Lagrangian with multipliers updated by dual ascent.

For each budget ``cost <= B`` we use the normalised constraint ``g = cost / B - 1 <= 0`` so that units
do not matter, and the penalty ``(max(0, lam + rho g)^2 - lam^2) / (2 rho)``; after each step
``lam <- max(0, lam + rho g)``. The multipliers grow while a budget is violated and decay once it holds,
so the relaxed solution settles near the budget whatever its scale: no hand-tuned weights.

Upper bounds alone let a search end far *under* its budget: as the scheme distributions sharpen, the
expected cost falls (the probability left on dear schemes goes), and nothing pulls it back up once every
multiplier is 0 (ResNet-20 on bitfusion at 0.5x w8a8 latency ended at 0.372x and lost 0.9 points to the
Hessian-aware baseline, which spent all of it). With ``fill``, one more constraint of the same form keeps
the most-used budget at least ``fill`` full: ``h = fill - max_k cost_k / B_k <= 0``, with its own
multiplier. Only the tightest budget is held full, so it never fights another budget's upper bound.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


class AugmentedLagrangian:
    def __init__(self, bounds: Mapping[str, float], rho: float = 1.0, dual_lr: float | None = None,
                 fill: float | None = None):
        self.bounds = dict(bounds)
        self.rho = rho
        self.dual_lr = rho if dual_lr is None else dual_lr
        self.fill = fill if self.bounds else None
        self.multipliers = {k: 0.0 for k in self.bounds}
        self.fill_multiplier = 0.0

    def violations(self, costs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {k: costs[k] / b - 1.0 for k, b in self.bounds.items()}

    def shortfall(self, costs: Mapping[str, Tensor]) -> Tensor | None:
        """``fill`` minus the largest share of its budget any cost uses (> 0: every budget under-spent);
        None without ``fill``."""
        if self.fill is None:
            return None
        used = torch.stack([torch.as_tensor(costs[k] / b, dtype=torch.float64) for k, b in self.bounds.items()])
        return self.fill - used.max()

    @staticmethod
    def _term(multiplier: float, g: Tensor, rho: float) -> Tensor:
        return (torch.clamp(multiplier + rho * g, min=0.0) ** 2 - multiplier**2) / (2 * rho)

    def penalty(self, costs: Mapping[str, Tensor]) -> Tensor:
        total = torch.zeros((), dtype=torch.float64)
        for key, g in self.violations(costs).items():
            total = total + self._term(self.multipliers[key], g, self.rho)
        short = self.shortfall(costs)
        if short is not None:
            total = total + self._term(self.fill_multiplier, short, self.rho)
        return total

    @torch.no_grad()
    def dual_step(self, costs: Mapping[str, Tensor]) -> None:
        for key, g in self.violations(costs).items():
            self.multipliers[key] = max(0.0, self.multipliers[key] + self.dual_lr * float(g))
        short = self.shortfall(costs)
        if short is not None:
            self.fill_multiplier = max(0.0, self.fill_multiplier + self.dual_lr * float(short))

    def state_dict(self) -> dict:
        return {"multipliers": dict(self.multipliers), "rho": self.rho, "dual_lr": self.dual_lr,
                "fill": self.fill, "fill_multiplier": self.fill_multiplier}

    def load_state_dict(self, state: Mapping) -> None:
        self.multipliers = {k: float(v) for k, v in state["multipliers"].items()}
        self.rho = float(state["rho"])
        self.dual_lr = float(state["dual_lr"])
        self.fill_multiplier = float(state.get("fill_multiplier", 0.0))  # checkpoints from before ``fill``
