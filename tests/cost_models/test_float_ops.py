"""Every op is costed: attention's MACs match an analytic count, ops that stay float are rows of the
report at the device's float precision (or fused at cost 0), and an op the model cannot price is
estimated and flagged."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cost_models
from cost_models.float_ops import FLOAT_OP_FUNCTIONS, float_op_bits
from cost_models.workload import extract_workload
from hwqnn.cli import main

B, L, D, H = 2, 10, 32, 4  # batch, sequence length, model width, heads


def analytic_attention_macs() -> int:
    """Per batch: q, k, v and output projections (L x D x D each) plus q k^T and attn v (L x L x D each)."""
    return B * (4 * L * D * D + 2 * L * L * D)


class MhaBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(D, H, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


class SdpaBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)

    def forward(self, x):
        q, k, v = self.qkv(x).reshape(x.shape[0], L, 3, H, D // H).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(x.shape[0], L, D))


@pytest.mark.parametrize("block", [MhaBlock, SdpaBlock])
def test_attention_macs_match_the_analytic_count(block):
    torch.manual_seed(0)
    report = cost_models.estimate(block().eval(), torch.randn(B, L, D), "jetson", "w8a8", batch_size=B)
    assert report.layers["macs"].sum() == pytest.approx(analytic_attention_macs(), rel=0.01)
    softmax = report.layers[report.layers["op_type"] == "softmax"].iloc[0]
    assert softmax["activation_bytes"] == 2 * B * H * L * L * 2  # scores read and written in fp16


class Block(nn.Module):
    """A transformer-style block: every kind of float op around two GEMMs."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(D)
        self.fc1, self.fc2 = nn.Linear(D, D), nn.Linear(D, D)

    def forward(self, x):
        h = F.gelu(self.fc1(self.norm(x)))
        scores = (h @ h.transpose(1, 2)).softmax(-1)
        return x + self.fc2(scores @ h)


def test_float_ops_are_rows_at_the_device_float_precision_and_rows_sum_to_the_totals():
    torch.manual_seed(0)
    workload = extract_workload(Block().eval(), torch.randn(B, L, D))
    for target, fast_bits in (("jetson-orin-nano", 16), ("raspberry-pi-4", 32)):
        report = cost_models.estimate(workload, None, target, "w8a8", batch_size=B)
        rows = report.layers.set_index("name")
        assert list(report.layers["name"]) == [
            "norm.layer_norm", "fc1", "gelu", "matmul", "softmax", "matmul_1", "fc2", "add"]
        assert rows.loc["norm.layer_norm", "bits"] == "fp32"  # normalization keeps fp32
        assert rows.loc["gelu", "bits"] == rows.loc["softmax", "bits"] == f"fp{fast_bits}"
        assert rows.loc["softmax", "activation_bytes"] == 2 * B * L * L * fast_bits / 8
        float_rows = report.layers[report.layers["pricing"] == "float"]
        assert len(float_rows) == 4 and (float_rows["bound"] == "memory").all() and (float_rows["macs"] == 0).all()
        assert report.layers["latency_s"].sum() == pytest.approx(report.latency_s, rel=1e-9)
        assert report.layers["energy_j"].sum() == pytest.approx(report.energy_j, rel=1e-9)
        assert report.peak_memory_bytes == pytest.approx(report.size_bytes + report.layers["activation_bytes"].max())
        assert report.warnings == []


def test_layer_costs_keep_one_entry_per_quantizable_layer():
    torch.manual_seed(0)
    workload = extract_workload(Block().eval(), torch.randn(B, L, D))
    model = cost_models.CostModel(workload, "jetson")
    n = len(workload)
    assert n == 4
    costs = model.layer_costs(torch.zeros(3, n), torch.full((3, n), 8.0), torch.zeros(3, n), torch.full((3, n), 8.0))
    assert all(value.shape == (3, n) for value in costs.values())
    evaluated = model.evaluate([cost_models.LayerPrecision("int", 8, "int", 8)] * n)
    assert model.totals(costs)["latency_s"][0].item() == pytest.approx(evaluated.latency_s, rel=1e-6)


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.post_bn = nn.BatchNorm2d(8)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))  # folded and fused
        y = F.relu(y + self.conv(x))  # a kernel (add, an int8 one: a conv feeds it), its ReLU fused into it
        y = self.post_bn(F.max_pool2d(y, 2))  # BN after pooling: a kernel
        y = torch.cat([y, F.avg_pool2d(y, 2).repeat_interleave(2, -1).repeat_interleave(2, -2)], 1)
        return F.hardswish(y).mean((2, 3))


def test_fused_ops_cost_nothing_and_the_rest_are_memory_bound_kernels():
    torch.manual_seed(0)
    workload = extract_workload(ConvNet().eval(), torch.randn(1, 3, 8, 8))
    pricing = {op.name: op.pricing for op in workload.float_ops}
    assert pricing["bn.batch_norm"] == "fused" and pricing["relu"] == pricing["relu_1"] == "fused"
    assert pricing["post_bn.batch_norm"] == "kernel" and pricing["add"] == pricing["hardswish"] == "kernel"
    report = cost_models.estimate(workload, None, "raspberry-pi-4", "w8a8")
    rows = report.layers.set_index("name")
    assert "bn.batch_norm" not in rows.index and "relu" not in rows.index
    assert rows.loc["max_pool", "activation_bytes"] == (8 * 8 * 8 + 8 * 4 * 4) * 4  # fp32 in + out
    assert rows.loc["mean", "activation_bytes"] == (16 * 4 * 4 + 16) * 4
    for name in ("max_pool", "post_bn.batch_norm", "hardswish", "mean"):
        assert rows.loc[name, "pricing"] == "float" and rows.loc[name, "latency_s"] > 0
    # Fed by a conv (through ReLU, max pooling and a BatchNorm): hwqnn quantizes their inputs (its joins).
    for name in ("add", "avg_pool", "cat"):
        assert rows.loc[name, "pricing"] == "joined" and rows.loc[name, "bits"] == "int8"
    assert rows.loc["add", "activation_bytes"] == 3 * 8 * 8 * 8  # two int8 inputs and the int8 output
    fused = [r for r in report.float_ops if r["pricing"] == "fused"]
    assert len(fused) == 3 and all(r["latency_s"] == r["bytes"] == 0 for r in fused)
    assert "3 fused into the op before them (cost 0)" in report.summary()


class Unknown(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D)
        self.register_buffer("mask", torch.ones(L, L))

    def forward(self, x):
        causal = torch.tril(self.mask) > 0  # from a buffer only: a constant, folded
        h = self.fc(x).reshape(x.shape[0], L, H, D // H).flatten(2)  # views: free
        return torch.cumsum(h, 1).masked_fill(~causal[:, :1], 0.0)


def test_an_op_the_model_cannot_price_is_estimated_and_flagged(capsys):
    torch.manual_seed(0)
    workload = extract_workload(Unknown().eval(), torch.randn(B, L, D))
    assert [(op.name, op.pricing) for op in workload.float_ops] == [("cumsum", "unpriced"),
                                                                    ("masked_fill", "unpriced")]
    report = cost_models.estimate(workload, None, "jetson", "w8a8", batch_size=B)
    rows = report.layers.set_index("name")
    assert rows.loc["cumsum", "pricing"] == "unpriced" and rows.loc["cumsum", "bits"] == "fp32"
    assert rows.loc["cumsum", "activation_bytes"] == 2 * B * L * D * 4
    assert len(report.warnings) == 2 and "'cumsum' (cumsum) is not an op the cost model knows" in report.warnings[0]
    assert "warning: 'cumsum'" in report.summary() and report.to_dict()["warnings"] == report.warnings
    assert report.layers["latency_s"].sum() == pytest.approx(report.latency_s, rel=1e-9)


def test_precision_rule():
    assert float_op_bits("softmax", "kernel", 16) == 16 and float_op_bits("layer_norm", "kernel", 16) == 32
    assert float_op_bits("cumsum", "unpriced", 16) == 32 and float_op_bits("add", "kernel", 32) == 32
    assert FLOAT_OP_FUNCTIONS[torch.Tensor.__iadd__] == FLOAT_OP_FUNCTIONS[torch.add] == "add"


def test_cli_cost_table_lists_float_ops(capsys):
    assert main(["cost", "--model", "vit_tiny", "--target", "jetson"]) == 0
    out = capsys.readouterr().out
    assert "float ops (" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("blocks.0.attn.softmax")]
    assert rows and rows[0][1] == "softmax" and rows[0][3] == "fp16"


def test_float_ops_of_a_fully_integer_deployment_and_on_chip_activations():
    """Published benchmarks run adds and pooling in int8 (float_op_bits=8); the Edge TPU keeps
    activations on chip, so its float ops do not pay the host link's bandwidth."""
    from cost_models import CostModel, CostModelError, resolve_precisions
    from cost_models.reference_workloads import reference_workload

    workload = reference_workload("resnet50", 224)
    precisions = resolve_precisions("w8a8", workload.names)

    def float_latency(target, bits=None, batch=1):
        layers = CostModel(workload, target, batch_size=batch, float_op_bits=bits).evaluate(precisions).layers
        return float(layers.loc[layers["pricing"] != "policy", "latency_s"].sum())

    # fp16 by default there; at batch 8 the adds' tensors outgrow its 2 MiB L2 (at batch 1 they stay in it)
    assert float_latency("jetson-orin-nano", 8, batch=8) < float_latency("jetson-orin-nano", batch=8)
    assert float_latency("jetson-orin-nano", 8) == pytest.approx(float_latency("jetson-orin-nano"))
    coral = float_latency("coral-edgetpu")
    total = CostModel(workload, "coral-edgetpu").evaluate(precisions).latency_s
    assert coral < 0.5 * total  # on-chip: the adds and pooling are not the bulk of a ResNet-50
    with pytest.raises(CostModelError, match="float_op_bits must be 8, 16 or 32"):
        CostModel(workload, "coral-edgetpu", float_op_bits=4)


def test_the_ssd_mobilenet_reference_has_its_published_size_and_six_feature_maps():
    """MLPerf Inference's SSD-MobileNet v1 (300x300): 6.91M parameters, 2.47 GOPs (1.23 G multiply-adds)."""
    from cost_models.reference_workloads import reference_workload

    workload = reference_workload("ssd_mobilenet_v1", 300)
    macs = sum(layer.macs for layer in workload.layers)
    params = sum(layer.weight_elems for layer in workload.layers if layer.weight_is_param)
    assert 1.2e9 < macs < 1.27e9 and 6.7e6 < params < 7.0e6
    heads = [layer for layer in workload.layers if layer.out_channels in (3 * 91, 6 * 91, 3 * 4, 6 * 4)]
    assert len(heads) == 12  # a class and a box convolution on each of the six feature maps


def test_the_deit_tiny_reference_has_its_published_size_and_prices_its_attention():
    """DeiT-Ti (Touvron et al. 2021, Table 1): 5M parameters, 1.3 GFLOPs (multiply-adds) at 224 px."""
    from cost_models.reference_workloads import reference_workload

    workload = reference_workload("deit_tiny", 224)
    macs = sum(layer.macs for layer in workload.layers)
    params = sum(layer.weight_elems for layer in workload.layers if layer.weight_is_param)
    assert 1.2e9 < macs < 1.3e9 and 5.0e6 < params < 5.8e6
    assert sum(layer.op_type == "matmul" for layer in workload.layers) == 24  # QK^T and AV in 12 blocks
    priced = {op.op_type for op in workload.float_ops if op.costed}
    assert {"softmax", "layer_norm", "gelu"} <= priced
