"""Each quantizable op kind gets a slot: Conv1d/2d/3d (grouped, depthwise), ConvTranspose1d/2d, Linear,
functional F.conv2d / F.linear, and matmul / bmm / mm / ``@`` (function and method forms)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwqnn
from cost_models.workload import extract_workload

POLICY_2BIT = hwqnn.Policy.uniform("w2a2")


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.plain = nn.Conv1d(4, 8, 3, padding=1)
        self.grouped = nn.Conv1d(8, 8, 3, padding=1, groups=2)
        self.depthwise = nn.Conv1d(8, 8, 5, padding=2, groups=8, bias=False)

    def forward(self, x):
        return self.depthwise(self.grouped(self.plain(x)))


class Conv2dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.plain = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.grouped = nn.Conv2d(8, 12, 3, padding=1, groups=4)
        self.depthwise = nn.Conv2d(12, 12, 3, padding=1, groups=12, bias=False)

    def forward(self, x):
        return self.depthwise(self.grouped(self.plain(x)))


class Conv3dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.plain = nn.Conv3d(2, 4, 3, padding=1)
        self.grouped = nn.Conv3d(4, 4, 3, padding=1, groups=2)
        self.depthwise = nn.Conv3d(4, 4, 3, padding=1, groups=4)

    def forward(self, x):
        return self.depthwise(self.grouped(self.plain(x)))


class ConvTransposeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.up1d = nn.ConvTranspose1d(4, 6, 4, stride=2, padding=1)
        self.up2d = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2)

    def forward(self, x):
        y = self.up1d(x)  # [B, 6, 2L]
        return self.up2d(y.unsqueeze(-1).expand(-1, -1, -1, 3).contiguous())


class LinearNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 16)
        self.fc2 = nn.Linear(16, 4, bias=False)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class FunctionalNet(nn.Module):
    """F.conv2d / F.linear on own parameters, with positional and keyword arguments."""

    def __init__(self):
        super().__init__()
        self.conv_weight = nn.Parameter(torch.randn(6, 3, 3, 3) * 0.2)
        self.grouped_weight = nn.Parameter(torch.randn(6, 2, 3, 3) * 0.2)
        self.fc_weight = nn.Parameter(torch.randn(5, 6) * 0.2)
        self.fc_bias = nn.Parameter(torch.zeros(5))

    def forward(self, x):
        x = F.conv2d(x, self.conv_weight, None, 2, 1)
        x = F.conv2d(x, weight=self.grouped_weight, padding=1, groups=3)
        return F.linear(x.mean(dim=(2, 3)), self.fc_weight, bias=self.fc_bias)


class MatmulNet(nn.Module):
    """Every spelling of a matrix product between activations, and one against a parameter."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Parameter(torch.randn(8, 8) * 0.3)

    def forward(self, x):  # x: [B, 4, 8]
        a = torch.matmul(x, x.transpose(1, 2))  # [B, 4, 4]
        b = torch.bmm(a, x)  # [B, 4, 8]
        c = b @ self.proj  # operator, parameter operand
        d = c.matmul(x.transpose(1, 2))  # method
        e = d.bmm(x)  # method bmm
        f = torch.mm(e[:, 0], self.proj)  # 2-D mm: [B, 8]
        return f + x.mean(1).mm(self.proj)  # method mm


CASES = {
    "conv1d": (Conv1dNet, (2, 4, 16), {"plain": "conv1d", "grouped": "conv1d", "depthwise": "conv1d"}),
    "conv2d": (Conv2dNet, (2, 3, 12, 12), {"plain": "conv2d", "grouped": "conv2d", "depthwise": "conv2d"}),
    "conv3d": (Conv3dNet, (2, 2, 4, 6, 6), {"plain": "conv3d", "grouped": "conv3d", "depthwise": "conv3d"}),
    "conv_transpose": (ConvTransposeNet, (2, 4, 7), {"up1d": "conv_transpose1d", "up2d": "conv_transpose2d"}),
    "linear": (LinearNet, (3, 10), {"fc1": "linear", "fc2": "linear"}),
    "functional": (FunctionalNet, (2, 3, 10, 10), {"conv2d": "conv2d", "conv2d_1": "conv2d", "linear": "linear"}),
    "matmul": (MatmulNet, (2, 4, 8), {"matmul": "matmul", "matmul_1": "matmul", "matmul_2": "matmul",
                                      "matmul_3": "matmul", "matmul_4": "matmul", "matmul_5": "matmul",
                                      "matmul_6": "matmul"}),
}


def _build(case: str):
    torch.manual_seed(0)
    cls, shape, expected = CASES[case]
    return cls().eval(), torch.randn(*shape), expected


@pytest.mark.parametrize("case", list(CASES))
def test_every_op_gets_slots_named_like_the_workload(case):
    model, example, expected = _build(case)
    qmodel = hwqnn.convert(model, example)
    assert {op.layer_name: op.op_type for op in qmodel.quant_ops()} == expected
    assert qmodel.float_ops == []
    workload = extract_workload(model, example)
    assert qmodel.workload.layers == workload.layers


@pytest.mark.parametrize("case", list(CASES))
def test_bypass_is_exact_and_every_slot_changes_the_output(case):
    model, example, _ = _build(case)
    qmodel = hwqnn.convert(model, example).eval()
    with torch.no_grad():
        reference = model(example)
        torch.testing.assert_close(qmodel(example), reference, atol=1e-6, rtol=0)
        qmodel.set_policy(POLICY_2BIT)
        assert not torch.allclose(qmodel(example), reference, atol=1e-4)
        # Each slot alone is live: quantizing only that one tensor moves the output.
        for name, role, slot in qmodel.slots():
            qmodel.set_float()
            slot.set_fixed("uniform", 2)
            assert not torch.allclose(qmodel(example), reference, atol=1e-6), f"{name} {role} slot has no effect"


def test_grouped_and_depthwise_conv_rows_carry_groups_and_per_channel_weight_slots():
    model, example, _ = _build("conv2d")
    qmodel = hwqnn.convert(model, example)
    rows = {row.name: row for row in qmodel.workload}
    assert rows["grouped"].groups == 4 and rows["depthwise"].groups == 12
    assert rows["plain"].stride == (2, 2)
    # depthwise 3x3 on 12 channels of 6x6: one MAC per weight tap per output pixel
    assert rows["depthwise"].macs == 12 * 6 * 6 * 9
    assert qmodel.layer("depthwise").weight_slot.channels == 12


def test_transposed_conv_weight_slot_is_per_output_channel_on_axis_1():
    model, example, _ = _build("conv_transpose")
    qmodel = hwqnn.convert(model, example)
    up1d = qmodel.layer("up1d").weight_slot
    assert up1d.channels == 6 and up1d.candidate_axis == 1


def test_functional_ops_record_stride_and_groups_and_parameter_weights():
    model, example, _ = _build("functional")
    qmodel = hwqnn.convert(model, example)
    rows = {row.name: row for row in qmodel.workload}
    assert rows["conv2d"].stride == (2, 2)
    assert rows["conv2d_1"].groups == 3
    assert all(row.weight_is_param for row in rows.values())
    assert qmodel.layer("conv2d").weight_slot.role == "weight"
    assert qmodel.layer("conv2d").weight_slot.channels == 6


def test_matmul_operands_are_parameters_or_activations():
    model, example, _ = _build("matmul")
    qmodel = hwqnn.convert(model, example)
    is_param = {row.name: row.weight_is_param for row in qmodel.workload}
    assert is_param == {"matmul": False, "matmul_1": False, "matmul_2": True, "matmul_3": False,
                        "matmul_4": False, "matmul_5": True, "matmul_6": True}
    assert qmodel.layer("matmul_2").weight_slot.role == "weight"
    assert qmodel.layer("matmul").weight_slot.role == "activation"


def test_shared_module_called_twice_is_one_layer_with_summed_macs():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)

        def forward(self, x):
            return self.fc(torch.relu(self.fc(x)))

    torch.manual_seed(0)
    model, example = Shared().eval(), torch.randn(2, 6)
    qmodel = hwqnn.convert(model, example)
    assert qmodel.layer_names == ["fc"]
    row = qmodel.workload.layers[0]
    assert row.calls == 2 and row.macs == 2 * 36
    assert qmodel.workload.layers == extract_workload(model, example).layers


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.extra = nn.Parameter(torch.randn(4, 4))

    def forward(self, x):
        if x.sum() > 0:  # data-dependent: the root itself cannot be traced
            x = -x
        return F.linear(self.fc(x), self.extra)


def test_functional_op_in_an_untraceable_root_runs_through_a_quant_op():
    torch.manual_seed(0)
    model, example = Untraceable().eval(), torch.randn(2, 4)
    with pytest.warns(UserWarning) as caught:
        qmodel = hwqnn.convert(model, example)
    messages = " ".join(str(w.message) for w in caught)
    assert "Untraceable" in messages and "cannot be traced" in messages and "stay float" not in messages
    assert qmodel.layer_names == ["fc", "linear"] and qmodel.float_ops == []
    assert qmodel.layer("linear").weight_is_param
    assert qmodel.workload.layers == extract_workload(model, example).layers
    with torch.no_grad():
        for x in (example, -example):  # both branches of the data-dependent `if`
            torch.testing.assert_close(qmodel.eval()(x), model(x), atol=1e-6, rtol=0)
        qmodel.set_float()
        qmodel.layer("linear").weight_slot.set_fixed("uniform", 2)
        assert not torch.allclose(qmodel(example), model(example), atol=1e-4)


def test_untraceable_root_state_dict_and_deepcopy_keep_the_region_ops():
    torch.manual_seed(0)
    model, example = Untraceable().eval(), torch.randn(2, 4)
    with pytest.warns(UserWarning, match="cannot be traced"):
        qmodel = hwqnn.apply_policy(model, "w4a4", example)
    twin = copy.deepcopy(qmodel)
    assert twin.layer_names == qmodel.layer_names
    twin.load_state_dict(qmodel.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(twin.eval()(example), qmodel.eval()(example), atol=0, rtol=0)


@pytest.mark.filterwarnings("ignore:QAG. submodule")
def test_layer_the_example_never_runs_is_reported_not_silently_float():
    class Choose(nn.Module):  # untraceable: becomes a leaf, converted by module swap
        def __init__(self):
            super().__init__()
            self.positive = nn.Conv2d(2, 2, 3, padding=1)
            self.negative = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            return self.positive(x) if x.mean() > 0 else self.negative(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.choose = Choose()
            self.head = nn.Linear(2, 3)

        def forward(self, x):
            return self.head(self.choose(x).mean(dim=(2, 3)))

    example = torch.randn(2, 2, 6, 6).abs() + 0.1  # mean > 0: only `positive` runs
    with pytest.warns(UserWarning, match=r"conv2d in 'choose\.negative' \(not run by the example input\)"):
        qmodel = hwqnn.convert(Net().eval(), example)
    assert qmodel.layer_names == ["choose.positive", "head"]
    assert qmodel.float_ops == ["conv2d in 'choose.negative' (not run by the example input)"]


def test_model_in_train_mode_is_traced_with_its_inference_path():
    class DropoutHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):  # functional dropout: fx would bake `training=True` into the graph
            return self.fc(F.dropout(x, 0.5, training=self.training))

    torch.manual_seed(0)
    model, example = DropoutHead().train(), torch.randn(4, 8)
    qmodel = hwqnn.convert(model, example)
    assert model.training and qmodel.training
    with torch.no_grad():
        first, second = qmodel.eval()(example), qmodel(example)
        torch.testing.assert_close(first, second, atol=0, rtol=0)
        torch.testing.assert_close(first, model.eval()(example), atol=1e-6, rtol=0)


def test_fused_ops_get_slots_on_every_gemm():
    """nn.MultiheadAttention, RNNs and einsum do their MACs in fused calls: QAG slots each of their GEMMs."""

    class Fused(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = nn.MultiheadAttention(16, 4, batch_first=True)
            self.rnn = nn.GRU(16, 16, batch_first=True)
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            x = self.rnn(self.attention(x, x, x)[0])[0]
            return self.head(x + torch.einsum("bij,bkj->bik", x, x) @ x)

    torch.manual_seed(0)
    model, example = Fused().eval(), torch.randn(2, 5, 16)
    qmodel = hwqnn.convert(model, example)
    assert qmodel.float_ops == []
    attention = [f"attention.{op}" for op in ("q_proj", "k_proj", "v_proj", "qk", "av", "out_proj")]
    assert qmodel.layer_names == [*attention, "rnn.ih_l0", "rnn.hh_l0", "matmul", "matmul_1", "head"]
    assert qmodel.workload.layers == extract_workload(model, example).layers


class Keywords(nn.Module):
    """Functional calls with every operand passed by keyword."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 4))

    def forward(self, x):
        y = F.linear(input=x, weight=self.weight)
        return torch.matmul(input=y, other=x.t())


def test_functional_calls_with_every_operand_by_keyword():
    torch.manual_seed(0)
    model, example = Keywords().eval(), torch.randn(3, 4)
    qmodel = hwqnn.convert(model, example)
    assert {op.layer_name: op.op_type for op in qmodel.quant_ops()} == {"linear": "linear", "matmul": "matmul"}
    assert [row.weight_is_param for row in qmodel.workload] == [True, False]
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(example), model(example), atol=1e-6, rtol=0)


def test_keyword_calls_give_the_same_rows_as_extract_workload():
    torch.manual_seed(0)
    model, example = Keywords().eval(), torch.randn(3, 4)
    assert hwqnn.convert(model, example).workload.layers == extract_workload(model, example).layers


def test_buffer_operand_is_not_a_weight_in_qag_or_the_workload():
    class Basis(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("basis", torch.randn(4, 4))
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) @ self.basis

    torch.manual_seed(0)
    model, example = Basis().eval(), torch.randn(2, 4)
    qmodel = hwqnn.convert(model, example)
    assert qmodel.workload.layers == extract_workload(model, example).layers
    assert [row.weight_is_param for row in qmodel.workload] == [True, False]


def test_tuple_example_for_a_model_with_two_inputs():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.query = nn.Linear(4, 4)

        def forward(self, x, keys):
            return self.query(x) @ keys.transpose(-1, -2)

    torch.manual_seed(0)
    model, example = TwoInputs().eval(), (torch.randn(2, 3, 4), torch.randn(2, 5, 4))
    qmodel = hwqnn.convert(model, example)
    assert qmodel.layer_names == ["query", "matmul"]
    assert qmodel.workload.layers == extract_workload(model, example).layers
    assert qmodel.example_batch_size == 2
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(*example), model(*example), atol=1e-6, rtol=0)
