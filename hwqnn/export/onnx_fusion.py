"""Graph rewrites, exact up to float rounding, that let a runtime fuse Q/DQ into integer kernels.

BatchNorm folding. A runtime fuses ``DQ(x), DQ(w) -> Conv -> Q`` into one integer convolution (ONNX Runtime's
QLinearConv), but only when the Conv feeds the QuantizeLinear directly: a BatchNormalization in
between, which the float exporter cannot fold into a weight that is computed by a DequantizeLinear,
keeps the whole layer in float. BatchNorm is a per-output-channel affine map, so it folds exactly
into the per-channel weight scale (the integer codes do not change; a negative factor negates them)
and a float bias: ``scale' = scale * f``, ``bias' = (bias - mean) * f + beta``, ``f = gamma / sqrt(var + eps)``.
Only float rounding changes (as with any BatchNorm folding).

Gemm bias split. ONNX Runtime runs ``DQ(x), DQ(w) -> Gemm`` as an integer QGemm with a float output
only when the bias is absent or an int32 DequantizeLinear; a float bias (the exporter's) keeps it in
float. Rounding the bias to int32 would change the result, so it moves into an Add after the Gemm.

Q/DQ before layout ops. ``GlobalAveragePool -> Flatten -> Q -> DQ -> Gemm`` keeps the pool in float: the
runtime's QLinearGlobalAveragePool needs the Q right after the pool. A per-tensor Q/DQ commutes with a
layout op (Flatten, Reshape, Squeeze, Unsqueeze, Transpose only move elements), so a copy of the pair
goes in front of it as well: ``-> Q -> DQ -> Flatten -> Q -> DQ ->``. The values are unchanged (quantizing
quantized values again on the same grid is the identity), and the runtime runs the layout op on integers.
In the other direction, ``DQ -> Slice -> Pad -> Add`` (a ResNet option-A shortcut) gets a Q/DQ on the
grid of that DQ after the last move: slicing and zero padding keep every value on the grid, so this is
exact too, and the runtime runs the addition as QLinearAdd.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._onnx import import_onnx
from .containers import CONTAINERS
from .onnx_graph import integer_tensor, prune_unused

_CONTAINERS = {c.name: c for c in CONTAINERS}


@dataclass
class FoldedNorm:
    """One BatchNormalization folded into the weight DequantizeLinear ``dequantize`` (the new grid it holds)."""

    dequantize: str
    norm: str
    scale: np.ndarray
    zero_point: np.ndarray
    negated_channels: int


def prepare_for_fusion(model) -> list[FoldedNorm]:
    """Apply every rewrite to ``model`` in place; return the folded BatchNorms (their weights' grids changed)."""
    folded = fold_batch_norms(model)
    split_gemm_biases(model)
    quantize_before_layout_ops(model)
    requantize_after_moves(model)
    return folded


#: Ops after which a dequantized tensor's values are still on its grid.
_MOVES = frozenset({"Slice", "Pad", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose"})
#: Readers worth a Q/DQ in front: ONNX Runtime has integer kernels for them.
_INTEGER_READERS = frozenset({"Add", "Concat"})


def requantize_after_moves(model) -> int:
    """``DQ -> Slice/Pad... -> Add`` becomes ``DQ -> Slice/Pad... -> Q -> DQ -> Add`` with the first DQ's
    per-tensor grid; return how many."""
    onnx = import_onnx()
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    inits = {i.name: i for i in graph.initializer}
    eight_bit = _eight_bit_zero_points(graph)
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def zero_pad(node) -> bool:
        mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "constant")
        if mode != "constant":
            return False
        if len(node.input) < 3 or not node.input[2]:
            return True
        value = inits.get(node.input[2])
        return value is not None and not np.any(onnx.numpy_helper.to_array(value))

    def grid_of(name: str):
        node = producer.get(name)
        while node is not None and node.op_type in _MOVES and (node.op_type != "Pad" or zero_pad(node)):
            node = producer.get(node.input[0])
        if node is None or node.op_type != "DequantizeLinear" or any(a.name == "axis" for a in node.attribute):
            return None
        return node

    inserts: dict[str, list] = {}
    for node in graph.node:
        if node.op_type not in _MOVES or (node.op_type == "Pad" and not zero_pad(node)):
            continue
        users = readers.get(node.output[0], [])
        if not any(u.op_type in _INTEGER_READERS for u in users) or any(u.op_type in _MOVES for u in users):
            continue
        dequantize = grid_of(node.output[0])
        if dequantize is None or len(dequantize.input) < 3 or dequantize.input[2] not in eight_bit:
            continue
        stem = f"{node.name}/requantize"
        quantized, dequantized = f"{stem}_quantized", f"{stem}_dequantized"
        inserts[node.name] = [
            onnx.helper.make_node("QuantizeLinear", [node.output[0], *dequantize.input[1:]], [quantized],
                                  name=f"{stem}/QuantizeLinear"),
            onnx.helper.make_node("DequantizeLinear", [quantized, *dequantize.input[1:]], [dequantized],
                                  name=f"{stem}/DequantizeLinear")]
        for user in users:
            for i, name in enumerate(user.input):
                if name == node.output[0]:
                    user.input[i] = dequantized
    _insert_nodes(graph, after=inserts)
    return len(inserts)


def _eight_bit_zero_points(graph) -> set[str]:
    """Initializers holding an int8/uint8 zero point. Only 8-bit Q/DQ is copied: the integer kernels these
    rewrites are for (QLinearGlobalAveragePool, QLinearAdd) take 8-bit tensors; 4-bit Q/DQ stay as written."""
    onnx = import_onnx()
    return {i.name for i in graph.initializer if i.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)}


LAYOUT_OPS = frozenset({"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose"})


def quantize_before_layout_ops(model) -> int:
    """``x -> Flatten -> Q -> DQ`` becomes ``x -> Q -> DQ -> Flatten -> Q -> DQ`` (per-tensor Q, the layout op
    the only reader of ``x``, ``x`` not already dequantized); return how many."""
    onnx = import_onnx()
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    graph_outputs = {o.name for o in graph.output}
    eight_bit = _eight_bit_zero_points(graph)
    moves: dict[str, list] = {}  # layout node name -> the Q/DQ nodes to put in front of it
    for node in graph.node:
        if (node.op_type != "QuantizeLinear" or any(a.name == "axis" for a in node.attribute)
                or len(node.input) < 3 or node.input[2] not in eight_bit):
            continue
        layout = producer.get(node.input[0])
        if layout is None or layout.op_type not in LAYOUT_OPS or readers.get(layout.output[0]) != 1:
            continue
        source = layout.input[0]
        before = producer.get(source)
        if (before is None or before.op_type in ("DequantizeLinear", "QuantizeLinear") or readers.get(source) != 1
                or source in graph_outputs):
            continue
        stem = f"{node.name}/before_{layout.op_type}"
        quantized, dequantized = f"{stem}_quantized", f"{stem}_dequantized"
        moves[layout.name] = [
            onnx.helper.make_node("QuantizeLinear", [source, *node.input[1:]], [quantized], name=f"{stem}/QuantizeLinear"),
            onnx.helper.make_node("DequantizeLinear", [quantized, *node.input[1:]], [dequantized],
                                  name=f"{stem}/DequantizeLinear")]
        layout.input[0] = dequantized
    _insert_nodes(graph, before=moves)
    return len(moves)


def _insert_nodes(graph, before: dict | None = None, after: dict | None = None) -> None:
    """Put new nodes in front of / behind the nodes named in ``before`` / ``after`` (keeping topological order)."""
    before, after = before or {}, after or {}
    if not before and not after:
        return
    nodes = []
    for node in graph.node:
        nodes.extend(before.get(node.name, []))
        nodes.append(node)
        nodes.extend(after.get(node.name, []))
    del graph.node[:]
    graph.node.extend(nodes)


def split_gemm_biases(model) -> int:
    """``Gemm(DQ(x), DQ(w), bias) -> y`` becomes ``Gemm(DQ(x), DQ(w)) -> Add(bias) -> y``; return how many."""
    onnx = import_onnx()
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    nodes, count = [], 0
    for node in graph.node:
        nodes.append(node)
        if node.op_type != "Gemm" or len(node.input) < 3 or not node.input[2]:
            continue
        if not all(getattr(producer.get(name), "op_type", None) == "DequantizeLinear" for name in node.input[:2]):
            continue
        beta = next((a.f for a in node.attribute if a.name == "beta"), 1.0)
        if beta != 1.0:
            continue
        bias, output = node.input[2], node.output[0]
        del node.input[2]
        node.output[0] = f"{output}_without_bias"
        nodes.append(onnx.helper.make_node("Add", [node.output[0], bias], [output], name=f"{node.name}_bias/Add"))
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
    return count


def fold_batch_norms(model) -> list[FoldedNorm]:
    """Fold every foldable ``DQ(w) -> Conv -> BatchNormalization`` of ``model`` in place.

    Foldable: the BatchNorm's statistics and the weight's codes, scale and zero point are initializers,
    the weight is per tensor or per output channel, and the Conv and the DequantizeLinear have no other
    consumer. A negative BatchNorm factor negates its channel's codes, which needs a zero point of 0.
    """
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    # The exporter shares equal constants (a fresh BatchNorm's ones and zeros) through Identity nodes.
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            inits[node.output[0]] = inits[node.input[0]]
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    folded, removed = [], set()
    for norm in graph.node:
        if norm.op_type != "BatchNormalization" or len(norm.output) != 1:
            continue
        conv = producer.get(norm.input[0])
        if conv is None or conv.op_type != "Conv" or len(consumers[conv.output[0]]) != 1 or conv.output[0] in outputs:
            continue
        dequantize = producer.get(conv.input[1])
        if dequantize is None or dequantize.op_type != "DequantizeLinear" or len(consumers[dequantize.output[0]]) != 1:
            continue
        constants = list(norm.input[1:5]) + list(dequantize.input) + [n for n in conv.input[2:] if n]
        if not all(name in inits for name in constants):
            continue
        result = _fold_one(graph, inits, conv, dequantize, norm)
        if result is not None:
            conv.output[0] = norm.output[0]
            removed.add(id(norm))
            folded.append(result)
    if removed:
        kept = [n for n in graph.node if id(n) not in removed]
        used = {name for node in kept for name in node.input} | outputs
        kept = [n for n in kept if not (n.op_type == "Identity" and n.output[0] not in used)]
        del graph.node[:]
        graph.node.extend(kept)
        prune_unused(graph)
    return folded


def _fold_one(graph, inits: dict, conv, dequantize, norm) -> FoldedNorm | None:
    """Give ``dequantize`` a new scale (and codes) and ``conv`` a new bias; None (nothing changed) if not foldable."""
    onnx = import_onnx()
    to_array, from_array = onnx.numpy_helper.to_array, onnx.numpy_helper.from_array
    gamma, beta, mean, var = (to_array(inits[name]).astype(np.float64) for name in norm.input[1:5])
    epsilon = next((a.f for a in norm.attribute if a.name == "epsilon"), 1e-5)
    factor = gamma / np.sqrt(var + epsilon)
    container = _CONTAINERS.get(onnx.TensorProto.DataType.Name(inits[dequantize.input[0]].data_type).lower())
    if container is None:
        return None
    codes = to_array(inits[dequantize.input[0]]).astype(np.int64)
    channels = codes.shape[0]
    if factor.shape != (channels,) or not np.all(np.isfinite(factor)) or np.any(factor == 0):
        return None
    scale = to_array(inits[dequantize.input[1]]).astype(np.float64)
    has_zero_point = len(dequantize.input) > 2 and dequantize.input[2]
    zero_point = to_array(inits[dequantize.input[2]]).astype(np.int64) if has_zero_point else np.zeros((), np.int64)
    axis = next((a.i for a in dequantize.attribute if a.name == "axis"), 1)
    if scale.ndim == 1 and axis % codes.ndim != 0:
        return None  # per channel along another axis: the factor cannot go into the scale
    negative = factor < 0
    if np.any(negative):
        flipped = -codes[negative]
        if np.any(zero_point != 0) or flipped.min() < container.low or flipped.max() > container.high:
            return None
        codes[negative] = flipped
    new_scale = (np.broadcast_to(scale, (channels,)) * np.abs(factor)).astype(np.float32)
    new_zero_point = np.broadcast_to(zero_point, (channels,))
    bias = to_array(inits[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 and conv.input[2] else 0.0
    new_bias = ((bias - mean) * factor + beta).astype(np.float32)
    stem = dequantize.name.rsplit("/", 1)[0] or dequantize.output[0]
    names = [f"{stem}_folded_{part}" for part in ("quantized", "scale", "zero_point", "bias")]
    graph.initializer.extend([integer_tensor(names[0], codes, container.name), from_array(new_scale, names[1]),
                              integer_tensor(names[2], new_zero_point, container.name), from_array(new_bias, names[3])])
    dequantize.input[:] = names[:3]
    kept = [a for a in dequantize.attribute if a.name != "axis"]
    del dequantize.attribute[:]
    dequantize.attribute.extend(kept + [onnx.helper.make_attribute("axis", 0)])
    if len(conv.input) > 2:
        conv.input[2] = names[3]
    else:
        conv.input.append(names[3])
    return FoldedNorm(dequantize.name, norm.name, new_scale, new_zero_point.astype(np.int64).copy(), int(negative.sum()))
