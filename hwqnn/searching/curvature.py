"""The second-order loss of quantization, as a differentiable term of the search's loss.

The search's gradient for the scheme logits and the learned bits sees only the first-order effect of
quantization noise: the sampled mode's ``<dL/dq, q - x>`` (and the mixture's gradient alike) is about zero
on average, because the noise is about uncorrelated with the gradient. The loss increase is second order,
``1/2 E[d^T H d] ~ 1/2 Tr(H) / n * ||Q(x) - x||^2`` (HAWQ-V3's perturbation). Without it the cost penalty
meets little resistance where noise hurts: ResNet-20 on CIFAR-10 at a 0.5x Bit Fusion latency budget went
ternary in its third stage, where the Hessian-aware baseline keeps 4 bits, and lost 0.7 points to it.

:class:`CurvaturePenalty` tabulates that perturbation per slot, scheme and integer bitwidth once (Hessian
traces on a training batch, as the hawq warm start takes them), and adds
``weight * sum_slots sum_k p_k * Omega_k(b~)`` to the search loss, linear in ``b~`` between integers, so the
logits and bits get its gradient. The tables are constants: the weights never see this term.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..errors import SchemeError
from .finalize import Option

#: ``1/2`` of the Taylor expansion: the term is the loss increase itself, in the loss's units.
DEFAULT_WEIGHT = 0.5


def _row(slot, name: str, perturbation: Callable, lo: int, hi: int) -> list[float]:
    """Omega of scheme ``name`` at bits ``lo..hi`` (a fixed-bit scheme: its one value throughout)."""
    module = slot.candidates[name]
    if module.fixed_bits is not None:
        return perturbation(slot, [Option(name, int(module.fixed_bits))]) * (hi - lo + 1)
    values = []
    for bits in range(lo, hi + 1):
        try:
            values.append(perturbation(slot, [Option(name, int(slot.scheme_bits(name, bits)))])[0])
        except SchemeError:  # a bitwidth this scheme does not take: as coarse as its coarsest valid one
            values.append(None)
    valid = [v for v in values if v is not None]
    worst = max(valid) if valid else 0.0
    return [worst if v is None else v for v in values]


class CurvaturePenalty:
    """``weight * sum over slots of E_p[Omega(scheme, b~)]``; see the module doc."""

    def __init__(self, tables: list[Tensor], weight: float = DEFAULT_WEIGHT):
        self.tables = tables
        self.weight = float(weight)

    @classmethod
    def measure(cls, space, perturbation: Callable, weight: float = DEFAULT_WEIGHT) -> CurvaturePenalty:
        """Tables from ``perturbation(slot, options) -> Omega per option`` (e.g.
        :func:`~hwqnn.searching.hessian.second_order_perturbation`), one ``[schemes, bits]`` tensor per slot."""
        tables = []
        for op in space.ops:
            for slot in op.slots:
                lo, hi = slot.bits_range
                rows = [_row(slot, name, perturbation, lo, hi) for name in slot.scheme_names]
                tables.append(torch.tensor(rows, dtype=torch.float64))
        return cls(tables, weight)

    def _slots(self, space):
        slots = [slot for op in space.ops for slot in op.slots]
        if len(slots) != len(self.tables):
            raise SchemeError(f"curvature tables for {len(self.tables)} slots, but the model has {len(slots)}")
        return slots

    def __call__(self, space) -> Tensor:
        """The term, differentiable in every slot's scheme logits and ``b~``."""
        total = torch.zeros((), dtype=torch.float64)
        if not self.weight:
            return total
        for slot, table in zip(self._slots(space), self.tables):
            if slot.pinned_float:
                continue
            probs, bits = slot.scheme_probabilities(), slot.candidate_bits()
            lo, hi = slot.bits_range
            table = table.to(probs.device)
            if hi == lo:
                value = table[:, 0]
            else:
                offset = (bits.double() - lo).clamp(0, hi - lo)
                index = offset.detach().floor().clamp(max=hi - lo - 1).long()
                frac = offset - index
                rows = torch.arange(table.shape[0], device=table.device)
                value = table[rows, index] * (1 - frac) + table[rows, index + 1] * frac
            total = total + (probs.double() * value).sum()
        return self.weight * total

    def state_dict(self) -> dict:
        return {"tables": [t.tolist() for t in self.tables], "weight": self.weight}

    @classmethod
    def from_state(cls, state: dict) -> CurvaturePenalty:
        return cls([torch.tensor(t, dtype=torch.float64) for t in state["tables"]], state["weight"])
