"""TensorRT's explicit-quantization rules, checked on an ONNX graph.

TensorRT builds int8 engines from QuantizeLinear/DequantizeLinear pairs when (TensorRT developer
guide, "Explicit quantization"): the element type is int8, the zero point is 0 (symmetric), activation
scales are per tensor, weight scales are per tensor or per output channel, and the opset is at least 13
(per-axis Q/DQ). The output-channel axis of a weight depends on its consumer: Conv weights (K, C, R, S)
use axis 0; ConvTranspose weights (C, K, R, S) use axis 1 (ungrouped only); a Gemm's B uses axis 0 when
``transB=1`` and 1 otherwise; a MatMul's B uses its last axis.

4-bit and 16-bit Q/DQ are reported as not native: TensorRT's INT4 path is weight-only and
block-quantized for GEMMs, not the per-channel Q/DQ convolutions this exporter writes.
"""

from __future__ import annotations

import numpy as np

from ._onnx import import_onnx

TENSORRT_MIN_OPSET = 13
OPSET_KEY = "<opset>"


def default_opset(model) -> int:
    """The ``ai.onnx`` opset version a model imports."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _attribute(node, name: str, default):
    onnx = import_onnx()
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def _expected_weight_axis(consumer, rank: int) -> tuple[int | None, str]:
    """The output-channel axis TensorRT expects for a per-channel weight feeding ``consumer``."""
    op = consumer.op_type
    if op == "Conv":
        return 0, ""
    if op == "ConvTranspose":
        if _attribute(consumer, "group", 1) != 1:
            return None, "per-channel weights of a grouped ConvTranspose are not supported"
        return 1, ""
    if op == "Gemm":
        return (0 if _attribute(consumer, "transB", 0) else 1), ""
    if op == "MatMul":
        return rank - 1, ""
    return None, f"TensorRT takes per-channel quantized weights only for Conv, ConvTranspose, Gemm, MatMul; got {op}"


def check_tensorrt_rules(model) -> dict[str, list[str]]:
    """Per Q/DQ node name, the TensorRT rules it breaks (an empty list: deployable as int8).

    An opset below 13 is reported under the key ``"<opset>"``.
    """
    onnx = import_onnx()
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    result: dict[str, list[str]] = {}
    opset = default_opset(model)
    if opset < TENSORRT_MIN_OPSET:
        result[OPSET_KEY] = [f"opset {opset} < {TENSORRT_MIN_OPSET}: TensorRT needs opset >= 13 for per-channel Q/DQ"]
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        problems: list[str] = []
        scale = initializers.get(node.input[1])
        zero_point = initializers.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        # The integer side: the zero point's type, or the DQ input's, or QuantizeLinear's default uint8.
        integer = zero_point or (initializers.get(node.input[0]) if node.op_type == "DequantizeLinear" else None)
        elem_type = integer.data_type if integer is not None else onnx.TensorProto.UINT8
        if elem_type != onnx.TensorProto.INT8:
            problems.append(f"element type {onnx.TensorProto.DataType.Name(elem_type)}; TensorRT Q/DQ needs INT8")
        if zero_point is not None and np.any(onnx.numpy_helper.to_array(zero_point).astype(np.int64) != 0):
            problems.append("zero point is not 0; TensorRT supports symmetric quantization only")
        if scale is None:
            problems.append("scale is not a constant initializer")
            result[node.name] = problems
            continue
        per_channel = int(np.prod(scale.dims)) > 1
        weight = initializers.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if weight is not None:
            rank = len(weight.dims)
            axis = _attribute(node, "axis", 1)
            users = consumers.get(node.output[0], [])
            if not users:
                problems.append("dequantized weight has no consumer")
            for user in users:
                if list(user.input).index(node.output[0]) != 1:
                    problems.append(f"dequantized weight is not the weight input of {user.op_type} '{user.name}'")
                    continue
                expected, why = _expected_weight_axis(user, rank)
                if per_channel and expected is None:
                    problems.append(why)
                elif per_channel and axis % rank != expected:
                    problems.append(f"per-channel axis {axis}; {user.op_type} needs its output-channel axis {expected}")
        else:
            if per_channel:
                problems.append("activation scale is per channel; TensorRT needs per-tensor activation scales")
            if node.op_type == "QuantizeLinear":
                users = consumers.get(node.output[0], [])
                if not users or any(u.op_type != "DequantizeLinear" for u in users):
                    problems.append("QuantizeLinear is not followed only by DequantizeLinear")
        result[node.name] = problems
    return result
