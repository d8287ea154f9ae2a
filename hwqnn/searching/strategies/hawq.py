"""A Hessian-aware baseline in the style of HAWQ-V3 (Yao et al., ICML 2021): no search, one integer program.

Each slot's sensitivity is the Hessian trace of the float model's loss w.r.t. the tensor it quantizes
(the layer's weight, or its input activation), by Hutchinson's estimator on a calibration batch
(:mod:`hwqnn.searching.hessian`). An option's cost is HAWQ-V3's second-order loss increase
``Tr(H) / n * ||Q(x) - x||^2`` (``n`` elements). The same MILP as the search's finalize picks one option
per slot under the same budgets and cost model, and the runner fine-tunes the result like any policy.
Like HAWQ-V3 it quantizes with one scheme, ``config.uniform_scheme`` (``uniform`` by default), wherever
a slot offers it; the ``search`` method learns the schemes as well.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ...policy import Policy
from ..finalize import capture_slot_inputs, option_costs, options_by, relative_error, solve_or_raise, to_policy
from ..hessian import slot_hessian_traces
from .base import Strategy, register_strategy

log = logging.getLogger(__name__)

#: Rademacher samples per trace (HAWQ-V3 runs its estimator until the trace changes by < 1e-3). The traces
#: of a network's slots span orders of magnitude; 16 samples rank them reliably.
HUTCHINSON_SAMPLES = 16
#: Training images the traces are taken on: one batch, as HAWQ-V3 does. Every slot costs 16 Hessian-vector
#: products on it: for ResNet-20 (40 slots) on 64 CIFAR images about 80 s on one CPU thread, two float epochs
#: of the 10k subset.
HESSIAN_IMAGES = 64


@register_strategy
class HawqStrategy(Strategy):
    """Hessian-trace-weighted quantization perturbation, minimised by the MILP under the budgets."""

    name = "hawq"

    def finalize(self, run) -> Policy:
        count = min(len(run.train_data), HESSIAN_IMAGES)
        pairs = [run.train_data[i] for i in range(count)]
        images = torch.stack([p[0] for p in pairs]).to(run.device)
        labels = torch.as_tensor([int(p[1]) for p in pairs], device=run.device)
        traces = slot_hessian_traces(run.qmodel, images, labels, HUTCHINSON_SAMPLES, seed=run.config.seed)
        captured = capture_slot_inputs(run.qmodel, images)

        def perturbation(slot, options) -> list[float]:
            x = captured.get(id(slot))
            if x is None:
                return [0.0] * len(options)
            # Tr(H)/n * ||Q(x) - x||^2 = Tr(H) * relative MSE * mean(x^2); a trace can come out negative
            # (the loss is not convex everywhere), and then counts as 0
            scale = max(traces.get(id(slot), 0.0), 0.0) * (float((x.double() ** 2).mean()) or 1.0)
            return [scale * relative_error(slot, o.scheme, o.bits, x) for o in options]

        space, problem = run.space, run.problem
        layers = options_by(space, perturbation, schemes=[run.config.uniform_scheme])
        # Objective units: the loss. Scaled so the MILP's tolerances see numbers near 1.
        scale = max(max(float(np.max(lo.weight_objective, initial=0)), float(np.max(lo.act_objective, initial=0)))
                    for lo in layers) or 1.0
        for lo in layers:
            lo.weight_objective, lo.act_objective = lo.weight_objective / scale, lo.act_objective / scale
        tables = option_costs(space.cost_model, space.ops, layers)
        choice, totals = solve_or_raise(layers, tables, problem.bounds, problem.target, "integer",
                                        reference=problem.reference)
        policy = to_policy(layers, choice)
        policy.meta.update({"milp_totals": totals, "hessian_traces": {
            f"{op.layer_name}.{role}": traces.get(id(slot), 0.0)
            for op in space.ops for role, slot in (("weight", op.weight_slot), ("activation", op.act_slot))}})
        log.info("hawq: Hessian traces of %d slots, MILP objective scale %.3g", len(traces), scale)
        return policy
