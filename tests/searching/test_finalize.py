"""Finalize: the joint (scheme, bits) MILP spends the budget on low-error options and respects the prior."""

import warnings

import pytest
import torch

import cost_models
import hwqnn
from hwqnn.searching.finalize import capture_slot_inputs, finalize_policy
from hwqnn.searching.space import SearchSpace


def _space(tiny_cnn, digits, favour: str):
    example = digits.train[0][0][None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = hwqnn.convert(tiny_cnn, example).set_search()
    cost_model = cost_models.CostModel(qmodel.workload, cost_models.load_profile("jetson-orin-nano"))
    space = SearchSpace(qmodel, cost_model)
    with torch.no_grad():
        for slot in space.slots():
            slot.logits.alpha.zero_()
            slot.logits.alpha[slot.scheme_names.index(favour)] = 2.0  # a clear but not absolute preference
            slot.bits.fill_(4.0)
    batch = torch.stack([digits.train[i][0] for i in range(64)])
    return space, capture_slot_inputs(qmodel, batch), cost_model


def _size_of_w4a4(cost_model, space):
    precisions = cost_models.resolve_precisions("w4a4", [op.layer_name for op in space.ops])
    return cost_model.evaluate(precisions).size_bytes


def test_milp_leaves_a_weak_binary_preference_when_the_budget_allows_more_bits(tiny_cnn, digits):
    space, captured, cost_model = _space(tiny_cnn, digits, "binary")
    bound = _size_of_w4a4(cost_model, space)
    policy, totals, info = finalize_policy(space, {"size_bytes": bound}, "jetson-orin-nano", captured)
    chosen = [policy.resolve(op.layer_name) for op in space.ops]
    assert totals["size_bytes"] <= bound
    # binary weights lose ~36% of the signal energy; 4-bit grids lose ~1%: the data outweighs p = 0.51
    moved = [lp for lp in chosen if lp.w_scheme != "binary"]
    assert len(moved) >= len(chosen) - 1, chosen
    assert info["schemes_changed"]
    assert totals["size_bytes"] > 0.75 * bound  # the budget is spent, not left at a quarter


def test_a_strong_prior_keeps_the_argmax_scheme(tiny_cnn, digits):
    space, captured, cost_model = _space(tiny_cnn, digits, "uniform")
    bound = _size_of_w4a4(cost_model, space)
    policy, totals, info = finalize_policy(space, {"size_bytes": bound}, "jetson-orin-nano", captured,
                                           prior_weight=100.0)
    assert all(policy.resolve(op.layer_name).w_scheme == "uniform" for op in space.ops)
    assert totals["size_bytes"] <= bound
    assert info["schemes_changed"] == [] or all("activation" in c for c in info["schemes_changed"])


def test_finalize_raises_with_the_smallest_achievable_size(tiny_cnn, digits):
    space, captured, _ = _space(tiny_cnn, digits, "uniform")
    with pytest.raises(hwqnn.errors.BudgetInfeasibleError, match="smallest achievable"):
        finalize_policy(space, {"size_bytes": 1.0}, "jetson-orin-nano", captured)


def test_device_cost_term_never_makes_latency_plus_energy_worse(tiny_cnn, digits):
    """With the tie-breaker the MILP's optimum can only be cheaper on the device (an exchange argument)."""
    space, captured, cost_model = _space(tiny_cnn, digits, "pot")  # power-of-two: no native kernel on a GPU
    names = [op.layer_name for op in space.ops]
    reference = cost_model.evaluate(cost_models.resolve_precisions("w8a8", names))
    reference = {"latency_s": reference.latency_s, "energy_j": reference.energy_j}
    bounds = {"size_bytes": _size_of_w4a4(cost_model, space)}
    _, plain, _ = finalize_policy(space, bounds, "jetson-orin-nano", captured, device_cost_weight=0.0)
    _, aware, _ = finalize_policy(space, bounds, "jetson-orin-nano", captured, reference=reference)

    def device(totals):
        return sum(totals[k] / reference[k] for k in reference)

    assert device(aware) <= device(plain) + 1e-9
    assert aware["size_bytes"] <= bounds["size_bytes"]
