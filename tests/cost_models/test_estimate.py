"""estimate() with a uniform string, a mapping, an object with to_precisions, an nn.Module."""

from __future__ import annotations

import pytest
import torch

from cost_models import CostModelError, LayerPrecision, PolicyFormatError, estimate


def test_estimate_with_string_policy(small_workload):
    w8 = estimate(small_workload, None, "bitfusion", "w8a8")
    w4 = estimate(small_workload, None, "bitfusion", "w4a4")
    assert w4.latency_s < w8.latency_s and w4.size_bytes < w8.size_bytes and w4.energy_j < w8.energy_j
    assert w8.target == "bitfusion" and w8.batch_size == 1
    assert list(w8.layers["bits"]) == ["w8a8"] * len(small_workload)


def test_estimate_with_mapping_policy(small_workload):
    names = small_workload.names
    mapping = {name: LayerPrecision("int", 8, "int", 8) for name in names}
    mapping[names[0]] = LayerPrecision("float", 16, "float", 16)
    report = estimate(small_workload, None, "jetson", mapping)
    assert report.layers.loc[0, "exec_kind"] == "float" and report.layers.loc[1, "exec_kind"] == "int"
    with pytest.raises(PolicyFormatError, match="does not cover"):
        estimate(small_workload, None, "jetson", {names[0]: LayerPrecision("int", 8, "int", 8)})


class _PolicyLike:
    def __init__(self, bits):
        self.bits = bits
        self.asked = None

    def to_precisions(self, layer_names):
        self.asked = list(layer_names)
        return {n: LayerPrecision("int", self.bits, "int", 8) for n in layer_names}


def test_estimate_with_object_having_to_precisions(small_workload):
    policy = _PolicyLike(4)
    report = estimate(small_workload, None, "nvidia-t4", policy, batch_size=4)
    assert policy.asked == small_workload.names
    uniform = estimate(small_workload, None, "nvidia-t4", "w4a8", batch_size=4)
    assert report.latency_s == pytest.approx(uniform.latency_s) and report.batch_size == 4


def test_estimate_traces_a_module(small_cnn_model):
    model = small_cnn_model
    report = estimate(model, torch.randn(2, 3, 32, 32), "jetson-nano", "fp16")
    assert (report.layers["pricing"] == "policy").sum() == 4 and report.latency_s > 0
    assert report.peak_memory_bytes > report.size_bytes
    assert report.layers["pricing"].iloc[0] == "overhead"  # the calibrated Jetson Nano pays one per inference
    with pytest.raises(CostModelError, match="needs example_input"):
        estimate(model, None, "jetson")
    with pytest.raises(CostModelError, match="expects an nn.Module or a Workload"):
        estimate("resnet50", None, "jetson")
