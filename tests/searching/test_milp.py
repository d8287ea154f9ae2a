"""The finalize MILP against brute force on small random instances."""

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwqnn.searching.finalize import LayerOptions, Option, solve, totals_of


def _instance(seed: int, n_layers: int, n_w: int, n_a: int):
    rng = np.random.default_rng(seed)
    layers, tables = [], []
    for l_idx in range(n_layers):
        w = [Option("uniform", b) for b in range(2, 2 + n_w)]
        a = [Option("uniform", b) for b in range(2, 2 + n_a)]
        layers.append(LayerOptions(f"l{l_idx}", w, a, rng.random(n_w), rng.random(n_a)))
        bw = np.arange(2, 2 + n_w)[:, None].astype(float)
        ba = np.arange(2, 2 + n_a)[None, :].astype(float)
        macs, params, acts = rng.uniform(1, 10, 3)
        tables.append({
            "latency_s": macs * bw * ba * rng.uniform(0.5, 1.5) + 0 * bw,
            "energy_j": macs * (bw + ba) + params * bw + 0 * ba,
            "weight_bytes": params * bw + 0 * ba,
            "activation_bytes": acts * ba + 0 * bw,
        })
    return layers, tables


def _brute_force(layers, tables, bounds):
    best, best_cost = None, np.inf
    per_layer = [list(itertools.product(range(len(lo.weight)), range(len(lo.act)))) for lo in layers]
    for choice in itertools.product(*per_layer):
        totals = totals_of(choice, tables)
        if any(totals[k] > v * (1 + 1e-9) for k, v in bounds.items()):
            continue
        cost = sum(lo.weight_objective[i] + lo.act_objective[j] for lo, (i, j) in zip(layers, choice))
        if cost < best_cost:
            best, best_cost = choice, cost
    return best, best_cost


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), frac=st.floats(0.3, 1.0))
def test_milp_matches_brute_force(seed, frac):
    layers, tables = _instance(seed, n_layers=3, n_w=3, n_a=2)
    loosest = totals_of([(len(lo.weight) - 1, len(lo.act) - 1) for lo in layers], tables)
    bounds = {k: frac * v for k, v in loosest.items()}
    expected, expected_cost = _brute_force(layers, tables, bounds)
    solved = solve(layers, tables, bounds)
    if expected is None:
        assert solved is None
        return
    assert solved is not None
    choice, totals = solved
    for key, bound in bounds.items():
        assert totals[key] <= bound * (1 + 1e-6), key
    cost = sum(lo.weight_objective[i] + lo.act_objective[j] for lo, (i, j) in zip(layers, choice))
    assert cost <= expected_cost + 1e-6


def test_smallest_achievable_peak_memory_is_exact():
    layers, tables = _instance(3, n_layers=3, n_w=3, n_a=3)
    solved = solve(layers, tables, {}, objective_only="peak_memory_bytes")
    brute = min(totals_of(c, tables)["peak_memory_bytes"] for c in itertools.product(
        *[list(itertools.product(range(3), range(3)))] * 3))
    assert abs(solved[1]["peak_memory_bytes"] - brute) <= 1e-6 * brute
