"""Attention gets a slot on every GEMM: nn.MultiheadAttention (every option), the encoder layers' fused
fast path, F.scaled_dot_product_attention, einsum, addmm/baddbmm. In float bypass each converted model
computes what the eager model computes, and QAG's rows are ``extract_workload``'s."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwqnn
from cost_models.workload import extract_workload
from hwqnn.errors import ConversionError

W2A2 = hwqnn.Policy.uniform("w2a2")
MHA_OPS = ("q_proj", "k_proj", "v_proj", "qk", "av", "out_proj")


class Attend(nn.Module):
    """Calls an nn.MultiheadAttention with fixed keyword arguments; returns its output and weights."""

    def __init__(self, attention: nn.MultiheadAttention, cross: bool = False, **call_kwargs):
        super().__init__()
        self.attention = attention
        self.cross = cross
        self.call_kwargs = call_kwargs

    def forward(self, x):
        memory = x.flip(-2) * 0.5 if self.cross else x
        out, weights = self.attention(x, memory, memory, **self.call_kwargs)
        return out if self.call_kwargs.get("need_weights") is False else (out, weights)


def _masks(batch: int, length: int) -> dict:
    causal = torch.ones(length, length, dtype=torch.bool).triu(1)
    padding = torch.zeros(batch, length, dtype=torch.bool)
    padding[0, -1] = True
    return {"causal": causal, "padding": padding, "float": torch.randn(length, length) * 0.1}


MHA_CASES = {
    "self-attention, batch first": ({"batch_first": True}, {}),
    "time first, no weights": ({}, {"need_weights": False}),
    "per-head weights": ({"batch_first": True}, {"average_attn_weights": False}),
    "bool causal mask and padding": ({"batch_first": True}, {"attn_mask": "causal", "key_padding_mask": "padding"}),
    "float mask": ({"batch_first": True}, {"attn_mask": "float"}),
    "is_causal hint": ({"batch_first": True}, {"attn_mask": "causal", "is_causal": True, "need_weights": False}),
    "kdim/vdim, no bias": ({"kdim": 12, "vdim": 6, "bias": False, "batch_first": True}, {}),
    "bias_k and zero attention": ({"add_bias_kv": True, "add_zero_attn": True, "batch_first": True},
                                  {"key_padding_mask": "padding"}),
}


def _mha_model(case: str):
    build, call = MHA_CASES[case]
    torch.manual_seed(0)
    batch, length = 2, 5
    masks = _masks(batch, length)
    call = {k: masks[v] if isinstance(v, str) else v for k, v in call.items()}
    attention = nn.MultiheadAttention(16, 4, **build)
    if "kdim" in build:  # key and value have their own sizes: feed them through projections
        class Cross(nn.Module):
            def __init__(self):
                super().__init__()
                self.attention = attention
                self.to_k, self.to_v = nn.Linear(16, 12), nn.Linear(16, 6)

            def forward(self, x):
                return self.attention(x, self.to_k(x), self.to_v(x), **call)

        return Cross().eval(), torch.randn(batch, length, 16)
    shape = (batch, length, 16) if build.get("batch_first") else (length, batch, 16)
    return Attend(attention, **call).eval(), torch.randn(*shape)


@pytest.mark.parametrize("case", list(MHA_CASES))
def test_multihead_attention_matches_eager_and_slots_every_gemm(case):
    model, example = _mha_model(case)
    qmodel = hwqnn.convert(model, example)
    assert qmodel.float_ops == []
    names = [n for n in qmodel.layer_names if n.startswith("attention.")]
    assert names == [f"attention.{op}" for op in MHA_OPS]
    with torch.no_grad():
        got, want = qmodel.eval()(example), model(example)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert qmodel.workload.layers == extract_workload(model, example).layers
    roles = {op.layer_name.rpartition(".")[2]: op.weight_slot.role for op in qmodel.quant_ops()}
    assert roles["q_proj"] == roles["out_proj"] == "weight"
    assert roles["qk"] == roles["av"] == "activation"  # both operands of q k^T and attn v are activations


def test_unbatched_and_cross_attention_match_eager():
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(8, 2)
    for model, example in ((Attend(attention).eval(), torch.randn(5, 8)),
                           (Attend(attention, cross=True).eval(), torch.randn(5, 3, 8))):
        qmodel = hwqnn.convert(model, example)
        with torch.no_grad():
            torch.testing.assert_close(qmodel.eval()(example), model(example), atol=1e-5, rtol=1e-5)


def test_attention_macs_are_exact():
    """L=5 queries, S=5 keys, N=2, E=16, H=4 (D=4): per sample, projections L*E*E, q k^T and attn v H*L*S*D."""
    model, example = _mha_model("self-attention, batch first")
    rows = {row.name: row for row in hwqnn.convert(model, example).workload}
    assert rows["attention.q_proj"].macs == 5 * 16 * 16
    assert rows["attention.qk"].macs == rows["attention.av"].macs == 4 * 5 * 5 * 4
    assert rows["attention.qk"].in_shape == (2, 4, 5, 4) and rows["attention.qk"].weight_shape == (2, 4, 4, 5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_fast_path_never_bypasses_the_slots(norm_first):
    """In eval mode under no_grad, nn.TransformerEncoderLayer would run one fused kernel on the raw weights."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=norm_first)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    example = torch.randn(2, 6, 16)
    qmodel = hwqnn.convert(model, example)
    per_layer = [*(f"self_attn.{op}" for op in MHA_OPS), "linear1", "linear2"]
    assert qmodel.layer_names == [f"layers.{i}.{op}" for i in range(2) for op in per_layer]
    assert qmodel.float_ops == [] and qmodel.fallback_modules == []
    with torch.no_grad():
        reference = model(example)
        torch.testing.assert_close(qmodel.eval()(example), reference, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(qmodel.set_policy(W2A2)(example), reference, atol=1e-3)
    assert qmodel.workload.layers == extract_workload(model, example).layers


def test_decoder_and_full_transformer_convert_without_float_gemms():
    torch.manual_seed(0)
    model = nn.Transformer(16, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=24, dropout=0.0,
                           batch_first=True).eval()
    src, tgt = torch.randn(2, 5, 16), torch.randn(2, 4, 16)
    qmodel = hwqnn.convert(model, (src, tgt))
    assert qmodel.float_ops == []
    assert len(qmodel.layer_names) == 8 + 14  # encoder: attention + FFN; decoder: two attentions + FFN
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(src, tgt), model(src, tgt), atol=1e-5, rtol=1e-5)


class Sdpa(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.qkv = nn.Linear(16, 48)
        self.kwargs = kwargs

    def forward(self, x):
        q, k, v = self.qkv(x).unflatten(-1, (3, 4, 4)).permute(2, 0, 3, 1, 4)
        if self.kwargs.get("enable_gqa"):
            k, v = k[:, :2], v[:, :2]
        return F.scaled_dot_product_attention(q, k, v, **self.kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"is_causal": True}, {"scale": 0.3}, {"enable_gqa": True},
                                    {"attn_mask": "bool"}], ids=["plain", "causal", "scale", "gqa", "bool-mask"])
def test_scaled_dot_product_attention_becomes_two_slotted_matmuls(kwargs):
    torch.manual_seed(0)
    if kwargs.get("attn_mask") == "bool":
        kwargs = {"attn_mask": torch.ones(6, 6, dtype=torch.bool).tril()}
    model, example = Sdpa(**kwargs).eval(), torch.randn(2, 6, 16)
    qmodel = hwqnn.convert(model, example)
    assert qmodel.layer_names == ["qkv", "sdpa.qk", "sdpa.av"] and qmodel.float_ops == []
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(example), model(example), atol=1e-5, rtol=1e-5)
    assert qmodel.workload.layers == extract_workload(model, example).layers
    assert [op.op_type for op in qmodel.workload.float_ops] == ["softmax"]


class AddMatmuls(nn.Module):
    """GPT-2's Conv1D (addmm with a parameter) and baddbmm between activations, function and method forms."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 8) * 0.3)
        self.bias = nn.Parameter(torch.zeros(8))

    def forward(self, x):  # x: [B, 4, 8]
        y = torch.addmm(self.bias, x.reshape(-1, 8), self.weight).view(x.shape)
        scores = torch.baddbmm(torch.zeros(1, 4, 4), y, x.transpose(1, 2), alpha=0.5)
        return self.bias.addmm(scores[:, 0], self.weight[:4])  # method form; a slice is not a parameter


def test_addmm_and_baddbmm_get_slots_and_keep_their_numbers():
    torch.manual_seed(0)
    model, example = AddMatmuls().eval(), torch.randn(2, 4, 8)
    qmodel = hwqnn.convert(model, example)
    assert qmodel.layer_names == ["matmul", "matmul_1", "matmul_2"] and qmodel.float_ops == []
    assert [op.weight_is_param for op in qmodel.quant_ops()] == [True, False, False]
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(example), model(example), atol=1e-6, rtol=0)
        assert not torch.allclose(qmodel.set_policy(W2A2)(example), model(example), atol=1e-3)
    assert qmodel.workload.layers == extract_workload(model, example).layers


class Einsums(nn.Module):
    def __init__(self, equation: str, operands: int = 2):
        super().__init__()
        self.equation, self.operands = equation, operands
        self.weight = nn.Parameter(torch.randn(8, 8) * 0.3)

    def forward(self, x):  # x: [B, 4, 8]
        return torch.einsum(self.equation, *[x] * self.operands) + torch.einsum("bld,de->ble", x, self.weight).sum()


@pytest.mark.parametrize("equation", ["bid,bjd->bij", "bid,bid->bi", "bid,bjd", "bij,bkj->bik"])
def test_einsum_contractions_run_as_matmuls(equation):
    torch.manual_seed(0)
    model, example = Einsums(equation).eval(), torch.randn(2, 4, 8)
    qmodel = hwqnn.convert(model, example)
    assert qmodel.layer_names == ["matmul", "matmul_1"] and qmodel.float_ops == []
    assert [op.weight_is_param for op in qmodel.quant_ops()] == [False, True]
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(example), model(example), atol=1e-5, rtol=1e-6)
    assert qmodel.workload.layers == extract_workload(model, example).layers


def test_einsum_without_a_contraction_is_not_a_gemm_and_three_operands_are_listed():
    torch.manual_seed(0)
    elementwise = Einsums("bid,bid->bid")  # no summed index: not a GEMM, left alone and not listed
    qmodel = hwqnn.convert(elementwise.eval(), torch.randn(2, 4, 8))
    assert qmodel.layer_names == ["matmul"] and qmodel.float_ops == []
    three = Einsums("bid,bjd,bjd->bij", operands=3).eval()
    with pytest.warns(UserWarning, match="stay float"):
        qmodel = hwqnn.convert(three, torch.randn(2, 4, 8))
    assert qmodel.float_ops == ["einsum in '<root>' (einsum 'bid,bjd,bjd->bij' with 3 operands is not a "
                                "two-operand contraction QAG can run as one matmul)"]
    with pytest.raises(ConversionError, match=r"strict conversion of Einsums: 1 GEMM op\(s\) would stay float: "
                                              r"einsum in '<root>'"):
        hwqnn.convert(three, torch.randn(2, 4, 8), strict=True)
