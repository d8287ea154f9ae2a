"""A run's summary.png: with the run's metrics it has a title and each cost against w8a8 and its budget."""

import pytest

from hwqnn.policy import Policy
from hwqnn.searching.report import cost_bars, render_summary, summary_title, write_summary_png

POLICY = Policy.from_dict({"layers": {
    "conv1": {"w_scheme": "uniform", "w_bits": 4, "a_scheme": "ul2q", "a_bits": 8},
    "fc": {"w_scheme": "binary", "w_bits": 1, "a_scheme": "uniform", "a_bits": 4}}})
HISTORY = [{"phase": p, "val_accuracy": a, "mean_w_bits": 4.0, "mean_a_bits": 6.0}
           for p, a in [("pretrain", 80.0), ("search", 85.0), ("finetune", 91.0)]]
W8A8 = {"latency_s": 0.06e-3, "energy_j": 2e-6, "size_bytes": 40_000.0, "peak_memory_bytes": 60_000.0}


def metrics(**changes):
    base = {"model": "tiny_cnn", "target": "bitfusion", "method": "search", "quantized_accuracy": 91.2,
            "float_accuracy": 93.1, "reference_w8a8": W8A8,
            "costs": {"latency_s": 0.051e-3, "energy_j": 1.5e-6, "size_bytes": 19_000.0, "peak_memory_bytes": 40_000.0},
            "budgets": {"size_bytes": {"spec": "size=0.5x", "bound": 20_000.0},
                        "latency_s": {"spec": "latency=0.8x", "bound": 0.048e-3}},
            "within_budget": {"size_bytes": True, "latency_s": False}}
    return {**base, **changes}


def test_cost_bars_are_costs_over_w8a8_with_their_budgets():
    bars = {b.key: b for b in cost_bars(metrics())}
    assert list(bars) == ["latency_s", "energy_j", "size_bytes", "peak_memory_bytes"]
    assert bars["latency_s"].ratio == pytest.approx(0.85) and bars["latency_s"].budget_ratio == pytest.approx(0.8)
    assert bars["latency_s"].within is False and bars["size_bytes"].within is True
    assert bars["energy_j"].budget_ratio is None and bars["energy_j"].within is None
    assert "0.85x w8a8" in bars["latency_s"].text and "latency=0.8x" in bars["latency_s"].text


def test_title_names_model_target_method_accuracy_and_the_budget_verdict():
    assert summary_title(metrics()) == ("tiny_cnn on bitfusion, searched policy: 91.20 % top-1 (float 93.10 %); "
                                        "OVER BUDGET: latency")
    uniform = metrics(method="uniform", config={"uniform_bits": [4, 8]}, budgets={}, within_budget={})
    assert summary_title(uniform).startswith("tiny_cnn on bitfusion, uniform w4a8: 91.20 % top-1")
    assert summary_title(uniform).endswith("; no budget")
    assert summary_title(metrics(within_budget={"size_bytes": True})).endswith("; within every budget")


def test_figure_with_metrics_has_the_title_and_a_cost_panel():
    fig = render_summary(HISTORY, POLICY, ["conv1", "fc"], metrics=metrics())
    assert fig._suptitle is not None and "tiny_cnn on bitfusion" in fig._suptitle.get_text()
    titles = {ax.get_title() for ax in fig.axes}
    assert {"training curves", "bits per layer", "chosen schemes", "costs vs budgets"} <= titles
    costs = next(ax for ax in fig.axes if ax.get_title() == "costs vs budgets")
    assert [round(p.get_height(), 3) for p in costs.patches] == [0.85, 0.75, 0.475, 0.667]
    budget_lines = [c for c in costs.collections if c.get_linestyle() != [(0, None)]]
    assert sorted(round(float(seg[0][1]), 3) for c in budget_lines for seg in c.get_segments()) == [0.5, 0.8]


def test_figure_without_metrics_keeps_three_panels(tmp_path):
    fig = render_summary(HISTORY, POLICY, ["conv1", "fc"])
    assert fig._suptitle is None and len([ax for ax in fig.axes if ax.get_title()]) == 3
    write_summary_png(tmp_path / "summary.png", HISTORY, POLICY, ["conv1", "fc"], metrics=metrics())
    assert (tmp_path / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
