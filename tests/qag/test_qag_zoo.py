"""Every zoo model converts, runs exactly like the float model in bypass, and gets a slot on every
conv/linear/matmul, with the same layer names and MACs as ``cost_models.extract_workload``."""

from __future__ import annotations

import pytest
import torch

import hwqnn
from cost_models.workload import extract_workload
from hwqnn.models import einsum_attention, list_models, recurrent, vit_mha  # noqa: F401  (registers them)


def _resnet20_layers() -> dict[str, str]:
    layers = {"stem.0": "conv2d"}
    for stage in (1, 2, 3):
        for block in range(3):
            layers[f"layer{stage}.{block}.conv1"] = "conv2d"
            layers[f"layer{stage}.{block}.conv2"] = "conv2d"
    layers["head"] = "linear"
    return layers


def _mobilenet_v2_tiny_layers() -> dict[str, str]:
    layers = {"features.0.0": "conv2d", "features.1.block.0.0": "conv2d", "features.1.block.1.0": "conv2d"}
    for stage in range(2, 9):  # expand 1x1, depthwise 3x3, project 1x1
        for conv in range(3):
            layers[f"features.{stage}.block.{conv}.0"] = "conv2d"
    layers["features.9.0"] = "conv2d"
    layers["head"] = "linear"
    return layers


def _vit_tiny_layers() -> dict[str, str]:
    layers = {"patch_embed": "conv2d"}
    for block in range(4):
        prefix = f"blocks.{block}"
        layers[f"{prefix}.attn.qkv"] = "linear"
        layers[f"{prefix}.attn.matmul"] = "matmul"  # q @ k^T
        layers[f"{prefix}.attn.matmul_1"] = "matmul"  # attn @ v
        layers[f"{prefix}.attn.proj"] = "linear"
        layers[f"{prefix}.mlp.0"] = "linear"
        layers[f"{prefix}.mlp.2"] = "linear"
    layers["head"] = "linear"
    return layers


def _vit_mha_tiny_layers() -> dict[str, str]:
    layers = {"patch_embed": "conv2d"}
    for block in range(2):
        prefix = f"encoder.layers.{block}"
        for op in ("q_proj", "k_proj", "v_proj"):
            layers[f"{prefix}.self_attn.{op}"] = "linear"
        layers[f"{prefix}.self_attn.qk"] = "matmul"
        layers[f"{prefix}.self_attn.av"] = "matmul"
        layers[f"{prefix}.self_attn.out_proj"] = "linear"
        layers[f"{prefix}.linear1"] = "linear"
        layers[f"{prefix}.linear2"] = "linear"
    layers["head"] = "linear"
    return layers


def _einsum_vit_tiny_layers() -> dict[str, str]:
    layers = {"patch_embed": "conv2d"}
    for block in range(2):
        prefix = f"blocks.{block}"
        layers[f"{prefix}.attn.qkv"] = "linear"
        layers[f"{prefix}.attn.matmul"] = "matmul"  # einsum q k -> scores
        layers[f"{prefix}.attn.matmul_1"] = "matmul"  # einsum attn v
        layers[f"{prefix}.attn.proj"] = "linear"
        layers[f"{prefix}.mlp.0"] = "linear"
        layers[f"{prefix}.mlp.2"] = "linear"
    layers["head"] = "linear"
    return layers


def _gru_tiny_layers() -> dict[str, str]:
    layers = {f"rnn.{kind}_l{layer}{suffix}": "recurrent" for layer in range(2) for suffix in ("", "_reverse")
              for kind in ("ih", "hh")}
    return {**layers, "head": "linear"}


#: The quantized layers each zoo model must get, in execution order: layer name -> op type.
EXPECTED_LAYERS: dict[str, dict[str, str]] = {
    "tiny_cnn": {"features.0.0": "conv2d", "features.1.0": "conv2d", "features.2.0": "conv2d", "head": "linear"},
    "branchy_cnn": {"stem.0": "conv2d", "gate.conv": "conv2d", "down.0": "conv2d", "head": "linear"},
    "functional_cnn": {"conv2d": "conv2d", "conv2d_1": "conv2d", "linear": "linear"},
    "resnet20": _resnet20_layers(),
    "mobilenet_v2_tiny": _mobilenet_v2_tiny_layers(),
    "vit_tiny": _vit_tiny_layers(),
    "vit_mha_tiny": _vit_mha_tiny_layers(),
    "einsum_vit_tiny": _einsum_vit_tiny_layers(),
    "gru_tiny": _gru_tiny_layers(),
    "lstm_tiny": {"rnn.ih_l0": "recurrent", "rnn.hh_l0": "recurrent", "head": "linear"},
}

ZOO = list_models()


def test_every_zoo_model_has_an_expected_layer_table():
    assert sorted(ZOO) == sorted(EXPECTED_LAYERS), "add the new model's quantized layers to EXPECTED_LAYERS"


@pytest.mark.parametrize("name", ZOO)
def test_float_bypass_equals_float_model(name, converted_zoo):
    conversion = converted_zoo(name)
    model, example, qmodel = conversion.model, conversion.example, conversion.qmodel
    assert all(slot.mode == "float" for _, _, slot in qmodel.slots())
    other_input = torch.randn_like(example)  # not the example the conversion saw
    qmodel.eval()
    with torch.no_grad():
        for x in (example, other_input):
            torch.testing.assert_close(qmodel(x), model(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_gets_the_expected_slots(name, converted_zoo):
    qmodel = converted_zoo(name).qmodel
    got = {op.layer_name: op.op_type for op in qmodel.quant_ops()}
    assert list(got.items()) == list(EXPECTED_LAYERS[name].items())
    assert qmodel.float_ops == []
    assert len(qmodel.slots()) == 2 * len(got)  # no weight-only (embedding) op in the zoo
    roles = [role for _, role, _ in qmodel.slots()]
    assert roles == ["weight", "activation"] * len(got)


@pytest.mark.parametrize("name", ZOO)
def test_qag_layers_are_the_workload_rows(name, converted_zoo):
    """QAG and the cost models share one layer list: same names, order, op types, MACs and sizes."""
    conversion = converted_zoo(name)
    qmodel = conversion.qmodel
    workload = extract_workload(conversion.model, conversion.example)
    assert qmodel.layer_names == workload.names
    assert qmodel.workload.names == workload.names
    for ours, theirs in zip(qmodel.workload.layers, workload.layers, strict=True):
        assert ours == theirs, f"layer {theirs.name}: QAG row differs from extract_workload's"
    assert all(row.macs > 0 for row in qmodel.workload)
    table = qmodel.layer_table()
    assert list(table["name"]) == workload.names
    assert table["macs"].tolist() == [row.macs for row in workload]


@pytest.mark.parametrize("name", ZOO)
def test_only_branchy_cnn_needs_a_leaf_fallback(name, converted_zoo):
    conversion = converted_zoo(name)
    if name == "branchy_cnn":
        assert conversion.qmodel.fallback_modules == ["gate"]
        assert len(conversion.qag_warnings) == 1
    else:
        assert conversion.qmodel.fallback_modules == []
        assert conversion.qag_warnings == ()


def test_vit_attention_matmuls_quantize_both_activation_operands(converted_zoo):
    qmodel = converted_zoo("vit_tiny").qmodel
    qk = qmodel.layer("blocks.0.attn.matmul")
    assert qk.weight_is_param is False
    assert qk.weight_slot.role == "activation"  # k^T is an activation, quantized like one
    row = qmodel.workload.layers[qmodel.layer_names.index("blocks.0.attn.matmul")]
    # q: [B, heads=4, tokens=64, head_dim=16] @ k^T: [B, 4, 16, 64] -> 4 * 64 * 64 * 16 MACs per sample
    assert row.macs == 4 * 64 * 64 * 16
    assert row.weight_is_param is False


def test_branchy_cnn_warns_naming_the_untraceable_block_and_quantizes_inside_it(zoo):
    model, example = zoo("branchy_cnn")
    with pytest.warns(UserWarning, match=r"'gate' \(GatedBlock\) cannot be traced"):
        qmodel = hwqnn.convert(model, example)
    assert qmodel.fallback_modules == ["gate"]
    gate_op = qmodel.layer("gate.conv")
    assert torch.equal(gate_op.weight, model.gate.conv.weight)
    # The conv inside the leaf really is quantized: fixing only its slots changes the output.
    policy = hwqnn.Policy({"gate.conv": hwqnn.LayerPolicy("uniform", 2, "uniform", 2),
                           "default": hwqnn.LayerPolicy("float", 32, "float", 32)})
    with torch.no_grad():
        before = qmodel.eval()(example)
        after = qmodel.set_policy(policy)(example)
    assert qmodel.layer("gate.conv").weight_slot.mode == "fixed"
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("name", ["vit_mha_tiny", "einsum_vit_tiny", "gru_tiny", "lstm_tiny"])
def test_every_slot_of_the_sequence_models_is_live(name, zoo, quiet_convert):
    """No GEMM of attention, einsum or recurrent layers bypasses its slots: fixing any one slot alone to
    2 bits moves the output."""
    model, example = zoo(name)
    qmodel = quiet_convert(model, example).eval()
    with torch.no_grad():
        reference = model(example)
        for layer, role, slot in qmodel.slots():
            qmodel.set_float()
            slot.set_fixed("uniform", 2)
            assert not torch.allclose(qmodel(example), reference, atol=1e-7), f"{name}: {layer} {role} has no effect"
