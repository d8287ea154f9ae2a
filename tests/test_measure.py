"""``hwqnn profiles measure``: real ONNX Runtime timings of reference models on this machine, calibratable."""

from __future__ import annotations

import pandas as pd
import pytest

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
