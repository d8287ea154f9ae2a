"""ONNX Runtime fuses hwqnn's w8a8 export into integer kernels, and (slow) runs it as fast as its own quantizer's.

The graphs come from ``bench/bench_export_latency.py`` (fp32 by torch.onnx, hwqnn w8a8, and
``quantize_static`` with uint8 activations, the faster reference on x86). hwqnn quantizes what the
trained model quantizes, the inputs of weighted layers, and nothing else; so a Conv becomes an integer
QLinearConv exactly when its output reaches a QuantizeLinear (possibly through Relu or Clip), and
residual Adds and pooling stay float, where ``quantize_static`` quantizes every tensor.
"""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_export_latency as bench  # noqa: E402

#: A model's latency may exceed quantize_static's by this share: medians of 15 interleaved repeats
#: on the shared 2-core machine still move by about 5% between runs of the same graph.
LATENCY_TOLERANCE = 0.10
#: Convs whose output the model quantizes (so ORT can run them as QLinearConv), by model.
QUANTIZED_OUTPUT_CONVS = {"resnet20": 9, "mobilenet_v2_tiny": 15}


def quantized_output_convs(path: Path) -> int:
    """Convs of an exported graph whose only consumer chain of Relu / ReLU6-like Clips ends in one QuantizeLinear.

    ORT drops such a Relu or Clip in front of an unsigned QuantizeLinear whose range it covers. The Clip
    to [-127, 127] steps that hwqnn writes before a signed int8 QuantizeLinear is narrower than int8's
    [-128, 127], so ORT keeps it, and it keeps the Conv before it in float.
    """
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
    return {name: bench.build_graphs(name, folder, [16]) for name in QUANTIZED_OUTPUT_CONVS}


@pytest.mark.parametrize("model_name", sorted(QUANTIZED_OUTPUT_CONVS))
def test_onnxruntime_fuses_every_quantized_conv_and_the_head(graphs, model_name):
    paths = graphs[model_name].paths
    exported = onnx.load(str(paths["hwqnn"]))
    assert not [n for n in exported.graph.node if n.op_type == "BatchNormalization"], "BatchNorm left unfolded"
    ours = bench.optimized_op_counts(paths["hwqnn"])
    theirs = bench.optimized_op_counts(paths["QUInt8"])
    fusable = quantized_output_convs(paths["hwqnn"])
    assert fusable == QUANTIZED_OUTPUT_CONVS[model_name]
    assert ours["QLinearConv"] == fusable, ours
    assert ours["QGemm"] == theirs["QGemm"] == 1, (ours, theirs)
    assert ours["ConvInteger"] == theirs["ConvInteger"] == 0
    ours_integer = {op for op in ours if bench.integer_kernels(op)}
    assert ours_integer <= {op for op in theirs if bench.integer_kernels(op)}, (ours, theirs)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 12, open: hwqnn quantizes only the inputs of weighted layers, so convs "
                   "feeding residual adds or pooling stay float; measured 2.2-3.1x slower than quantize_static "
                   "(reports/export_latency.md). strict: this fails loudly once it passes, to be unmarked")
@pytest.mark.parametrize("model_name", ["tiny_cnn", "resnet20", "mobilenet_v2_tiny"])
def test_export_is_as_fast_as_quantize_static(model_name, tmp_path):
    rows, _ = bench.measure(model_name, tmp_path, [16], repeats=15, threads=1, sample_ms=20.0)
    row = rows[0]
    assert row.ratio <= 1 + LATENCY_TOLERANCE, (
        f"{model_name}: hwqnn {row.ms['hwqnn']:.2f} ms vs quantize_static ({row.reference}) "
        f"{row.ms[row.reference]:.2f} ms at batch 16 (fp32 {row.ms['fp32']:.2f} ms)")
