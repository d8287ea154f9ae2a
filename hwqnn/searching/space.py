"""The search space: a converted model in search mode, its parameter groups, and its expected costs.

Expected costs are exact expectations over each slot's scheme probabilities: for layer l,
``E[cost_l] = sum_ij p_w[i] p_a[j] cost(kind_w[i], bits_w[i], kind_a[j], bits_a[j])``, evaluated by the
cost model on a ``[S_w, S_a, L]`` grid, so they are differentiable in the logits and in ``b~``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import ConfigError, ConversionError
from ..qag import QuantizedModel, QuantSlot


class SearchSpace:
    """QSS + QPL state of a QuantizedModel: slots, parameter groups, temperature, expected costs."""

    def __init__(self, qmodel: QuantizedModel, cost_model, t_start: float = 2.0, t_end: float = 0.2,
                 gumbel: bool = False, single_path: bool = False):
        self.qmodel = qmodel
        self.cost_model = cost_model
        self.t_start, self.t_end = t_start, t_end
        self.gumbel = gumbel
        self.single_path = single_path
        self.ops = qmodel.quant_ops()
        names = [op.layer_name for op in self.ops]
        if names != cost_model.workload.names:
            raise ConversionError("the cost model's workload does not list the model's layers in the same order; "
                                  "build the cost model from this model's workload (QuantizedModel.workload)")
        schemes = {tuple(s.scheme_names) for _, _, s in qmodel.slots()}
        if len(schemes) != 1:
            raise ConfigError("every slot must have the same candidate schemes for the vectorized cost; convert the "
                              "model with one schemes= list for all layers")
        self.scheme_names = list(schemes.pop())

    # --- parameter groups ----------------------------------------------------------------------
    def slots(self) -> list[QuantSlot]:
        return [s for _, _, s in self.qmodel.slots()]

    def logit_parameters(self) -> list[nn.Parameter]:
        seen, out = set(), []
        for slot in self.slots():
            p = slot.logits.alpha
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    def bit_parameters(self) -> list[nn.Parameter]:
        return [slot.bits for slot in self.slots()]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.logit_parameters() + self.bit_parameters()}
        return [p for p in self.qmodel.parameters() if id(p) not in arch]

    # --- schedule ------------------------------------------------------------------------------
    def set_progress(self, fraction: float) -> float:
        """Anneal the softmax temperature geometrically from t_start to t_end; returns it."""
        fraction = min(max(fraction, 0.0), 1.0)
        temperature = self.t_start * (self.t_end / self.t_start) ** fraction
        for slot in self.slots():
            slot.temperature = temperature
            slot.gumbel = self.gumbel
            slot.single_path = self.single_path
        return temperature

    # --- costs ---------------------------------------------------------------------------------
    def _side(self, role_index: int) -> tuple[Tensor, Tensor, Tensor]:
        probs, kinds, bits = [], [], []
        for op in self.ops:
            p, k, b = op.slots[role_index].cost_candidates()
            probs.append(p)
            kinds.append(k)
            bits.append(b)
        return torch.stack(probs, -1), torch.stack(kinds, -1), torch.stack(bits, -1)  # [S, L]

    def expected_layer_costs(self) -> dict[str, Tensor]:
        """Per-layer expected costs ``[L]`` under the current scheme probabilities and bitwidths."""
        pw, kw, bw = self._side(0)
        pa, ka, ba = self._side(1)
        costs = self.cost_model.layer_costs(kw[:, None, :], bw[:, None, :].double(),
                                            ka[None, :, :], ba[None, :, :].double())
        weight = (pw[:, None, :] * pa[None, :, :]).double()  # [Sw, Sa, L]
        return {k: (v * weight).sum(dim=(0, 1)) for k, v in costs.items() if torch.is_tensor(v) and v.is_floating_point()}

    def expected_costs(self) -> dict[str, Tensor]:
        """Totals (latency_s, energy_j, size_bytes, peak_memory_bytes) with a smooth peak, differentiable."""
        return self.cost_model.totals(self.expected_layer_costs(), smooth=True,
                                      fixed_bytes=self.cost_model.workload.float_param_bytes)

    # --- readouts ------------------------------------------------------------------------------
    def mean_bits(self) -> tuple[float, float]:
        w = [op.weight_slot.continuous_bits().item() for op in self.ops]
        a = [op.act_slot.continuous_bits().item() for op in self.ops]
        return sum(w) / len(w), sum(a) / len(a)

    def scheme_entropy(self) -> float:
        """Mean entropy (nats) of the slots' scheme distributions: falls as the search commits."""
        total = 0.0
        slots = self.slots()
        for slot in slots:
            p = torch.softmax(slot.logits.alpha.detach(), 0)
            total += float(-(p * p.clamp_min(1e-12).log()).sum())
        return total / max(len(slots), 1) / math.log(len(self.scheme_names)) if len(self.scheme_names) > 1 else 0.0
