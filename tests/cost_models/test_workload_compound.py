"""extract_workload lists the GEMMs inside fused calls with exact MACs (attention's projections, q k^T and
attn v; every time step of a recurrent layer; einsum as a matmul) and the float ops, which the cost model
charges as memory-bound float kernels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cost_models
from cost_models.compound import is_einsum_contraction, plan_einsum
from cost_models.cost_model import FLOAT_OP_BYTES
from cost_models.workload import extract_workload


def test_multihead_attention_rows_and_macs():
    torch.manual_seed(0)
    model = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    x = torch.randn(2, 6, 16)  # N=2, L=S=6, E=16, H=4, D=4

    class Self(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = model

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    workload = extract_workload(Self(), x)
    macs = {row.name: row.macs for row in workload}
    assert list(macs) == [f"attn.{op}" for op in ("q_proj", "k_proj", "v_proj", "qk", "av", "out_proj")]
    assert macs["attn.q_proj"] == macs["attn.out_proj"] == 6 * 16 * 16  # per sample
    assert macs["attn.qk"] == macs["attn.av"] == 4 * 6 * 6 * 4
    (softmax,) = workload.float_ops
    assert (softmax.name, softmax.in_elems, softmax.after_layer) == ("attn.softmax", 4 * 6 * 6, "attn.qk")


def test_sdpa_counts_both_matmuls():
    q = k = v = torch.randn(2, 3, 5, 8)

    class Core(nn.Module):
        def forward(self, x):
            return F.scaled_dot_product_attention(x, x, x)

    rows = extract_workload(Core(), q).layers
    assert [r.name for r in rows] == ["sdpa.qk", "sdpa.av"]
    assert rows[0].macs == rows[1].macs == 3 * 5 * 5 * 8
    del k, v


@pytest.mark.parametrize("cls, gates", [(nn.RNN, 1), (nn.GRU, 3), (nn.LSTM, 4)])
def test_recurrent_gemms_cover_every_time_step(cls, gates):
    rnn = cls(5, 7, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, 9, 5)  # batch 3, T=9
    rows = {row.name: row for row in extract_workload(rnn, x)}
    assert len(rows) == 8
    g = gates * 7
    assert rows["ih_l0"].macs == 9 * g * 5 and rows["ih_l1_reverse"].macs == 9 * g * 14
    assert rows["hh_l0"].macs == 9 * g * 7 and rows["hh_l0"].calls == 9
    assert all(row.weight_is_param for row in rows.values())


def test_einsum_plans():
    assert is_einsum_contraction("bhid,bhjd->bhij", [None, None])
    assert not is_einsum_contraction("bid,bid->bid", [None, None])
    assert not is_einsum_contraction("ii,ij->j", [None, None])  # a repeated index (a trace) is not a plain GEMM
    plan = plan_einsum("bhid,bhjd->bhij", (2, 3, 4, 5), (2, 3, 6, 5))
    assert plan.a_shape == (2, 3, 4, 5) and plan.b_shape == (2, 3, 5, 6) and plan.out_perm == (0, 1, 2, 3)
    plan = plan_einsum("...id,jd", (2, 3, 4, 5), (6, 5))
    assert plan.a_shape == (24, 5) and plan.b_shape == (5, 6)


def test_float_ops_are_costed_as_memory_bound_float_kernels():
    torch.manual_seed(0)
    with_norm = nn.Sequential(nn.Linear(32, 32), nn.LayerNorm(32), nn.Softmax(-1)).eval()
    without = nn.Sequential(nn.Linear(32, 32)).eval()
    x = torch.randn(4, 32)
    full, bare = extract_workload(with_norm, x), extract_workload(without, x)
    assert [op.op_type for op in full.float_ops] == ["layer_norm", "softmax"]
    model = cost_models.CostModel(full, "jetson-orin-nano", batch_size=8)
    records = model.float_op_costs()
    assert [r["charged_to"] for r in records] == ["0", "0"]
    assert records[0]["bytes"] == 8 * (32 + 32) * FLOAT_OP_BYTES
    with_cost = cost_models.estimate(full, None, "jetson-orin-nano", "w8a8", batch_size=8)
    bare_cost = cost_models.estimate(bare, None, "jetson-orin-nano", "w8a8", batch_size=8)
    extra = sum(r["latency_s"] for r in records)
    assert with_cost.latency_s == pytest.approx(bare_cost.latency_s + extra, rel=1e-9)
    assert with_cost.energy_j == pytest.approx(bare_cost.energy_j + sum(r["energy_j"] for r in records), rel=1e-9)
    assert with_cost.layers["latency_s"].sum() == pytest.approx(with_cost.latency_s, rel=1e-9)
    assert "2 float ops (layer_norm, softmax)" in with_cost.summary()


def test_float_op_cost_does_not_depend_on_the_policy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 32), nn.LayerNorm(32), nn.Linear(32, 4)).eval()
    workload = extract_workload(model, torch.randn(2, 32))
    bare = cost_models.Workload(workload.layers)
    for policy in ("w8a8", "w4a4", "fp16"):
        delta = (cost_models.estimate(workload, None, "bitfusion", policy).latency_s
                 - cost_models.estimate(bare, None, "bitfusion", policy).latency_s)
        assert delta == pytest.approx(cost_models.CostModel(workload, "bitfusion").float_op_costs()[0]["latency_s"])
