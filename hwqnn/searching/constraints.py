"""Budgets as constraints: an augmented Lagrangian with multipliers updated by dual ascent.

For each budget ``cost <= B`` we use the normalised constraint ``g = cost / B - 1 <= 0`` so that units
do not matter, and the penalty ``(max(0, lam + rho g)^2 - lam^2) / (2 rho)``; after each step
``lam <- max(0, lam + rho g)``. The multipliers grow while a budget is violated and decay once it holds,
so the relaxed solution settles near the budget whatever its scale: no hand-tuned weights.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


class AugmentedLagrangian:
    def __init__(self, bounds: Mapping[str, float], rho: float = 1.0, dual_lr: float | None = None):
        self.bounds = dict(bounds)
        self.rho = rho
        self.dual_lr = rho if dual_lr is None else dual_lr
        self.multipliers = {k: 0.0 for k in self.bounds}

    def violations(self, costs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {k: costs[k] / b - 1.0 for k, b in self.bounds.items()}

    def penalty(self, costs: Mapping[str, Tensor]) -> Tensor:
        total = torch.zeros((), dtype=torch.float64)
        for key, g in self.violations(costs).items():
            lam = self.multipliers[key]
            total = total + (torch.clamp(lam + self.rho * g, min=0.0) ** 2 - lam**2) / (2 * self.rho)
        return total

    @torch.no_grad()
    def dual_step(self, costs: Mapping[str, Tensor]) -> None:
        for key, g in self.violations(costs).items():
            self.multipliers[key] = max(0.0, self.multipliers[key] + self.dual_lr * float(g))

    def state_dict(self) -> dict:
        return {"multipliers": dict(self.multipliers), "rho": self.rho, "dual_lr": self.dual_lr}

    def load_state_dict(self, state: Mapping) -> None:
        self.multipliers = {k: float(v) for k, v in state["multipliers"].items()}
        self.rho = float(state["rho"])
        self.dual_lr = float(state["dual_lr"])
