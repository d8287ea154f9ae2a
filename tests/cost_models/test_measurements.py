"""The shipped measurement table: real sources, known devices and models, enough rows."""

from __future__ import annotations

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
