"""``run_report`` wiring: one sweep per target, shared float weights, fixed budgets except the swept metric."""

import pytest
import torch
from torch.utils.data import TensorDataset

import hwqnn.report._run as run_module
from hwqnn.errors import ProfileError
from hwqnn.models import create_model
from hwqnn.report import run_report


def test_each_target_gets_its_sweep_and_the_fixed_budgets_that_apply(monkeypatch, tmp_path):
    """ResNet-20 (sweeps are only planned here, not run): by ``auto``, bitfusion gets a latency sweep; the
    Jetson, where every deployable policy runs and is stored as int8, the single point latency=1x."""
    calls = []
    monkeypatch.setattr(run_module, "run_sweep", lambda *a, **kw: calls.append(kw))
    monkeypatch.setattr(run_module, "build_report", lambda dirs, out, **kw: (dirs, out))
    images = TensorDataset(torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long))
    dirs, out = run_report(create_model("resnet20", num_classes=10), images, images, targets=["bitfusion", "jetson"],
                           out_dir=tmp_path, sweep="auto:2", fixed_budgets=["latency=1.0x"])
    assert [c["target"].name for c in calls] == ["bitfusion", "jetson-orin-nano"]  # aliases resolved, once
    assert [(c["sweep"].metric, c["sweep"].count) for c in calls] == [("latency", 2), ("latency", 1)]
    assert calls[0]["fixed_budgets"] == [] and calls[1]["fixed_budgets"] == []  # latency is the swept metric on both
    assert {c["float_weights"] for c in calls} == {tmp_path / "sweeps" / "float_model.pt"}  # pretrained once
    assert dirs == [tmp_path / "sweeps" / "bitfusion", tmp_path / "sweeps" / "jetson-orin-nano"]


def test_unknown_target_fails_before_any_sweep(monkeypatch, tmp_path, small_digits, float_tiny_cnn):
    monkeypatch.setattr(run_module, "run_sweep", lambda *a, **kw: pytest.fail("no sweep may start"))
    train, test = small_digits
    with pytest.raises(ProfileError, match="unknown hardware profile 'nope'"):
        run_report(float_tiny_cnn, train, test, targets=["bitfusion", "nope"], out_dir=tmp_path)
