"""Sweep specifications and baseline names: parsing, ordering loose to tight, auto choice per device."""

import pytest
import torch

import cost_models
from hwqnn.errors import BudgetError
from hwqnn.models import create_model
from hwqnn.pareto import baseline_bits, parse_baselines, parse_sweep
from hwqnn.pareto._sweep_spec import auto_sweep, is_auto


def test_relative_sweep_is_ordered_loose_to_tight():
    spec = parse_sweep("latency=0.4x:1.0x:6")
    assert [str(b) for b in spec.budgets] == [
        "latency=1x", "latency=0.88x", "latency=0.76x", "latency=0.64x", "latency=0.52x", "latency=0.4x"]
    assert all(b.relative for b in spec.budgets)
    assert str(spec) == "latency=0.4x:1x:6"


def test_absolute_sweep_keeps_units():
    spec = parse_sweep("size=200KiB:800KiB:4")
    assert [b.value for b in spec.budgets] == pytest.approx([800 * 1024, 600 * 1024, 400 * 1024, 200 * 1024])
    assert not spec.budgets[0].relative


def test_single_point_sweep():
    assert [str(b) for b in parse_sweep("energy=0.5x:0.5x:1").budgets] == ["energy=0.5x"]


@pytest.mark.parametrize("text, match", [
    ("latency=0.4x:1.0x", "METRIC=LOW:HIGH:COUNT"),
    ("speed=0.4x:1.0x:3", "unknown metric"),
    ("latency=0.4x:2ms:3", "mixes a relative"),
    ("latency=1.0x:0.4x:3", "LOW > HIGH"),
    ("latency=0.4x:1.0x:0", "at least 1"),
    ("size=1parsec:2parsec:3", "not a size unit"),
])
def test_bad_sweeps_say_what_is_expected(text, match):
    with pytest.raises(BudgetError, match=match):
        parse_sweep(text)


def test_baselines():
    assert parse_baselines("w8a8, W4A4,w2a2") == ["w8a8", "w4a4", "w2a2"]
    assert parse_baselines("") == []
    assert baseline_bits("w4a8") == (4, 8)
    with pytest.raises(BudgetError, match="int4"):
        parse_baselines("w8a8,int4")


def test_auto_sweeps_what_moves_on_each_device():
    assert is_auto("auto") and is_auto("auto:3") and not is_auto("latency=0.4x:1x:3")
    workload = cost_models.extract_workload(create_model("resnet20", num_classes=10), torch.zeros(1, 3, 32, 32))
    bitfusion = auto_sweep("auto:3", workload, "bitfusion")
    jetson = auto_sweep("auto", workload, "jetson-orin-nano")
    t4 = auto_sweep("auto:4", workload, "nvidia-t4")
    assert (bitfusion.metric, bitfusion.count) == ("latency", 3)
    # TensorRT runs and stores every deployable policy as int8: nothing to trade, one point
    assert (jetson.metric, jetson.low.value, jetson.high.value, jetson.count) == ("latency", 1.0, 1.0, 1)
    # INT4 Tensor Cores: 4-bit layers are stored in 4 bits (at batch 1 latency is overhead-bound)
    assert (t4.metric, t4.count) == ("size", 4) and t4.low.value < 0.7
    # The low end is reachable: uniform 2-bit on that device costs less than it.
    w2a2 = cost_models.estimate(workload, None, "bitfusion", "w2a2")
    w8a8 = cost_models.estimate(workload, None, "bitfusion", "w8a8")
    assert w2a2.latency_s / w8a8.latency_s < bitfusion.low.value < 1.0
