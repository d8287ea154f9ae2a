"""Deployable by construction: what a search prices on a target is what the exported graph runs there."""

import pytest
import torch

import cost_models
import hwqnn
from hwqnn.export import export_onnx
from hwqnn.export.deployability import exported_precisions

FAST = dict(pretrain_epochs=0, search_epochs=2, finetune_epochs=1, batch_size=128, seed=0)


def _exported_costs(result, digits, target, tmp_path):
    profile = cost_models.load_profile(target)
    example = torch.stack([digits.test[i][0] for i in range(8)])
    report = export_onnx(result.model, example, tmp_path / "m.onnx", target=profile)
    precisions = exported_precisions(report.tensors, profile, {n: result.model.layer(n).op_type
                                                                for n in result.model.layer_names})
    names = result.model.layer_names
    graph = cost_models.CostModel(result.model.workload, profile).evaluate([precisions[n] for n in names])
    return report, graph


@pytest.mark.parametrize("target", ["jetson-orin-nano", "coral-edgetpu"])
def test_default_search_exports_only_native_int8_and_costs_what_it_priced(tiny_cnn, digits, target, tmp_path):
    result = hwqnn.search(tiny_cnn, digits.train, digits.test, target=target, **FAST)
    report, graph = _exported_costs(result, digits, target, tmp_path)
    assert report.native_fraction() == 1.0, report.summary()
    assert not [w for w in report.warnings if "TensorRT" in w], report.warnings
    if target == "jetson-orin-nano":
        assert all(row["tensorrt_native"] for row in report.layers()), report.summary()
    costs = result.metrics["costs"]
    for key in ("latency_s", "energy_j", "size_bytes", "peak_memory_bytes"):
        assert getattr(graph, key) == pytest.approx(costs[key], rel=1e-6), key  # metrics.json keeps 7 digits
    assert report.sizes.packed_bytes == pytest.approx(costs["size_bytes"], rel=0.01)


def test_allow_emulated_widens_the_space_and_says_which_layers_are_not_native(tiny_cnn, digits, tmp_path):
    result = hwqnn.search(tiny_cnn, digits.train, digits.test, target="jetson-orin-nano", budgets=["latency=2x"],
                          allow_emulated=True, **FAST)
    report, graph = _exported_costs(result, digits, "jetson-orin-nano", tmp_path)
    statuses = {d.layer: d.status for d in report.deployments}
    assert set(statuses.values()) <= {"native", "float"}
    # Whatever it chose, the priced latency is the latency of what the graph runs.
    assert graph.latency_s == pytest.approx(result.metrics["costs"]["latency_s"], rel=1e-6)


def test_a_jetson_search_point_never_costs_more_than_w8a8_under_a_w8a8_budget(tiny_cnn, digits):
    result = hwqnn.search(tiny_cnn, digits.train, digits.test, target="jetson-orin-nano", budgets=["latency=1x"],
                          **FAST)
    m = result.metrics
    assert m["costs"]["latency_s"] <= m["reference_w8a8"]["latency_s"] * (1 + 1e-9)
    assert m["costs"]["energy_j"] <= m["reference_w8a8"]["energy_j"] * (1 + 1e-9)
