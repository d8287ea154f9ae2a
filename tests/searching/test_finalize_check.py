"""Finalize keeps what the search learned: the MILP's policy is scored against the search's argmax network
before fine-tuning, and a much worse one is re-solved with the search's preferences weighted up."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import cost_models
import hwqnn
from hwqnn.data import make_loader
from hwqnn.policy import Policy
from hwqnn.qag import convert
from hwqnn.searching.strategies.dnas import FINALIZE_TOLERANCE, keep_what_was_learned
from hwqnn.searching.train import evaluate


class _Run:
    """What the check needs of a run: the model and a real evaluation on the held-out split."""

    def __init__(self, qmodel, data):
        self.qmodel, self.data = qmodel, data

    def evaluate(self):
        return evaluate(self.qmodel, make_loader(self.data, 256, train=False), torch.device("cpu"))


def _searching_model(model, digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = convert(model, digits.train[0][0][None].repeat(2, 1, 1, 1))
    qmodel.calibrate([digits.train.tensors[0][:256]])
    return qmodel.set_search()


def _uniform_space(tiny_cnn, digits, bits: float):
    """A search space on Bit Fusion whose every slot learned ``bits`` and prefers the uniform scheme, and
    the w8a8 reference latency."""
    from hwqnn.searching.space import SearchSpace

    qmodel = _searching_model(tiny_cnn, digits)
    cost_model = cost_models.CostModel(qmodel.workload, cost_models.load_profile("bitfusion"))
    space = SearchSpace(qmodel, cost_model)
    with torch.no_grad():
        for slot in space.slots():
            slot.bits.fill_(bits)
            slot.logits.alpha.zero_()
            slot.logits.alpha[slot.scheme_names.index("uniform")] = 1.0
    reference = cost_model.evaluate(cost_models.resolve_precisions("w8a8", qmodel.workload.names))
    return space, reference.latency_s


def test_a_much_worse_milp_policy_is_resolved_and_the_better_one_kept(tiny_cnn, digits):
    qmodel = _searching_model(tiny_cnn, digits)
    before = {k: v.clone() for k, v in qmodel.state_dict().items()}
    binary = (Policy.uniform("w1a1"), {"latency_s": 0.0}, {"which": "first"})   # a policy that wrecks the net
    w8a8 = (Policy.uniform("w8a8"), {"latency_s": 1.0}, {"which": "reweighted"})
    policy, totals, info, check = keep_what_was_learned(_Run(qmodel, digits.test), binary, lambda: w8a8)
    assert check["fallback"] and check["milp_accuracy"] < check["argmax_accuracy"] - FINALIZE_TOLERANCE
    assert check["reweighted_accuracy"] > check["milp_accuracy"] and info["which"] == "reweighted"
    assert policy is w8a8[0] and check["kept"].startswith("milp with the search's preferences")
    # The model is back in search mode with its state untouched.
    assert all(slot.mode == "search" for _, _, slot in qmodel.slots())
    changed = [k for k, v in qmodel.state_dict().items()  # running statistics never observed are NaN
               if not (torch.equal(before[k], v) or torch.equal(before[k].isnan(), v.isnan())
                       and torch.equal(before[k].nan_to_num(), v.nan_to_num()))]
    assert not changed, changed


def test_a_close_milp_policy_is_kept_without_resolving(tiny_cnn, digits):
    qmodel = _searching_model(tiny_cnn, digits)
    argmax = qmodel.current_policy()

    def resolve():
        raise AssertionError("no re-solve when the MILP's policy is within the tolerance")

    policy, _, _, check = keep_what_was_learned(_Run(qmodel, digits.test), (argmax, {}, {}), resolve)
    assert not check["fallback"] and check["kept"] == "milp" and policy is argmax
    assert check["milp_accuracy"] == check["argmax_accuracy"]


def test_a_search_records_the_check_in_its_metrics(tiny_cnn, digits):
    result = hwqnn.search(tiny_cnn, digits.train, digits.test, target="bitfusion", budgets=["latency=0.9x"],
                          pretrain_epochs=0, search_epochs=1, finetune_epochs=1, batch_size=128, seed=0)
    check = result.metrics["finalize_check"]
    assert set(check) >= {"argmax_accuracy", "milp_accuracy", "tolerance", "fallback", "kept"}
    assert check["fallback"] == (check["milp_accuracy"] < check["argmax_accuracy"] - check["tolerance"])
    meta = result.policy.meta["finalize_check"]  # metrics.json keeps 7 significant digits
    assert {k: pytest.approx(v, rel=1e-6) if isinstance(v, float) else v for k, v in meta.items()} == check


def test_bits_range_bounds_effective_bits_binary_included(tiny_cnn, digits):
    fast = dict(pretrain_epochs=0, search_epochs=1, finetune_epochs=0, batch_size=128, seed=0)
    result = hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, target="bitfusion",
                          budgets=["size=0.35x"], **fast)
    chosen = [side for name, lp in result.policy.layers.items() if name != "default"
              for side in ((lp.w_scheme, lp.w_bits), (lp.a_scheme, lp.a_bits))]
    assert all(scheme != "binary" and bits >= 2 for scheme, bits in chosen), chosen
    # 0.3x needs 1-bit weights somewhere: out of reach with the default 2:8, and the error says what to widen.
    with pytest.raises(hwqnn.BudgetInfeasibleError, match="widen --bits-range"):
        hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, target="bitfusion", budgets=["size=0.3x"],
                     **fast)
    with_binary = hwqnn.search(tiny_cnn, digits.train, digits.test, target="bitfusion", budgets=["size=0.3x"],
                               bits_range=(1, 8), **fast)
    assert with_binary.metrics["within_budget"]["size_bytes"]


def test_when_re_solving_is_not_enough_the_argmax_network_rounded_onto_the_budget_is_kept(tiny_cnn, digits):
    qmodel = _searching_model(tiny_cnn, digits)
    binary = (Policy.uniform("w1a1"), {}, {"which": "first"})
    also_binary = (Policy.uniform("w1a1"), {}, {"which": "reweighted"})
    nearest = (qmodel.current_policy(), {}, {"which": "rounded argmax"})
    policy, _, info, check = keep_what_was_learned(_Run(qmodel, digits.test), binary, lambda: also_binary,
                                                   lambda: nearest)
    assert check["fallback"] and info["which"] == "rounded argmax" and policy is nearest[0]
    assert check["kept"] == "the argmax network rounded onto the budget"
    assert check["rounded_argmax_accuracy"] == check["argmax_accuracy"] > check["reweighted_accuracy"]


def test_the_argmax_network_rounded_onto_a_budget_keeps_its_schemes_where_it_can(tiny_cnn, digits):
    from hwqnn.searching.finalize import nearest_to_argmax

    space, w8a8 = _uniform_space(tiny_cnn, digits, 7.0)
    bound = 0.95 * w8a8  # tiny_cnn at batch 1 on Bit Fusion cannot go below 0.89x
    policy, totals = nearest_to_argmax(space, {"latency_s": bound}, "bitfusion",
                                       {"latency_s": w8a8})
    assert totals["latency_s"] <= bound
    chosen = {op.layer_name: policy.resolve(op.layer_name) for op in space.ops}
    for op in space.ops:
        assert chosen[op.layer_name].w_scheme == op.weight_slot.argmax_scheme()
        assert chosen[op.layer_name].a_scheme == op.act_slot.argmax_scheme()
    # under the budget some bits come down from the learned 7, none goes up
    bits = [b for lp in chosen.values() for b in (lp.w_bits, lp.a_bits)]
    assert max(bits) <= 7 and min(bits) < 7


def test_the_slack_a_rounded_network_leaves_is_spent_where_the_sensitivity_says(tiny_cnn, digits):
    from hwqnn.searching.finalize import nearest_to_argmax, spend_slack

    space, w8a8 = _uniform_space(tiny_cnn, digits, 3.0)  # learned low: rounding stays at 3 bits, under the budget
    bound = {"latency_s": 0.97 * w8a8}
    rounded, before = nearest_to_argmax(space, bound, "bitfusion", {"latency_s": w8a8})
    # one layer's weight is the only thing that matters: the slack goes there first
    sensitive = space.ops[1].weight_slot

    def sensitivity(slot, options):
        return [(10.0 if slot is sensitive else 1.0) * 2.0 ** -slot.candidates[o.scheme].effective_bits(o.bits)
                for o in options]

    filled, after = spend_slack(space, rounded, bound, "bitfusion", sensitivity, {"latency_s": w8a8})
    assert before["latency_s"] < after["latency_s"] <= bound["latency_s"]
    for op in space.ops:
        old, new = rounded.resolve(op.layer_name), filled.resolve(op.layer_name)
        assert (new.w_scheme, new.a_scheme) == (old.w_scheme, old.a_scheme)  # schemes are kept
        assert new.w_bits >= old.w_bits and new.a_bits >= old.a_bits  # bits never go down
    assert filled.resolve(space.ops[1].layer_name).w_bits == 8  # the sensitive weight gets the most
    # with no room left, nothing changes
    tight = {"latency_s": before["latency_s"]}
    same, _ = spend_slack(space, rounded, tight, "bitfusion", sensitivity, {"latency_s": w8a8})
    assert same.to_dict() == rounded.to_dict()
