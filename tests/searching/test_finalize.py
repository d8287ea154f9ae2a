"""Finalize: the joint (scheme, bits) MILP spends the budget on low-error options and respects the prior."""

import re
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import cost_models
import hwqnn
from hwqnn.searching.budgets import parse_budget
from hwqnn.searching.finalize import (
    build_options,
    capture_slot_inputs,
    finalize_policy,
    infeasible_message,
    option_costs,
    solve,
    solve_or_raise,
)
from hwqnn.searching.space import SearchSpace


def _space(tiny_cnn, digits, favour: str, target: str = "jetson-orin-nano"):
    example = digits.train[0][0][None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = hwqnn.convert(tiny_cnn, example).set_search()
    cost_model = cost_models.CostModel(qmodel.workload, cost_models.load_profile(target))
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


def _w8a8(cost_model, space) -> dict[str, float]:
    report = cost_model.evaluate(cost_models.resolve_precisions("w8a8", [op.layer_name for op in space.ops]))
    return {k: float(getattr(report, k)) for k in ("latency_s", "energy_j", "size_bytes", "peak_memory_bytes")}


def test_finalize_raises_with_the_reachable_size_relative_to_w8a8(tiny_cnn, digits):
    space, captured, cost_model = _space(tiny_cnn, digits, "uniform")
    reference = _w8a8(cost_model, space)
    with pytest.raises(hwqnn.errors.BudgetInfeasibleError) as info:
        finalize_policy(space, {"size_bytes": 1.0}, "jetson-orin-nano", captured, reference=reference)
    message = str(info.value)
    assert re.search(r"size >= [0-9.]+x w8a8 \([0-9.]+ KiB\) is reachable on this target", message), message
    assert "smallest achievable" in message


def test_the_suggested_budget_is_reachable_and_no_looser_than_needed(tiny_cnn, digits):
    """The flag the message suggests, fed back alone, finds a policy; 1% tighter does not."""
    space, _, cost_model = _space(tiny_cnn, digits, "uniform")
    reference = _w8a8(cost_model, space)
    layers = build_options(space, {}, sensitivity_weight=0.0, prior_weight=0.0, bits_weight=0.0)
    tables = option_costs(cost_model, space.ops, layers)
    with pytest.raises(hwqnn.errors.BudgetInfeasibleError) as info:
        solve_or_raise(layers, tables, {"latency_s": 0.3 * reference["latency_s"]}, "jetson-orin-nano", "quantized",
                       reference=reference)
    flag = re.search(r"--budget (latency=[0-9.]+x)", str(info.value))
    assert flag, str(info.value)
    bound = parse_budget(flag[1]).resolve(reference)
    assert solve(layers, tables, {"latency_s": bound}) is not None
    assert solve(layers, tables, {"latency_s": 0.99 * bound}) is None


W8A8 = {"latency_s": 0.0603e-3, "energy_j": 1e-3, "size_bytes": 40_000.0, "peak_memory_bytes": 60_000.0}


def test_message_states_what_is_reachable_for_each_budgeted_cost():
    minima = {"latency_s": 0.0513e-3, "size_bytes": 5_000.0}
    bounds = {"latency_s": 0.8 * W8A8["latency_s"], "size_bytes": 0.5 * W8A8["size_bytes"]}
    message = infeasible_message("jetson-orin-nano", bounds, minima, "quantized", W8A8)
    assert "latency >= 0.851x w8a8 (0.0513 ms) is reachable on this target" in message
    assert "size >= 0.125x w8a8 (4.883 KiB) is reachable on this target" in message
    assert "--budget latency=0.851x" in message
    assert "size=" not in message.split("Loosen", 1)[1], "only the out-of-reach budget needs loosening"
    assert "1.2x" not in message


def test_message_without_a_reference_gives_absolute_values():
    message = infeasible_message("bitfusion", {"latency_s": 0.04e-3}, {"latency_s": 0.0513e-3}, "integer")
    assert "latency >= 0.0513 ms is reachable on this target" in message
    assert "--budget latency=0.0513ms" in message and "w8a8" not in message


def test_message_when_each_budget_alone_fits_says_so():
    minima = {"latency_s": 0.0513e-3, "size_bytes": 5_000.0}
    bounds = {"latency_s": 0.9 * W8A8["latency_s"], "size_bytes": 0.2 * W8A8["size_bytes"]}
    message = infeasible_message("bitfusion", bounds, minima, "quantized", W8A8)
    assert "not all together" in message and "--budget" not in message


@settings(max_examples=200, deadline=None)
@given(ratio=st.floats(1e-4, 50.0), metric=st.sampled_from(["latency_s", "energy_j", "size_bytes",
                                                            "peak_memory_bytes"]),
       relative=st.booleans())
def test_a_suggested_budget_always_admits_the_reachable_minimum(ratio, metric, relative):
    minimum = ratio * W8A8[metric]
    message = infeasible_message("t", {metric: 0.5 * minimum}, {metric: minimum}, "quantized",
                                 W8A8 if relative else None)
    flag = re.search(r"--budget (\S+?);", message)
    assert flag, message
    bound = parse_budget(flag[1]).resolve(W8A8)
    assert minimum <= bound * (1 + 1e-9)
    assert bound <= minimum * 1.011, "rounded up to 3 significant digits, not loosened further"


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


def test_a_sensitive_layer_gets_the_bits_a_flat_one_gives_up(tiny_cnn, digits):
    """With a sensitivity that knows which layers matter (here: the largest layer's weight error costs 100x
    the others', as a large Hessian trace would make it), the MILP spends the budget on that layer."""
    from hwqnn.searching.finalize import relative_error

    space, captured, cost_model = _space(tiny_cnn, digits, "uniform", "bitfusion")  # sub-byte storage
    sizes = {layer.name: layer.weight_elems for layer in cost_model.workload.layers}
    largest = max(space.ops, key=lambda op: sizes[op.layer_name])  # the one a size budget squeezes first
    first = largest.weight_slot

    def sensitivity(slot, options):
        weight = 100.0 if slot is first else 1.0
        return [weight * relative_error(slot, o.scheme, o.bits, captured.get(id(slot))) for o in options]

    bound = _size_of_w4a4(cost_model, space)
    flat, _, _ = finalize_policy(space, {"size_bytes": bound}, "bitfusion", captured, bits_weight=0.0,
                                 prior_weight=0.0, device_cost_weight=0.0)
    weighted, totals, _ = finalize_policy(space, {"size_bytes": bound}, "bitfusion", captured,
                                          bits_weight=0.0, prior_weight=0.0, device_cost_weight=0.0,
                                          sensitivity=sensitivity)
    name = largest.layer_name
    first_bits = lambda p: p.resolve(name).w_bits  # noqa: E731
    assert totals["size_bytes"] <= bound
    assert first_bits(weighted) > first_bits(flat), (first_bits(flat), first_bits(weighted))
