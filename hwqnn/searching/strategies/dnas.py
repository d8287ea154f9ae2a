"""AutoQNN's search: QSS scheme logits + QPL learned bits under an augmented Lagrangian, then the exact MILP.

Each search epoch trains the weights, the scheme logits and the continuous bitwidths jointly on
``cross_entropy + penalty(expected costs)`` (with ``bilevel``, DNAS-style instead: the logits and bits
on a held-out ``ARCH_SPLIT`` of the training data, the weights on the rest, alternating); the multipliers take a dual step after every batch so the
relaxed solution is pulled to the budgets whatever their units. ``finalize`` picks every slot's scheme
and integer bits by one MILP under the problem's bounds (see ``finalize.py``), then checks that it kept
what the search learned: the MILP's policy and the search's argmax network (argmax scheme at the rounded
bits, budgets aside) are both scored on the validation split before any fine-tuning. If the MILP's is
worse by more than ``FINALIZE_TOLERANCE`` points, the MILP is solved again with the search's scheme and
bits preferences weighted up ``REWEIGHT`` times; if that is still too far below, the last fallback is the
argmax network itself rounded onto the budget (``nearest_to_argmax``: the argmax schemes at the bits
nearest the learned ones that the budgets allow), and that network again with the budget it leaves unused
spent on the most sensitive slots (``spend_slack``). The best-scoring candidate is kept. The check is
recorded in the policy's meta and in ``metrics.json`` (``finalize_check``).
"""

from __future__ import annotations

import logging

import torch
from tqdm.auto import tqdm

from cost_models import COST_KEYS

from ... import distributed
from ...policy import Policy
from ..constraints import AugmentedLagrangian
from ..curvature import CurvaturePenalty
from ..finalize import capture_slot_inputs, finalize_policy, nearest_to_argmax, relative_error, spend_slack
from ..hessian import second_order_perturbation
from ..train import alternating_epoch
from .base import Strategy, register_strategy

log = logging.getLogger(__name__)

#: Share of the training data the architecture parameters step on with ``bilevel`` (the weights get the rest).
ARCH_SPLIT = 0.2
#: Accuracy points the MILP's policy may lose against the search's argmax network before finalize
#: re-solves with the search's preferences weighted up.
FINALIZE_TOLERANCE = 1.0
REWEIGHT = 10.0


@register_strategy
class DnasStrategy(Strategy):
    """QSS + QPL with device cost penalties, finalized by a MILP over (scheme, bits) of every slot."""

    name = "search"
    searches = True

    def __init__(self, problem, config) -> None:
        super().__init__(problem, config)
        self.lagrangian = AugmentedLagrangian(problem.bounds, rho=config.rho, dual_lr=config.dual_lr,
                                              fill=config.budget_fill)
        self.curvature: CurvaturePenalty | None = None

    def state_dict(self) -> dict:
        state = {"lagrangian": self.lagrangian.state_dict()}
        if self.curvature is not None:
            state["curvature"] = self.curvature.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if "lagrangian" in state:
            self.lagrangian.load_state_dict(state["lagrangian"])
        if "curvature" in state:
            self.curvature = CurvaturePenalty.from_state(state["curvature"])

    def search(self, run) -> None:
        cfg, space = run.config, run.space
        lagrangian = self.lagrangian
        run.qmodel.set_search()
        w_opt, w_sched = run.make_weight_optimizer(space.weight_parameters(), cfg.lr, cfg.search_epochs)
        a_opt = torch.optim.Adam(space.logit_parameters(), lr=cfg.lr_logits)
        b_opt = torch.optim.Adam(space.bit_parameters(), lr=cfg.lr_bits)
        optimizers = [w_opt, a_opt, b_opt]
        fresh = run.epoch == 0 and not run.optimizer_state  # a resumed search has its bits and tables in the checkpoint
        if (fresh and cfg.warm_start_bits == "hawq") or (cfg.curvature_weight and self.curvature is None):
            perturbation = second_order_perturbation(run)  # one set of Hessian traces serves both
            if fresh and cfg.warm_start_bits == "hawq":
                warm_start_from_hawq(run, perturbation)
            if cfg.curvature_weight and self.curvature is None:
                self.curvature = CurvaturePenalty.measure(space, perturbation[0], cfg.curvature_weight)
        run.restore(optimizers, [w_sched])
        run.checkpoint(optimizers, [w_sched])
        last_costs: dict = {}
        hook = run.step_hook("search")

        def penalty():
            costs = space.expected_costs()
            last_costs.update(costs)
            if self.curvature is None:
                return lagrangian.penalty(costs)
            return lagrangian.penalty(costs) + self.curvature(space)

        def after_step():
            lagrangian.dual_step(last_costs)
            if hook is not None:
                hook()

        model = run.training_model()  # a DDP replica under torchrun: the logits and bits get averaged gradients
        splits = split_for_bilevel(run.train_data, cfg.seed) if cfg.bilevel else None
        bar = tqdm(total=cfg.search_epochs, initial=run.epoch, desc="search", unit="epoch", disable=not run.dist.is_main)
        while run.epoch < cfg.search_epochs:
            temperature = space.set_progress(run.epoch / max(cfg.search_epochs - 1, 1))
            desc = f"search {run.epoch + 1}/{cfg.search_epochs}"
            if splits is None:
                stats = run.train_epoch(model, "search", optimizers, extra_loss=penalty, after_step=after_step,
                                        desc=desc)
            else:
                loaders = [run.train_loader("search", data, stream) for stream, data in enumerate(splits)]
                stats = alternating_epoch(model, *loaders, [w_opt], [a_opt, b_opt], run.device, extra_loss=penalty,
                                          after_arch_step=after_step, desc=desc,
                                          loss_scales=tuple(distributed.loss_scale_of(lo) for lo in loaders))
            w_sched.step()
            stats.update({f"val_{k}": v for k, v in run.evaluate().items()})
            with torch.no_grad():
                costs = space.expected_costs()
            w_bits, a_bits = space.mean_bits()
            stats.update({k: float(costs[k]) for k in COST_KEYS})
            if self.curvature is not None:
                with torch.no_grad():
                    stats["curvature_loss"] = float(self.curvature(space))
            stats.update({"mean_w_bits": w_bits, "mean_a_bits": a_bits, "temperature": temperature,
                          "scheme_entropy": space.scheme_entropy(),
                          **{f"lambda_{k}": v for k, v in lagrangian.multipliers.items()},
                          **({"lambda_fill": lagrangian.fill_multiplier} if lagrangian.fill is not None else {})})
            run.end_epoch("search", stats, optimizers, [w_sched])
            bar.update(1)
            bar.set_postfix(acc=f"{stats['val_accuracy']:.1f}%", wbits=f"{w_bits:.2f}", abits=f"{a_bits:.2f}")
        bar.close()

    def finalize(self, run) -> Policy:
        cfg, problem = run.config, run.problem
        # the Hessian sensitivity takes its own slot inputs; the relative MSE needs a calibration batch's
        sensitivity = second_order_perturbation(run)[0] if cfg.finalize_sensitivity == "hessian" else None
        captured = {} if sensitivity else capture_slot_inputs(run.qmodel, run.calibration_batch())

        def solve(scale: float):
            return finalize_policy(run.space, problem.bounds, problem.target, captured, cfg.sensitivity_weight,
                                   cfg.prior_weight * scale, cfg.bits_weight * scale, cfg.device_cost_weight,
                                   problem.reference, sensitivity)

        def rounded_argmax():
            policy, totals = nearest_to_argmax(run.space, problem.bounds, problem.target, problem.reference)
            return policy, totals, {"schemes_changed": []}

        def spend(rounded):
            objective = sensitivity or (lambda slot, options: [relative_error(slot, o.scheme, o.bits, captured.get(id(slot)))
                                                              for o in options])
            filled = spend_slack(run.space, rounded[0], problem.bounds, problem.target, objective, problem.reference)
            return None if filled is None else (*filled, {"schemes_changed": []})

        policy, totals, info = solve(1.0)
        policy, totals, info, check = keep_what_was_learned(run, (policy, totals, info), lambda: solve(REWEIGHT),
                                                            rounded_argmax, spend)
        policy.meta.update({"milp_totals": totals, **info, "finalize_check": check})
        return policy


def warm_start_from_hawq(run, perturbation=None) -> None:
    """Start every slot's learned bits at the Hessian-aware baseline's policy (a point within the budgets),
    so the relaxed solution begins feasible instead of at the top of the range; the scheme logits stay.
    ``perturbation``: the output of ``second_order_perturbation(run)`` when already taken."""
    from .hawq import hawq_policy

    policy = hawq_policy(run, *(perturbation or second_order_perturbation(run)))
    # every rank computed the same traces; rank 0's policy is the one all ranks start from, bit for bit
    policy = Policy.from_dict(distributed.broadcast_from_main(run.dist, policy.to_dict()))
    with torch.no_grad():
        for op in run.space.ops:
            chosen = policy.resolve(op.layer_name)
            op.weight_slot.bits.fill_(float(chosen.w_bits))
            op.act_slot.bits.fill_(float(chosen.a_bits))
    run.qmodel.set_search()
    log.info("search: bits warm-started from the hawq policy")


def split_for_bilevel(data, seed: int):
    """(weights' part, architecture's part) of a TensorDataset: a fixed random ``ARCH_SPLIT`` held out."""
    from torch.utils.data import TensorDataset

    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    held = max(1, int(round(ARCH_SPLIT * len(data))))
    return tuple(TensorDataset(*(t[index] for t in data.tensors)) for index in (order[held:], order[:held]))


def keep_what_was_learned(run, solved, resolve, rounded_argmax=None, spend=None):
    """Score the MILP's policy against the search's argmax network before fine-tuning (see the module doc);
    ``resolve()`` and ``rounded_argmax()`` give the two fallbacks, tried in that order while the best so far
    is more than the tolerance below the argmax network; ``spend(rounded)`` (or None) gives the rounded
    network with the budget it left unused spent, scored and kept where it does better. Returns the policy kept, its totals and info, and
    what the check found. The model's state and its slots' search mode are restored afterwards."""
    model = run.qmodel
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    argmax = model.current_policy()

    def accuracy(policy: Policy) -> float:
        model.set_policy(policy)
        return float(run.evaluate()["accuracy"])

    try:
        check = {"argmax_accuracy": accuracy(argmax), "milp_accuracy": accuracy(solved[0]),
                 "tolerance": FINALIZE_TOLERANCE, "fallback": False, "kept": "milp"}
        best = check["milp_accuracy"]
        if best < check["argmax_accuracy"] - FINALIZE_TOLERANCE:
            again = resolve()
            check.update(fallback=True, reweighted_accuracy=accuracy(again[0]))
            if check["reweighted_accuracy"] > best:
                solved, best = again, check["reweighted_accuracy"]
                check["kept"] = f"milp with the search's preferences weighted {REWEIGHT:g}x"
        if best < check["argmax_accuracy"] - FINALIZE_TOLERANCE and rounded_argmax is not None:
            nearest = rounded_argmax()
            check["rounded_argmax_accuracy"] = accuracy(nearest[0])
            if check["rounded_argmax_accuracy"] > best:
                solved, best = nearest, check["rounded_argmax_accuracy"]
                check["kept"] = "the argmax network rounded onto the budget"
            filled = spend(nearest) if spend is not None else None
            if filled is not None:
                check["slack_spent_accuracy"] = accuracy(filled[0])
                if check["slack_spent_accuracy"] > best:
                    solved, check["kept"] = filled, "the argmax network rounded onto the budget, its slack spent"
    finally:
        model.load_state_dict(saved)
        model.set_search()
    return (*solved, check)
