"""``hwqnn profiles measure``: real ONNX Runtime timings of reference models on this machine, calibratable."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import cost_models
from hwqnn import ConfigError, measure_latencies, write_measurements
from hwqnn.cli import main

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def measured():
    return measure_latencies(["resnet18", "squeezenet1_1"], input_size=32, repeats=3, warmup=1, per_layer=True)


def test_rows_are_timings_in_the_measurement_format(measured):
    rows = measured.models
    assert len(rows) == 4 and set(rows["precision"]) == {"fp32", "w8a8"}
    assert (rows["latency_p10_ms"] <= rows["latency_ms"]).all() and (rows["latency_ms"] <= rows["latency_p90_ms"]).all()
    assert (rows["latency_ms"] > 0).all() and set(rows["device"]) == {"x86-avx2-vnni"}


def test_per_node_times_show_the_integer_kernels_of_the_w8a8_export(measured):
    layers = measured.layers
    w8a8 = layers[(layers["model"] == "resnet18") & (layers["precision"] == "w8a8")]
    fp32 = layers[(layers["model"] == "resnet18") & (layers["precision"] == "fp32")]
    assert (w8a8["op_type"] == "QLinearConv").sum() >= 19 and "Conv" not in set(w8a8["op_type"])
    assert (fp32["op_type"].isin(["Conv", "FusedConv"])).sum() >= 19
    assert (layers["latency_ms"] >= 0).all()


def test_the_rows_calibrate_the_base_profile(measured, tmp_path):
    paths = write_measurements(measured, tmp_path)
    assert pd.read_csv(paths["models"]).shape[0] == 4 and paths["layers"].is_file()
    _, report = cost_models.calibrate("x86-avx2-vnni", paths["models"])  # its CSV checks accept every row
    assert len(report.rows) == 4 and report.extra["cross_validation"]["folds"] == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"models": ["resnet9000"]}, "unknown reference model"),
    ({"models": ["resnet18"], "precisions": ["int3"]}, "precisions must be among"),
    ({"models": ["resnet18"], "repeats": 1}, "repeats must be an integer >= 3"),
])
def test_bad_input_is_one_clear_error(kwargs, match):
    models = kwargs.pop("models")
    with pytest.raises(ConfigError, match=match):
        measure_latencies(models, **kwargs)


def test_cli_measures_and_writes_a_calibrated_profile(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["profiles", "measure", "--models", "resnet18,squeezenet1_1", "--input-size", "32", "--repeats", "3",
                 "--warmup", "1", "--out", str(out), "--name", "lab-cpu"]) == 0
    text = capsys.readouterr().out
    assert "calibrated x86-avx2-vnni on 4 rows" in text and (out / "measurements.csv").is_file()
    if (out / "lab-cpu.yaml").is_file():  # written only when it beats the shipped profile on held-out models
        assert cost_models.load_profile(out / "lab-cpu.yaml").name == "lab-cpu"
    else:
        assert "not written: leave-one-model-out error" in text


def test_microbenchmarks_are_timed_beside_the_models_and_calibrate():
    result = measure_latencies([], input_size=32, repeats=3, warmup=1,
                               microbenchmarks=[("conv3x3_c32", 8), ("dwconv3x3_c96", 8), ("matmul_d64", 16)])
    rows = result.models
    assert list(rows["model"]) == ["conv3x3_c32"] * 2 + ["dwconv3x3_c96"] * 2 + ["matmul_d64"] * 2
    assert list(rows["input_size"]) == [8, 8, 8, 8, 16, 16] and set(rows["export"]) == {"hwqnn"}
    assert (rows["latency_ms"] > 0).all()
    _, report = cost_models.calibrate("x86-avx2-vnni", rows)
    assert len(report.rows) == 6


def test_bad_microbenchmarks_are_one_clear_error():
    with pytest.raises(ConfigError, match="microbenchmarks must be"):
        measure_latencies([], microbenchmarks=[("conv9x9", 8)])


def test_rounds_keep_the_least_disturbed_round(tmp_path, monkeypatch):
    from cost_models import build_reference_model
    from cost_models.reference_workloads import reference_input_shape
    from hwqnn import measure as measure_module
    from hwqnn.measure import export_graph, time_graph

    example = torch.randn(1, *reference_input_shape("conv3x3_c32", 8))
    path = export_graph(build_reference_model("conv3x3_c32", device="cpu"), example, "fp32", tmp_path / "g.onnx",
                        cost_models.load_profile("x86-avx2-vnni"))
    assert time_graph(path, example.numpy(), repeats=4, rounds=2).shape == (4,)
    slow_then_fast = iter([[3.0, 3.0, 3.0], [1.0, 1.0, 9.0], [2.0, 2.0, 2.0], [2.0, 2.0, 2.0]])
    monkeypatch.setattr(measure_module, "_time_runs", lambda *args: next(slow_then_fast))
    assert list(time_graph(path, example.numpy(), repeats=3, rounds=3)) == [1000.0, 1000.0, 9000.0]
    assert list(time_graph(path, example.numpy(), repeats=3, rounds=1)) == [2000.0, 2000.0, 2000.0]
    with pytest.raises(ConfigError, match="rounds must be"):
        time_graph(path, example.numpy(), rounds=0)


def test_cli_passes_microbenchmarks_and_rounds_through(tmp_path, monkeypatch):
    from hwqnn.cli import cmd_profiles

    seen = {}

    def record(models, **kwargs):
        seen.update(kwargs)
        raise SystemExit(0)  # stop before timing anything: only the flags' route is under test

    monkeypatch.setattr(cmd_profiles, "measure_latencies", record)
    with pytest.raises(SystemExit):
        main(["profiles", "measure", "--models", "resnet18", "--microbenchmarks", "--rounds", "3",
              "--out", str(tmp_path / "m")])
    assert seen["microbenchmarks"] is True and seen["rounds"] == 3
