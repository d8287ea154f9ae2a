"""Conversion rules: embeddings get weight-only slots; the user's hooks survive; ``strict`` refuses float
GEMMs; ``set_policy`` fixes slots while ``apply`` stays nn.Module's; float ops are workload entries."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwqnn
from cost_models.workload import extract_workload
from hwqnn.errors import ConversionError
from hwqnn.qag import QuantEmbeddingOp


class Tagger(nn.Module):
    """Token ids -> embedding -> linear."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8, padding_idx=0)
        self.head = nn.Linear(8, 3)

    def forward(self, ids):
        return self.head(self.embed(ids))


def test_embedding_gets_a_weight_only_slot():
    torch.manual_seed(0)
    model, ids = Tagger().eval(), torch.randint(0, 20, (2, 6))
    qmodel = hwqnn.convert(model, ids)
    assert qmodel.layer_names == ["embed", "head"] and qmodel.float_ops == []
    assert isinstance(qmodel.layer("embed"), QuantEmbeddingOp)
    assert [(name, role) for name, role, _ in qmodel.slots()] == [("embed", "weight"), ("head", "weight"),
                                                                  ("head", "activation")]
    assert qmodel.layer("embed").weight_slot.channels == 20  # one scale per table row
    assert qmodel.net.embed.padding_idx == 0  # the float layer's attributes stay readable
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(ids), model(ids), atol=0, rtol=0)
        qmodel.set_policy(hwqnn.Policy.uniform("w2a8"))
        assert not torch.allclose(qmodel(ids), model(ids), atol=1e-4)
    embed = qmodel.layer("embed")
    assert embed.act_slot.mode == "float" and embed.weight_slot.mode == "fixed"
    assert qmodel.current_policy().layers["embed"].a_scheme == "float"
    row = qmodel.workload.layers[0]
    assert (row.op_type, row.macs, row.weight_elems) == ("embedding", 0, 160)
    assert qmodel.workload.layers == extract_workload(model, ids).layers


def test_embedding_slot_stays_float_in_search_and_is_costed_as_float():
    torch.manual_seed(0)
    qmodel = hwqnn.convert(Tagger().eval(), torch.randint(0, 20, (2, 6))).set_search()
    slot = qmodel.layer("embed").act_slot
    assert slot.mode == "float"
    _, kinds, bits = slot.cost_candidates()
    assert set(kinds.tolist()) == {hwqnn.quantizers.COMPUTE_KINDS.index("float")} and set(bits.tolist()) == {32.0}


class Hooked(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.block(x))


def test_user_forward_hooks_keep_firing_after_convert():
    torch.manual_seed(0)
    model, example = Hooked().eval(), torch.randn(3, 4)
    seen: list[str] = []
    model.register_forward_pre_hook(lambda m, a: seen.append("root pre"))
    model.block.register_forward_hook(lambda m, a, o: seen.append("block post"))
    model.fc.register_forward_pre_hook(lambda m, a: seen.append("fc pre"))
    model.fc.register_forward_hook(lambda m, a, o: o * 2)  # a hook that changes the output
    reference = model(example)
    expected = list(seen)
    seen.clear()
    qmodel = hwqnn.convert(model, example)
    assert qmodel.layer_names == ["block.0", "fc"] and qmodel.float_ops == []
    seen.clear()
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(example), reference, atol=1e-6, rtol=0)
    assert seen == expected == ["root pre", "block post", "fc pre"]
    assert len(model.fc._forward_pre_hooks) == 1 and len(model.fc._forward_hooks) == 1  # the float model's too


def test_module_apply_is_torchs_and_set_policy_fixes_the_slots():
    torch.manual_seed(0)
    qmodel = hwqnn.convert(Hooked().eval(), torch.randn(3, 4))
    visited = []
    assert qmodel.apply(visited.append) is qmodel  # nn.Module.apply(fn): every submodule, then the model
    assert visited[-1] is qmodel and len(visited) == len(list(qmodel.modules()))
    qmodel.apply(lambda m: nn.init.zeros_(m.bias) if isinstance(m, nn.Linear) else None)  # an init function
    assert all(float(m.bias.detach().abs().sum()) == 0 for m in qmodel.modules() if isinstance(m, nn.Linear))
    assert qmodel.set_policy(hwqnn.Policy.uniform("w4a8")) is qmodel
    assert {slot.mode for _, _, slot in qmodel.slots()} == {"fixed"}
    assert "apply" not in type(qmodel).__dict__


class FusedBilinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.weight = nn.Parameter(torch.randn(2, 8, 8))

    def forward(self, x):
        return F.bilinear(self.fc(x), x, self.weight)


def test_strict_refuses_what_would_stay_float_and_default_warns():
    torch.manual_seed(0)
    model, example = FusedBilinear().eval(), torch.randn(2, 8)
    with pytest.warns(UserWarning, match=r"stay float: bilinear in '<root>' \(QAG has no quantized form"):
        qmodel = hwqnn.convert(model, example)
    assert qmodel.layer_names == ["fc"]
    with pytest.raises(ConversionError, match=r"strict conversion of FusedBilinear: 1 GEMM op\(s\) would stay "
                                              r"float: bilinear in '<root>'"):
        hwqnn.convert(model, example, strict=True)


def test_softmax_norms_and_residual_adds_are_float_ops_of_the_workload():
    torch.manual_seed(0)
    model = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).eval()
    example = torch.randn(2, 5, 8)
    workload = hwqnn.convert(model, example).workload
    assert [(op.name, op.op_type, op.pricing) for op in workload.float_ops] == [
        ("self_attn.softmax", "softmax", "kernel"), ("add", "add", "kernel"),
        ("norm1.layer_norm", "layer_norm", "kernel"), ("relu", "relu", "fused"),  # ReLU after linear1: fused
        ("add_1", "add", "kernel"), ("norm2.layer_norm", "layer_norm", "kernel")]
    softmax = workload.float_ops[0]
    assert softmax.in_elems == softmax.out_elems == 2 * 5 * 5  # heads x queries x keys, per sample
    assert softmax.after_layer == "self_attn.qk"
    assert workload.float_ops == extract_workload(model, example).float_ops


def test_a_hooked_module_keeps_its_hooks_and_its_functional_gemms_get_slots():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 4))

        def forward(self, x):
            return torch.sigmoid(F.linear(x, self.weight)) * x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate = Gate()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.gate(x))

    torch.manual_seed(0)
    model, example = Net().eval(), torch.randn(3, 4)
    calls = []
    model.gate.register_forward_hook(lambda m, a, o: calls.append(tuple(o.shape)))
    qmodel = hwqnn.convert(model, example)
    assert qmodel.layer_names == ["gate.linear", "fc"] and qmodel.float_ops == []
    calls.clear()
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(example), model(example), atol=1e-6, rtol=0)
    assert calls == [(3, 4), (3, 4)]  # the hook fired in the converted model (and in the float one)
    assert qmodel.workload.layers == extract_workload(model, example).layers
