"""The export states, per layer, how its target runs it: native (as which format), emulated or float."""

from __future__ import annotations

import json

from export_helpers import inputs_for, quantized_zoo_model

import cost_models
from hwqnn.export import export_onnx
from hwqnn.export.deployability import exported_precisions
from hwqnn.policy import LayerPolicy, Policy


def _export(policy, target, tmp_path):
    calibration, _, _ = inputs_for("tiny_cnn", size=8)
    model = quantized_zoo_model("tiny_cnn", policy, calibration)
    profile = cost_models.load_profile(target)
    report = export_onnx(model, calibration[:4], tmp_path / "m.onnx", verify=False, target=profile)
    return model, profile, report


def test_an_undeployable_policy_is_exported_with_each_layer_stated(tmp_path):
    names = ["features.0.0", "features.1.0", "features.2.0", "head"]
    policy = Policy({names[0]: LayerPolicy("zoom", 6, "uniform", 7), names[1]: LayerPolicy("pot", 3, "uniform", 7),
                     names[2]: LayerPolicy("ternary", 2, "uniform", 8), names[3]: LayerPolicy("clip", 8, "clip", 7)})
    model, profile, report = _export(policy, "jetson-orin-nano", tmp_path)
    status = {d.layer: (d.status, d.format) for d in report.deployments}
    assert status == {names[0]: ("float", None), names[1]: ("native", "int8"), names[2]: ("float", None),
                      names[3]: ("native", "int8")}
    notes = {d.layer: d.note for d in report.deployments}
    assert "zero point" in notes[names[0]] and "7" not in notes[names[1]]
    assert "codes [0, 255]" in notes[names[2]]  # unsigned 8-bit activations do not fit symmetric int8
    assert report.native_fraction() == 0.5
    assert "50% of quantized layers run natively on jetson-orin-nano" in report.summary()
    sidecar = json.loads(report.sidecar_path.read_text())
    assert sidecar["target"] == "jetson-orin-nano" and len(sidecar["deployments"]) == 4
    # What the graph runs, read from the graph alone, prices exactly as the policy does.
    graph = exported_precisions(report.tensors, profile, {n: model.layer(n).op_type for n in names})
    priced = model.current_policy().to_precisions(names, profile, [model.layer(n).op_type for n in names])
    assert graph == priced


def test_the_same_policy_is_native_on_a_bit_flexible_target(tmp_path):
    policy = Policy({"default": LayerPolicy("zoom", 6, "uniform", 8)})
    _, _, report = _export(policy, "bitfusion", tmp_path)
    assert {d.status for d in report.deployments} == {"native"}


def test_a_layer_the_runtime_cannot_run_at_all_is_an_error_before_anything_is_written(tmp_path):
    import pytest
    import yaml

    from hwqnn.errors import DeploymentError

    data = yaml.safe_load(open(cost_models.load_profile("jetson-orin-nano").file))
    data["name"] = "strict-gpu"
    data["deployment"]["otherwise"] = {"value": "unsupported", "source": "a runtime without a float fallback"}
    (tmp_path / "strict-gpu.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    calibration, _, _ = inputs_for("tiny_cnn", size=8)
    model = quantized_zoo_model("tiny_cnn", Policy({"default": LayerPolicy("zoom", 6, "uniform", 7)}), calibration)
    profile = cost_models.load_profile(tmp_path / "strict-gpu.yaml")
    with pytest.raises(DeploymentError, match="layer 'features.0.0' is not deployable on strict-gpu: zoom@6 weight"):
        export_onnx(model, calibration[:4], tmp_path / "m.onnx", verify=False, target=profile)
    assert not (tmp_path / "m.onnx").exists()
