"""Gradients, exactness at integers, broadcasting and batch scaling of the differentiable cost model."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from cost_models import CostModel, CostModelError, LayerPrecision, load_profile
from cost_models.cost_model import smooth_max
from cost_models.execution import KIND_INDEX

INT, FLOAT = KIND_INDEX["int"], KIND_INDEX["float"]


def _kinds(n, kind=INT):
    return torch.full((n,), kind, dtype=torch.long)


def _bits(n, value, grad=False):
    return torch.full((n,), float(value), dtype=torch.float64, requires_grad=grad)


def test_latency_gradient_positive_on_bitfusion_and_t4_at_4_bits(resnet18_workload):
    n = len(resnet18_workload)
    for target in ("bitfusion", "nvidia-t4"):
        cm = CostModel(resnet18_workload, target)
        w_bits, a_bits = _bits(n, 4, grad=True), _bits(n, 4, grad=True)
        total = cm.totals(cm.layer_costs(_kinds(n), w_bits, _kinds(n), a_bits), smooth=True)["latency_s"]
        total.backward()
        assert (w_bits.grad > 0).all(), target
        assert (a_bits.grad > 0).all(), target


@pytest.mark.parametrize("target", ["jetson-orin-nano", "jetson-xavier-nx", "jetson-agx-orin", "jetson-nano"])
def test_jetson_latency_and_size_flat_below_8_bits(resnet18_workload, target):
    """TensorRT computes and stores sub-8-bit integers as int8 (its deployment section): neither moves."""
    n = len(resnet18_workload)
    cm = CostModel(resnet18_workload, target)
    latencies, sizes = [], []
    for bits in (2.0, 3.5, 5.0, 6.25, 7.9):
        w_bits = _bits(n, bits, grad=True)
        costs = cm.layer_costs(_kinds(n), w_bits, _kinds(n), _bits(n, 8))
        totals = cm.totals(costs, smooth=True)
        totals["latency_s"].backward(retain_graph=True)
        assert torch.count_nonzero(w_bits.grad) == 0
        latencies.append(totals["latency_s"].item())
        sizes.append(totals["size_bytes"].item())
    assert max(latencies) == min(latencies)
    assert max(sizes) == min(sizes)


def test_size_falls_with_bits_where_the_runtime_bit_packs(resnet18_workload):
    n = len(resnet18_workload)
    cm = CostModel(resnet18_workload, "bitfusion")
    sizes = [cm.totals(cm.layer_costs(_kinds(n), _bits(n, b), _kinds(n), _bits(n, 8)))["size_bytes"].item()
             for b in (2.0, 3.5, 5.0, 6.25, 7.9)]
    assert all(a < b for a, b in zip(sizes, sizes[1:]))  # more bits, more bytes


def _reference_layer_latency(profile, layer, bw, ba):
    """Hand-computed roofline of one bitfusion layer at integer bits (no cost-model code)."""
    macs = layer.macs
    cycles = math.ceil(bw / 2) * math.ceil(ba / 2)
    compute = macs * 2 * cycles / (profile.compute["int"].peak_ops[2] * profile.efficiency)
    moved = layer.weight_elems * bw / 8 + (layer.in_elems + layer.out_elems) * ba / 8
    memory = moved / (profile.memory["dram"].bandwidth * profile.bandwidth_derating)
    return max(compute, memory) + profile.layer_overhead_s


def test_exact_at_integers_and_bilinear_between(small_workload):
    profile = load_profile("bitfusion")
    cm = CostModel(small_workload, profile)
    n = len(small_workload)

    def latency(bw, ba):
        return cm.layer_costs(_kinds(n), _bits(n, bw), _kinds(n), _bits(n, ba), smooth=False)["latency_s"]

    for bw, ba in [(1, 1), (2, 8), (3, 5), (8, 8), (16, 4)]:
        expected = torch.tensor([_reference_layer_latency(profile, layer, bw, ba) for layer in small_workload],
                                dtype=torch.float64)
        torch.testing.assert_close(latency(bw, ba), expected, rtol=1e-12, atol=0)
    tw, ta = 0.25, 0.6
    blended = ((1 - tw) * (1 - ta) * latency(4, 5) + (1 - tw) * ta * latency(4, 6)
               + tw * (1 - ta) * latency(5, 5) + tw * ta * latency(5, 6))
    torch.testing.assert_close(latency(4 + tw, 5 + ta), blended, rtol=1e-12, atol=0)


def test_evaluate_matches_layer_costs_and_reports_execution(small_workload):
    n = len(small_workload)
    cm = CostModel(small_workload, "jetson-orin-nano")
    report = cm.evaluate([LayerPrecision("int", 4, "int", 8)] * n)
    costs = cm.layer_costs(_kinds(n), _bits(n, 4), _kinds(n), _bits(n, 8), smooth=False)
    assert report.latency_s == pytest.approx(costs["latency_s"].sum().item(), rel=1e-12)
    layers = report.layers
    assert list(layers["exec_w_bits"]) == [8] * n  # 4-bit weights compute at INT8 on a Jetson GPU
    assert set(layers["bound"]) <= {"compute", "memory"}
    assert not layers["fallback"].any()
    assert report.to_dict()["layers"][0]["name"] == small_workload.names[0]


def test_broadcast_over_leading_dims(small_workload):
    n = len(small_workload)
    cm = CostModel(small_workload, "bitfusion")
    w_grid = torch.tensor([2.0, 3.5, 8.0], dtype=torch.float64).view(3, 1, 1).expand(3, 1, n)
    a_grid = torch.tensor([4.0, 6.0], dtype=torch.float64).view(1, 2, 1).expand(1, 2, n)
    costs = cm.layer_costs(_kinds(n), w_grid, _kinds(n), a_grid)
    assert costs["latency_s"].shape == (3, 2, n)
    for i, bw in enumerate((2.0, 3.5, 8.0)):
        for j, ba in enumerate((4.0, 6.0)):
            single = cm.layer_costs(_kinds(n), _bits(n, bw), _kinds(n), _bits(n, ba))
            for key in ("latency_s", "energy_j", "weight_bytes", "activation_bytes"):
                torch.testing.assert_close(costs[key][i, j], single[key])
    totals = cm.totals(costs)
    assert totals["latency_s"].shape == (3, 2)
    with pytest.raises(CostModelError, match=r"broadcast to \[\.\.\., 4\]"):
        cm.layer_costs(_kinds(n), torch.ones(n + 1), _kinds(n), torch.ones(n))


def test_batch_scaling(resnet18_workload):
    n = len(resnet18_workload)
    one = CostModel(resnet18_workload, "jetson-agx-orin", batch_size=1)
    eight = CostModel(resnet18_workload, "jetson-agx-orin", batch_size=8)
    args = (_kinds(n), _bits(n, 8), _kinds(n), _bits(n, 8))
    c1, c8 = one.layer_costs(*args, smooth=False), eight.layer_costs(*args, smooth=False)
    torch.testing.assert_close(c8["compute_s"], 8 * c1["compute_s"])
    torch.testing.assert_close(c8["weight_bytes"], c1["weight_bytes"])
    torch.testing.assert_close(c8["activation_bytes"], 8 * c1["activation_bytes"])
    t1, t8 = one.totals(c1)["latency_s"], eight.totals(c8)["latency_s"]
    assert t1 < t8 < 8 * t1  # weights and overheads amortize over the batch
    with pytest.raises(CostModelError, match="batch_size"):
        CostModel(resnet18_workload, "jetson", batch_size=0)


def test_fp16_faster_and_smaller_than_fp32_on_gpus(resnet18_workload):
    n = len(resnet18_workload)
    for target in ("jetson-nano", "jetson-tx2", "nvidia-t4"):
        cm = CostModel(resnet18_workload, target)
        fp16 = cm.evaluate([LayerPrecision("float", 16, "float", 16)] * n)
        fp32 = cm.evaluate([LayerPrecision("float", 32, "float", 32)] * n)
        assert fp16.latency_s < fp32.latency_s and fp16.size_bytes == pytest.approx(fp32.size_bytes / 2)
        assert fp16.energy_j < fp32.energy_j


def test_edgetpu_runs_int8_and_falls_back_to_the_host_otherwise(small_workload):
    n = len(small_workload)
    cm = CostModel(small_workload, "coral-edgetpu")
    int8 = cm.evaluate([LayerPrecision("int", 8, "int", 8)] * n)
    fp32 = cm.evaluate([LayerPrecision("float", 32, "float", 32)] * n)
    assert not int8.layers["fallback"].any() and set(int8.layers["device"]) == {"coral-edgetpu"}
    assert fp32.layers["fallback"].all() and set(fp32.layers["device"]) == {"x86-avx2-vnni"}
    host_only = CostModel(small_workload, "x86-avx2-vnni").evaluate([LayerPrecision("float", 32, "float", 32)] * n)
    assert fp32.latency_s > host_only.latency_s  # plus the USB transfers


def test_edgetpu_streams_weights_that_do_not_fit_on_chip(resnet18_workload):
    n = len(resnet18_workload)
    cm = CostModel(resnet18_workload, "coral-edgetpu")
    w8 = cm.evaluate([LayerPrecision("int", 8, "int", 8)] * n)  # 11.7 MB of int8 weights: spills past 8 MiB
    assert w8.size_bytes > 8 * 2**20
    # A runtime that bit-packed 4-bit weights would fit them in the cache (the real Edge TPU stores int8).
    packed = dataclasses.replace(load_profile("coral-edgetpu"), deployment=None)
    small = CostModel(resnet18_workload, packed).layer_costs(
        _kinds(n), _bits(n, 4), _kinds(n), _bits(n, 8), smooth=False)
    assert small["latency_s"].sum().item() < w8.latency_s


@pytest.mark.parametrize("batch", [1, 32])
def test_an_l2_cache_keeps_each_layers_activations_up_to_its_size(resnet18_workload, batch):
    """A GPU's L2 (``sram.caches_activations``) spares DRAM the first ``size`` bytes of every layer's input
    and output: each layer's DRAM time drops by exactly min(activation bytes, size) at DRAM speed."""
    n = len(resnet18_workload)
    cached = load_profile("jetson-agx-orin")
    sram = cached.memory["sram"]
    assert sram.caches_activations
    uncached = dataclasses.replace(cached, memory={**cached.memory,
                                                   "sram": dataclasses.replace(sram, caches_activations=False)})
    args = (_kinds(n), _bits(n, 8), _kinds(n), _bits(n, 8))
    with_l2, without = (CostModel(resnet18_workload, p, batch_size=batch).layer_costs(*args, smooth=False)
                        for p in (cached, uncached))
    activation_bytes = torch.tensor([(layer.in_elems + layer.out_elems) * batch for layer in resnet18_workload.layers],
                                    dtype=torch.float64)  # int8: one byte each
    dram_seconds_per_byte = 1 / (cached.memory["dram"].bandwidth * cached.bandwidth_derating)
    saved = torch.clamp(activation_bytes, max=sram.size) * dram_seconds_per_byte
    torch.testing.assert_close(without["memory_s"] - with_l2["memory_s"], saved)
    assert bool((with_l2["latency_s"] <= without["latency_s"]).all())
    assert with_l2["energy_j"].sum() < without["energy_j"].sum()


def test_smooth_totals_bound_hard_totals(resnet18_workload):
    n = len(resnet18_workload)
    cm = CostModel(resnet18_workload, "bismo")
    args = (_kinds(n), _bits(n, 3), _kinds(n), _bits(n, 5))
    hard = cm.totals(cm.layer_costs(*args, smooth=False))
    smooth = cm.totals(cm.layer_costs(*args, smooth=True), smooth=True)
    for key in ("latency_s", "peak_memory_bytes"):
        assert hard[key] <= smooth[key] <= 1.05 * hard[key]
    a, b = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 1.0])
    assert torch.all(smooth_max(a, b) >= torch.maximum(a, b))


def test_float32_inputs_and_a_float_kind(small_workload):
    n = len(small_workload)
    cm = CostModel(small_workload, "jetson-orin-nano")
    costs = cm.layer_costs(_kinds(n, FLOAT), torch.full((n,), 16.0), _kinds(n, FLOAT), torch.full((n,), 16.0))
    assert costs["latency_s"].dtype == torch.float32
    fp16 = cm.evaluate([LayerPrecision("float", 16, "float", 16)] * n)
    assert costs["latency_s"].sum().item() == pytest.approx(fp16.latency_s, rel=1e-5)


def test_the_per_inference_overhead_is_paid_once_per_batch_and_reported_as_its_own_row(resnet18_workload):
    base = load_profile("jetson-orin-nano").prior_profile()
    with_overhead = base.with_params(inference_overhead_s=1e-3)
    policy = [LayerPrecision("int", 8, "int", 8)] * len(resnet18_workload)
    for batch in (1, 8):
        plain = CostModel(resnet18_workload, base, batch).evaluate(policy)
        paid = CostModel(resnet18_workload, with_overhead, batch).evaluate(policy)
        assert paid.latency_s - plain.latency_s == pytest.approx(1e-3, rel=1e-9)  # not 8x at batch 8
        first = paid.layers.iloc[0]
        assert first["name"] == "(per inference)" and first["pricing"] == "overhead"
        assert first["latency_s"] == pytest.approx(1e-3)
        assert paid.layers["latency_s"].sum() == pytest.approx(paid.latency_s, rel=1e-9)
        assert (paid.layers.iloc[1:]["latency_s"].to_numpy() == pytest.approx(plain.layers["latency_s"].to_numpy()))
    # the search's differentiable totals include it too
    n = len(resnet18_workload)
    model = CostModel(resnet18_workload, with_overhead)
    total = model.totals(model.layer_costs(_kinds(n), _bits(n, 8), _kinds(n), _bits(n, 8), smooth=False))
    assert float(total["latency_s"]) == pytest.approx(model.evaluate(policy).latency_s, rel=1e-9)


def test_a_layer_that_fills_one_wave_and_a_bit_pays_for_two():
    from cost_models.profile import Tiling

    tiling = Tiling(units=4, tile_m=64, tile_n=64)
    # 4 tiles on 4 units: one full wave; 5 tiles: two waves for 1.25 waves of work; a narrow layer pays a tile
    factors = tiling.factor([256, 320, 256], [64, 64, 16])
    assert factors == pytest.approx([1.0, 2 * 4 / 5, 4.0])


def test_tiling_scales_only_the_compute_term(resnet18_workload):
    from cost_models.profile import Tiling

    base = load_profile("nvidia-t4").prior_profile()
    tiled = dataclasses.replace(base, tiling=Tiling(units=40, tile_m=128, tile_n=128), _cache={})
    n = len(resnet18_workload)
    plain, waves = (CostModel(resnet18_workload, p, 1).layer_costs(_kinds(n), _bits(n, 8), _kinds(n), _bits(n, 8),
                                                                  smooth=False) for p in (base, tiled))
    factor = torch.as_tensor(CostModel(resnet18_workload, tiled, 1).wave_factors())
    assert (factor >= 1).all() and (factor > 1).any()
    assert torch.allclose(waves["compute_s"], plain["compute_s"] * factor)
    assert torch.equal(waves["memory_s"], plain["memory_s"])
