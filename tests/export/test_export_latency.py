"""ONNX Runtime runs hwqnn's w8a8 export in integer kernels, and (slow) as fast as its own quantizer's output.

The graphs come from ``bench/bench_export_latency.py`` (fp32 by torch.onnx, hwqnn w8a8 exported for
the x86 ONNX Runtime profile, and ``quantize_static`` with uint8 activations). hwqnn quantizes the
inputs of weighted layers and, through its joins, the inputs of residual adds and pools that convs feed
(``hwqnn.qag.joins``), so every conv's output reaches a QuantizeLinear and ORT fuses it into QLinearConv.
Recurrent layers stay float on that target and export as ORT's fused GRU/LSTM node.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import onnx
import pytest

from hwqnn.models import list_models

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_export_latency as bench  # noqa: E402

#: A model's latency may exceed quantize_static's by this share: medians of 15 interleaved repeats
#: on the shared 2-core machine still move by about 5% between runs of the same graph.
LATENCY_TOLERANCE = 0.10
CNN_MODELS = ["tiny_cnn", "branchy_cnn", "functional_cnn", "resnet20", "mobilenet_v2_tiny"]
#: Recurrent models and the ONNX node their recurrent layers export as for ONNX Runtime, whose profile
#: does not list the ``recurrent`` family (its static quantizer has no GRU/LSTM operator either).
RECURRENT_MODELS = {"gru_tiny": ("GRU", 2), "lstm_tiny": ("LSTM", 1)}


def quantized_output_convs(path: Path) -> int:
    """Convs of an exported graph whose only consumer chain of Relu / ReLU6-like Clips ends in one QuantizeLinear
    (ORT drops such a Relu or Clip in front of an unsigned QuantizeLinear whose range it covers)."""
    graph = onnx.load(str(path)).graph
    constants = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    constants.update({n.output[0]: onnx.numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                      if n.op_type == "Constant"})
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def removable(node) -> bool:
        return node.op_type == "Relu" or (node.op_type == "Clip" and float(constants[node.input[1]]) == 0.0)

    count = 0
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        users = consumers.get(node.output[0], [])
        while len(users) == 1 and removable(users[0]):
            users = consumers.get(users[0].output[0], [])
        count += len(users) == 1 and users[0].op_type == "QuantizeLinear"
    return count


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("latency")
    return {name: bench.build_graphs(name, folder, [16]) for name in CNN_MODELS}


@pytest.mark.parametrize("model_name", CNN_MODELS)
def test_onnxruntime_runs_every_conv_in_integers(graphs, model_name):
    paths = graphs[model_name].paths
    exported = onnx.load(str(paths["hwqnn"]))
    assert not [n for n in exported.graph.node if n.op_type == "BatchNormalization"], "BatchNorm left unfolded"
    convs = sum(n.op_type == "Conv" for n in exported.graph.node)
    ours = bench.optimized_op_counts(paths["hwqnn"])
    theirs = bench.optimized_op_counts(paths["QUInt8"])
    assert quantized_output_convs(paths["hwqnn"]) == convs
    assert ours["QLinearConv"] == convs, ours
    assert ours["QGemm"] == theirs["QGemm"] == 1, (ours, theirs)
    assert ours["ConvInteger"] == theirs["ConvInteger"] == 0
    ours_integer = sum(n for op, n in ours.items() if bench.integer_kernels(op))
    theirs_integer = sum(n for op, n in theirs.items() if bench.integer_kernels(op))
    assert ours_integer >= theirs_integer, (ours, theirs)


@pytest.mark.parametrize("model_name", sorted(RECURRENT_MODELS))
def test_recurrent_layers_export_as_one_fused_node_for_onnxruntime(model_name, tmp_path):
    graphs = bench.build_graphs(model_name, tmp_path, [16])
    ops = Counter(n.op_type for n in onnx.load(str(graphs.paths["hwqnn"])).graph.node)
    node, count = RECURRENT_MODELS[model_name]
    assert ops[node] == count and ops["MatMul"] == 0, ops  # no unrolled per-step GEMMs
    assert ops["QuantizeLinear"] >= 1  # the head stays int8


@pytest.mark.slow
@pytest.mark.parametrize("model_name", list_models())
def test_export_is_as_fast_as_quantize_static(model_name, tmp_path):
    rows, _ = bench.measure(model_name, tmp_path, [16], repeats=15, threads=1, sample_ms=20.0)
    row = rows[0]
    assert row.ratio <= 1 + LATENCY_TOLERANCE, (
        f"{model_name}: hwqnn {row.ms['hwqnn']:.2f} ms vs quantize_static ({row.reference}) "
        f"{row.ms[row.reference]:.2f} ms at batch 16 (fp32 {row.ms['fp32']:.2f} ms)")
