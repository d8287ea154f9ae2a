"""The shipped measurement table: real sources, known devices and models, enough rows."""

from __future__ import annotations

import pandas as pd
import pytest

from cost_models import list_profiles
from cost_models.measurements import read_measurements
from cost_models.reference_workloads import list_reference_models


def test_measurement_table_is_complete():
    table = read_measurements()
    assert len(table) >= 20
    assert set(table["device"]) <= set(list_profiles())
    assert set(table["model"]) <= set(list_reference_models())
    assert set(table["split"]) == {"calib", "holdout"}
    assert table["source"].str.contains(r"https://").all()
    nano, xavier = table[table.device == "jetson-nano"], table[table.device == "jetson-agx-xavier"]
    assert {"resnet18", "resnet34", "resnet50"} <= set(nano.model) & set(xavier.model)
    assert {"fp32", "fp16", "w8a8"} <= set(xavier.precision)
    assert {"mobilenet_v1", "mobilenet_v2", "resnet50"} <= set(table[table.device == "coral-edgetpu"].model)


@pytest.mark.slow
def test_validation_runs_end_to_end():
    from cost_models.validate import render, validate

    table, metrics, params = validate()
    assert metrics["holdout_rows"].iloc[-1] == (table["split"] == "holdout").sum()
    assert "Metrics on held-out rows" in render(table, metrics, params)


def test_speedups_pair_precisions_of_one_source_and_score_the_prediction():
    from cost_models.validate import speedups

    row = {"device": "jetson-agx-xavier", "model": "resnet50", "input_size": 224, "batch_size": 1, "source": "s"}
    table = pd.DataFrame([
        {**row, "precision": "fp32", "latency_ms": 10.0, "predicted_before_ms": 12.0, "predicted_after_ms": 10.0},
        {**row, "precision": "fp16", "latency_ms": 5.0, "predicted_before_ms": 3.0, "predicted_after_ms": 5.0},
        {**row, "precision": "w8a8", "latency_ms": 4.0, "predicted_before_ms": 2.0, "predicted_after_ms": 4.0},
        {**row, "source": "other", "precision": "fp16", "latency_ms": 1.0, "predicted_before_ms": 1.0,
         "predicted_after_ms": 1.0},  # another source: never paired with the rows above
    ])
    pairs = speedups(table).set_index("pair")
    assert list(pairs.index) == ["fp16/fp32", "w8a8/fp16", "w8a8/fp32"]
    assert pairs.loc["fp16/fp32", "measured"] == 2.0 and pairs.loc["fp16/fp32", "predicted_before"] == 4.0
    assert pairs.loc["fp16/fp32", "error_before_pct"] == pytest.approx(100.0)
    assert (pairs["error_after_pct"].abs() < 1e-9).all()


def test_the_energy_table_is_checked_and_compared_with_the_model():
    from cost_models import CalibrationError
    from cost_models.measurements import ENERGY_CSV, read_energy_measurements
    from cost_models.validate import validate_energy

    table = read_energy_measurements()
    assert set(table["device"]) <= set(list_profiles()) and table["source"].str.contains("https://").all()
    energy = validate_energy(ENERGY_CSV)
    assert (energy["predicted_mj"] > 0).all() and energy["ratio_total"].notna().all()
    bad = table.copy()
    bad.loc[3, "energy_mj"] = -1.0
    with pytest.raises(CalibrationError, match=r"energy_mj must be a positive finite number \(lines 5\)"):
        read_energy_measurements(bad)
    with pytest.raises(CalibrationError, match="lack columns energy_mj"):
        read_energy_measurements(table.drop(columns=["energy_mj"]))
