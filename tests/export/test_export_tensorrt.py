"""TensorRT's explicit-quantization rules: the checker catches each violation, and every Q/DQ pair the
export reports as TensorRT-native obeys them (int8, zero point 0, weight scales on the output-channel
axis, per-tensor activation scales, opset >= 13)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from export_helpers import export_zoo, scheme_policy
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from hwqnn.export import check_tensorrt_rules, export_onnx
from hwqnn.policy import LayerPolicy, Policy
from hwqnn.qag import apply_policy


def _conv_graph(*, weight_type=TensorProto.INT8, zero_point=0, axis=0, activation_channels=1, opset=17,
                op="Conv", trans_b=1):
    """x -> Q/DQ -> op(., DQ(weight)) with the given quantization parameters."""
    weight_shape = [4, 3, 3, 3] if op == "Conv" else [4, 3]
    inits = [
        helper.make_tensor("w_q", weight_type, weight_shape, np.ones(int(np.prod(weight_shape)), np.int64).tolist()),
        numpy_helper.from_array(np.full(4, 0.1, np.float32), "w_scale"),
        helper.make_tensor("w_zero", weight_type, [4], [zero_point] * 4),
        numpy_helper.from_array(np.full(activation_channels, 0.05, np.float32).reshape(
            () if activation_channels == 1 else (activation_channels,)), "a_scale"),
        helper.make_tensor("a_zero", TensorProto.INT8, [] if activation_channels == 1 else [activation_channels],
                           [0] * activation_channels),
    ]
    activation_axis = {"axis": 1} if activation_channels > 1 else {}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "a_scale", "a_zero"], ["x_q"], name="act/Q", **activation_axis),
        helper.make_node("DequantizeLinear", ["x_q", "a_scale", "a_zero"], ["x_dq"], name="act/DQ", **activation_axis),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], name="weight/DQ", axis=axis),
    ]
    if op == "Conv":
        nodes.append(helper.make_node("Conv", ["x_dq", "w"], ["y"], name="conv"))
        shape_in, shape_out = [1, 3, 8, 8], [1, 4, 6, 6]
    else:
        nodes.append(helper.make_node("Gemm", ["x_dq", "w"], ["y"], name="gemm", transB=trans_b))
        shape_in, shape_out = [1, 3], [1, 4]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape_in)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape_out)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_a_compliant_graph_has_no_violation():
    assert not any(check_tensorrt_rules(_conv_graph()).values())


@pytest.mark.parametrize(("kwargs", "node", "words"), [
    ({"zero_point": 3}, "weight/DQ", "zero point is not 0"),
    ({"weight_type": TensorProto.UINT8}, "weight/DQ", "needs INT8"),
    ({"weight_type": TensorProto.INT4}, "weight/DQ", "needs INT8"),
    ({"axis": 1}, "weight/DQ", "output-channel axis 0"),
    ({"activation_channels": 3}, "act/Q", "per-tensor activation"),
    ({"op": "Gemm", "trans_b": 0, "axis": 0}, "weight/DQ", "output-channel axis 1"),
    ({"opset": 12}, "<opset>", "opset 12"),
])
def test_each_violation_is_reported(kwargs, node, words):
    model = _conv_graph(**kwargs)
    problems = check_tensorrt_rules(model).get(node, [])
    assert any(words in p for p in problems), problems


def test_gemm_with_transposed_weights_uses_axis_0():
    assert not any(check_tensorrt_rules(_conv_graph(op="Gemm", trans_b=1, axis=0)).values())


def _assert_native_records_obey_rules(report) -> None:
    model = onnx.load(report.path)
    violations = check_tensorrt_rules(model)
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}
    native = [t for t in report.tensors if t.tensorrt_native]
    for record in native:
        assert record.onnx_nodes, record
        qdq = [nodes[name] for name in record.onnx_nodes if nodes[name].op_type in ("QuantizeLinear", "DequantizeLinear")]
        assert qdq, record
        for node in qdq:
            name = node.name
            assert violations[name] == [], (name, violations[name])
            assert initializers[node.input[2]].dtype == np.int8
            assert not initializers[node.input[2]].any(), f"{name}: zero point must be 0"
        if record.kind == "constant" and record.axis is not None:
            assert len(record.scale) > 1
    assert all(o.version >= 13 for o in model.opset_import if o.domain in ("", "ai.onnx"))


@pytest.mark.parametrize("scheme", ["uniform", "clip", "ul2q", "binary", "ternary"])
def test_symmetric_int8_exports_are_tensorrt_native_on_every_layer(scheme, tmp_path):
    _, report, _ = export_zoo("tiny_cnn", scheme_policy(scheme), tmp_path)
    assert all(row["tensorrt_native"] for row in report.layers()), report.summary()
    assert not report.tensorrt_violations
    _assert_native_records_obey_rules(report)


@pytest.mark.parametrize(("scheme", "bits", "words"), [
    ("zoom", 4, "zero point is not 0"),  # asymmetric
    ("residual", 2, "TensorRT runs it in float"),  # sums of binary terms: no integer grid
    ("uniform", 8, "needs INT8"),  # post-ReLU 8-bit activations use the unsigned grid [0, 255]: uint8
    ("pot", 4, "TensorRT runs it in float"),  # unsigned 4-bit pot: levels 2^0..2^-14, codes beyond int8
])
def test_other_exports_say_which_tensors_are_not_native_and_why(scheme, bits, words, tmp_path):
    _, report, _ = export_zoo("tiny_cnn", scheme_policy(scheme, bits), tmp_path)
    _assert_native_records_obey_rules(report)
    not_native = [t for t in report.tensors if not t.tensorrt_native]
    assert not_native, f"{scheme}: expected some tensors TensorRT cannot run as int8"
    assert all(t.tensorrt_note for t in not_native)
    assert any(words in t.tensorrt_note for t in not_native), [t.tensorrt_note for t in not_native]


def test_vit_linear_weights_on_3d_inputs_keep_the_output_channel_axis(tmp_path):
    """F.linear on (B, T, C) exports as MatMul with a transposed weight: the transpose is folded into the
    integers, so the DQ feeds MatMul directly with its per-channel axis on the last (output) dimension."""
    _, report, _ = export_zoo("vit_tiny", scheme_policy("uniform"), tmp_path)
    model = onnx.load(report.path)
    consumers = {name: n for n in model.graph.node for name in n.input}
    checked = 0
    for record in report.tensors:
        if record.kind == "constant":
            dq = next(n for n in model.graph.node if n.name in record.onnx_nodes)
            user = consumers[dq.output[0]]
            assert user.op_type in ("Conv", "Gemm", "MatMul"), user.op_type
            if user.op_type == "MatMul":
                axis = next(a.i for a in dq.attribute if a.name == "axis")
                assert axis == 1
                checked += 1
    assert checked > 0
    _assert_native_records_obey_rules(report)


class _Upsampler(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 6, 2, stride=2)

    def forward(self, x):
        return self.up(torch.relu(self.conv(x))).mean(dim=(2, 3))


def test_conv_transpose_weights_use_axis_1(tmp_path):
    """ConvTranspose weights are (C_in, C_out, k, k): the per-channel scale is on axis 1 (output channels),
    which TensorRT accepts for ungrouped deconvolutions."""
    torch.manual_seed(0)
    calibration = torch.randn(16, 1, 8, 8)
    model = apply_policy(_Upsampler().eval(), Policy({"default": LayerPolicy("uniform", 8, "uniform", 4)}),
                         calibration[:2])
    model.calibrate([calibration])
    report = export_onnx(model.eval(), calibration, tmp_path / "up.onnx")
    up = next(t for t in report.tensors if t.layer == "up" and t.role == "weight")
    assert up.axis == 1 and len(up.scale) == 6
    assert report.max_abs_diff < 1e-5
    _assert_native_records_obey_rules(report)
    assert all(row["tensorrt_native"] for row in report.layers())
