"""Per-layer microbenchmarks, the graph-edge conversion bytes (``io_bytes_per_element``) and their fit."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from cost_models import CostModel, ProfileError, calibrate, list_reference_models, load_profile, reference_workload
from cost_models.precision import resolve_precisions
from cost_models.profile_loader import load_profile as load
from cost_models.reference_workloads import (
    MICRO_DEPTH,
    MICROBENCHMARK_SIZES,
    MICROBENCHMARKS,
    build_reference_model,
    reference_input_shape,
)

X86 = "x86-avx2-vnni"


def test_each_microbenchmark_is_a_stack_of_one_layer_shape_at_three_sizes():
    assert not set(MICROBENCHMARKS) & set(list_reference_models())  # the model list is unchanged
    sizes: dict[str, list[int]] = {}
    for name, size in MICROBENCHMARK_SIZES:
        sizes.setdefault(name, []).append(size)
        layers = reference_workload(name, size).layers
        shapes = {(layer.op_type, layer.macs, layer.groups) for layer in layers}
        assert len(shapes) == 1 and len(layers) == (2 if name.startswith("matmul") else MICRO_DEPTH), name
        if name.startswith("dwconv"):
            assert layers[0].groups == layers[0].out_channels > 1
        model = build_reference_model(name, device="cpu")
        assert model(torch.randn(2, *reference_input_shape(name, size))).shape[0] == 2
    assert set(sizes) == set(MICROBENCHMARKS) and all(len(v) == 3 and v == sorted(v) for v in sizes.values())
    ops = {reference_workload(name, 8).layers[0].op_type for name in MICROBENCHMARKS}
    assert ops == {"conv2d", "linear", "matmul"}


def test_conversion_bytes_add_to_the_latency_and_stay_differentiable():
    profile = load_profile(X86)
    assert profile.io_bytes_per_element == {"fp32": 8.0, "int8": 7.0}
    assert profile.layer_input_bytes_per_element == {"int8": 5.0}
    workload = reference_workload("linear_d192", 64)
    without = profile.with_params(io_bytes_per_element={}, layer_input_bytes_per_element={})
    spb = 1 / (profile.memory["dram"].bandwidth * profile.bandwidth_derating)
    edges = (workload.layers[0].in_elems + workload.layers[-1].out_elems) * 8
    inputs = sum(layer.in_elems for layer in workload.layers) * 8
    for policy, label in (("fp32", "fp32"), ("w8a8", "int8")):
        precisions = resolve_precisions(policy, workload.names, profile, [lay.op_type for lay in workload.layers])
        extra = (CostModel(workload, profile, 8).evaluate(precisions).latency_s
                 - CostModel(workload, without, 8).evaluate(precisions).latency_s)
        expected = (edges * profile.io_bytes_per_element[label]
                    + inputs * profile.layer_input_bytes_per_element.get(label, 0.0)) * spb
        assert extra == pytest.approx(expected, rel=1e-6)
    bits = torch.full((len(workload),), 8.0, requires_grad=True)
    costs = CostModel(workload, profile, 8).layer_costs(torch.zeros(len(workload), dtype=torch.long), bits,
                                                        torch.zeros(len(workload), dtype=torch.long), bits)
    costs["latency_s"].sum().backward()
    assert torch.isfinite(bits.grad).all()


@pytest.mark.parametrize("value, match", [(-1, "bytes per element"), (1000, "bytes per element"),
                                          ("8 B", "bytes per element")])
def test_bad_io_bytes_are_one_clear_profile_error(tmp_path, value, match):
    text = load_profile(X86).file
    doc = open(text, encoding="utf-8").read().replace("int8: {value: 5,", f"int8: {{value: {value!r},", 1)
    path = tmp_path / "x86-avx2-vnni.yaml"
    path.write_text(doc, encoding="utf-8")
    with pytest.raises(ProfileError, match=match):
        load(path)


def _hwqnn_rows(truth, rows) -> pd.DataFrame:
    """Rows as ``hwqnn profiles measure`` writes them, their latencies those of ``truth`` (the model itself)."""
    records = []
    for model, size, batch, precision in rows:
        workload = reference_workload(model, size)
        precisions = resolve_precisions(precision, workload.names, truth, [lay.op_type for lay in workload.layers])
        latency = CostModel(workload, truth, batch).evaluate(precisions).latency_s * 1e3
        records.append({"device": X86, "model": model, "input_size": size, "batch_size": batch,
                        "precision": precision, "latency_ms": latency, "source": "synthetic", "export": "hwqnn"})
    return pd.DataFrame(records)


def test_calibrate_fits_the_io_bytes_from_microbenchmark_rows_and_writes_them_with_priors(tmp_path):
    shipped = load_profile(X86)
    truth = shipped.with_params(bandwidth_derating=0.3, layer_overhead_s=2e-6, inference_overhead_s=5e-6,
                                efficiency_by_precision={"fp32": 0.08, "int8": 0.05},
                                io_bytes_per_element={"fp32": 2.0, "int8": 30.0},
                                layer_input_bytes_per_element={"int8": 3.0})
    grid = [(m, s, b, p) for m, s in [("resnet18", 64), ("mobilenet_v2", 64), *MICROBENCHMARK_SIZES]
            for b in (1, 8) for p in ("fp32", "w8a8")]
    frame = _hwqnn_rows(truth, grid)
    out = tmp_path / "x86-lab.yaml"
    calibrated, report = calibrate(X86, frame, out_path=out)
    assert {"io_bytes_fp32", "io_bytes_int8", "layer_input_bytes_int8"} <= set(report.fitted)
    assert report.params_after["io_bytes_int8"] == pytest.approx(30.0, rel=0.1)
    assert report.params_after["layer_input_bytes_int8"] == pytest.approx(3.0, rel=0.1)
    assert report.params_after["io_bytes_fp32"] == pytest.approx(2.0, rel=0.3)
    assert report.params_after["efficiency_int8"] == pytest.approx(0.05, rel=0.05)
    assert report.mdape_after < 2.0 < report.mdape_before
    written = load_profile(out)
    assert written.io_bytes_per_element["int8"] == pytest.approx(report.params_after["io_bytes_int8"], rel=1e-3)
    assert written.priors["io_bytes_int8"] == 7.0 and written.prior_profile().io_bytes_per_element["int8"] == 7.0
    assert written.prior_profile().layer_input_bytes_per_element == {"int8": 5.0}
    assert "microbenchmarks" in out.read_text()
    assert 0.1 <= calibrated.io_bytes_per_element["fp32"] <= 256
    # whole models alone (small inputs and outputs) cannot tell the model-edge bytes: they stay as they were
    models = _hwqnn_rows(truth, [(m, 64, b, p) for m in ("resnet18", "mobilenet_v2", "squeezenet1_1", "mobilenet_v1")
                                 for b in (1, 8) for p in ("fp32", "w8a8")])
    fitted_on_models, small = calibrate(X86, models)
    assert not any(k.startswith("io_bytes_") for k in small.fitted)
    assert fitted_on_models.io_bytes_per_element == shipped.io_bytes_per_element
