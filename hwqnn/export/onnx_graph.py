"""ONNX graph surgery: replace every marker Tag by the DequantizeLinear or Q/DQ pair planned for it.

Nodes are rebuilt in their original order, each Tag expanded in place, so the graph stays
topologically sorted. A weight DequantizeLinear whose only consumer is a 2-D ``Transpose`` (how the
exporter writes ``F.linear`` on 3-D inputs) absorbs it: the integers are stored transposed and the
per-channel axis moves with them, so TensorRT sees the plain DQ -> MatMul weight pattern.
"""

from __future__ import annotations

import numpy as np

from ..errors import ExportError
from ._onnx import import_onnx
from .lut import padded_tables
from .markers import MARKER_DOMAIN, MARKER_OP
from .planner import TensorPlan

_NUMPY_TYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16}


def integer_tensor(name: str, values: np.ndarray, container: str):
    onnx = import_onnx()
    values = np.asarray(values, dtype=np.int64)
    if container in _NUMPY_TYPES:
        return onnx.numpy_helper.from_array(values.astype(_NUMPY_TYPES[container]), name)
    data_type = {"int4": onnx.TensorProto.INT4, "uint4": onnx.TensorProto.UINT4}[container]
    return onnx.helper.make_tensor(name, data_type, list(values.shape), values.ravel().tolist())


def _float_tensor(name: str, values) -> object:
    onnx = import_onnx()
    return onnx.numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)


def _tag_of(node) -> int:
    for attr in node.attribute:
        if attr.name == "tag":
            return int(attr.i)
    raise ExportError(f"internal error: marker node '{node.name}' has no tag attribute")


def rewrite_markers(model, plans: list[TensorPlan]) -> None:
    """Expand every Tag node in ``model`` (in place); record the new node names in each plan."""
    onnx = import_onnx()
    graph = model.graph
    by_tag = {plan.tag: plan for plan in plans}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    renames: dict[str, str] = {}
    absorbed: set[str] = set()
    occurrences: dict[int, int] = {}
    expanded: dict[tuple[int, str], str] = {}
    nodes, initializers = [], []
    for node in graph.node:
        if node.output and node.output[0] in absorbed:
            continue
        if not (node.domain == MARKER_DOMAIN and node.op_type == MARKER_OP):
            copied = onnx.NodeProto()
            copied.CopyFrom(node)
            nodes.append(copied)
            continue
        tag = _tag_of(node)
        if tag not in by_tag:
            raise ExportError(f"internal error: marker tag {tag} has no export plan")
        plan = by_tag[tag]
        if plan.record.kind != "constant" and (tag, node.input[0]) in expanded:
            # One slot quantizing one tensor twice (a conv's input that is also a residual add's, see
            # qag.joins): one Q/DQ pair serves both consumers, so the runtime sees one quantized tensor.
            renames[node.output[0]] = expanded[(tag, node.input[0])]
            continue
        expanded[(tag, node.input[0])] = node.output[0]
        count = occurrences[tag] = occurrences.get(tag, 0) + 1
        prefix = f"{plan.record.layer}.{plan.record.role}" + (f".call{count}" if count > 1 else "")
        source, target = node.input[0], node.output[0]
        if plan.container is None and plan.lut is None:  # exact float weight: the Tag's input already holds the quantized values
            renames[target] = source
            continue
        if plan.record.kind == "constant":
            codes, axis = plan.codes, plan.grid.axis
            users = consumers.get(target, [])
            if len(users) == 1 and users[0].op_type == "Transpose" and codes.ndim == 2:
                perm = next((list(a.ints) for a in users[0].attribute if a.name == "perm"), [1, 0])
                if perm == [1, 0]:
                    codes, axis = codes.T, (None if axis is None else 1 - axis)
                    target = users[0].output[0]
                    absorbed.add(target)
            new_nodes, new_inits = _weight_dequantize(prefix, plan, codes, axis, target)
        elif plan.lut is not None and plan.container is None:
            new_nodes, new_inits = _activation_lookup(prefix, plan, source, target)
        elif plan.lut is not None:
            new_nodes, new_inits = _activation_lookup(prefix, plan, source, f"{prefix}_levels_out")
            qdq_nodes, qdq_inits = _activation_qdq(prefix, plan, f"{prefix}_levels_out", target)
            new_nodes, new_inits = new_nodes + qdq_nodes, new_inits + qdq_inits
        else:
            new_nodes, new_inits = _activation_qdq(prefix, plan, source, target)
        nodes.extend(new_nodes)
        initializers.extend(new_inits)
        plan.record.onnx_nodes.extend(n.name for n in new_nodes)
    for node in nodes:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
    for output in graph.output:
        if output.name in renames:
            raise ExportError(f"internal error: graph output '{output.name}' is a marked weight")
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(initializers)
    kept = [o for o in model.opset_import if o.domain != MARKER_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    prune_unused(graph)
    leftover = [n.name for n in graph.node if n.domain == MARKER_DOMAIN]
    if leftover:
        raise ExportError(f"internal error: marker nodes left in the graph: {leftover}")


def _weight_dequantize(prefix: str, plan: TensorPlan, codes: np.ndarray, axis: int | None, target: str):
    onnx = import_onnx()
    grid, container = plan.grid, plan.container.name
    names = (f"{prefix}_quantized", f"{prefix}_scale", f"{prefix}_zero_point")
    inits = [integer_tensor(names[0], codes, container), _float_tensor(names[1], grid.scale),
             integer_tensor(names[2], grid.zero_point, container)]
    kwargs = {"axis": axis} if axis is not None else {}
    node = onnx.helper.make_node("DequantizeLinear", list(names), [target], name=f"{prefix}/DequantizeLinear", **kwargs)
    plan.record.axis = axis
    return [node], inits


def _activation_qdq(prefix: str, plan: TensorPlan, source: str, target: str):
    onnx = import_onnx()
    grid, container, record = plan.grid, plan.container.name, plan.record
    scale_name, zero_name = f"{prefix}_scale", f"{prefix}_zero_point"
    inits = [_float_tensor(scale_name, grid.scale), integer_tensor(zero_name, grid.zero_point, container)]
    kwargs = {"axis": grid.axis} if grid.axis is not None else {}
    nodes = []
    if record.clip is not None:
        low, high = f"{prefix}_clip_min", f"{prefix}_clip_max"
        inits += [_float_tensor(low, record.clip[0]), _float_tensor(high, record.clip[1])]
        nodes.append(onnx.helper.make_node("Clip", [source, low, high], [f"{prefix}_clipped"], name=f"{prefix}/Clip"))
        source = f"{prefix}_clipped"
    nodes.append(onnx.helper.make_node("QuantizeLinear", [source, scale_name, zero_name], [f"{prefix}_quantized"],
                                       name=f"{prefix}/QuantizeLinear", **kwargs))
    nodes.append(onnx.helper.make_node("DequantizeLinear", [f"{prefix}_quantized", scale_name, zero_name], [target],
                                       name=f"{prefix}/DequantizeLinear", **kwargs))
    return nodes, inits


def _activation_lookup(prefix: str, plan: TensorPlan, source: str, target: str):
    """``levels[#{thresholds <= x}]`` by binary lifting: idx += step where thresholds[idx + step - 1] <= x."""
    onnx = import_onnx()
    make = onnx.helper.make_node
    thresholds, levels, steps = padded_tables(*plan.lut)
    table, values = f"{prefix}_thresholds", f"{prefix}_levels"
    inits = [_float_tensor(table, thresholds), _float_tensor(values, levels)]
    nodes, index = [], None

    def constant(name: str, value: int) -> str:
        inits.append(onnx.numpy_helper.from_array(np.array(value, dtype=np.int64), f"{prefix}_{name}"))
        return f"{prefix}_{name}"

    for i, step in enumerate(steps):
        stem = f"{prefix}_search{i}"
        if index is None:
            position = constant(f"offset{i}", step - 1)
        else:
            position = f"{stem}_position"
            nodes.append(make("Add", [index, constant(f"offset{i}", step - 1)], [position], name=f"{stem}/Add"))
        nodes.append(make("Gather", [table, position], [f"{stem}_threshold"], name=f"{stem}/Gather", axis=0))
        nodes.append(make("GreaterOrEqual", [source, f"{stem}_threshold"], [f"{stem}_above"],
                          name=f"{stem}/GreaterOrEqual"))
        if index is None:
            candidate, previous = constant(f"step{i}", step), constant("zero", 0)
        else:
            candidate, previous = f"{stem}_candidate", index
            nodes.append(make("Add", [index, constant(f"step{i}", step)], [candidate], name=f"{stem}/AddStep"))
        nodes.append(make("Where", [f"{stem}_above", candidate, previous], [f"{stem}_index"], name=f"{stem}/Where"))
        index = f"{stem}_index"
    nodes.append(make("Gather", [values, index], [target], name=f"{prefix}/GatherLevels", axis=0))
    return nodes, inits


def prune_unused(graph) -> None:
    """Drop initializers and value_info entries nothing refers to any more (the replaced float weights)."""
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    produced = {name for node in graph.node for name in node.output}
    info = [v for v in graph.value_info if v.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(info)
