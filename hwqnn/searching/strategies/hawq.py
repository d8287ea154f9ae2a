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

from ...policy import Policy
from ..finalize import normalise_objectives, option_costs, options_by, solve_or_raise, to_policy
from ..hessian import second_order_perturbation
from .base import Strategy, register_strategy

log = logging.getLogger(__name__)


@register_strategy
class HawqStrategy(Strategy):
    """Hessian-trace-weighted quantization perturbation, minimised by the MILP under the budgets."""

    name = "hawq"

    def finalize(self, run) -> Policy:
        return hawq_policy(run, *second_order_perturbation(run))


def hawq_policy(run, perturbation, traces) -> Policy:
    """The MILP's policy for ``perturbation`` (see :func:`~hwqnn.searching.hessian.second_order_perturbation`)."""
    space, problem = run.space, run.problem
    layers = options_by(space, perturbation, schemes=[run.config.uniform_scheme])
    scale = normalise_objectives(layers)  # objective units: the loss, scaled so the MILP sees numbers near 1
    tables = option_costs(space.cost_model, space.ops, layers)
    choice, totals = solve_or_raise(layers, tables, problem.bounds, problem.target, "integer",
                                    reference=problem.reference)
    policy = to_policy(layers, choice)
    policy.meta.update({"milp_totals": totals, "hessian_traces": {
        f"{op.layer_name}.{role}": traces.get(id(slot), 0.0)
        for op in space.ops for role, slot in (("weight", op.weight_slot), ("activation", op.act_slot))}})
    log.info("hawq: Hessian traces of %d slots, MILP objective scale %.3g", len(traces), scale)
    return policy
