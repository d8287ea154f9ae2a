"""Deployable export: a fixed-policy QuantizedModel as ONNX with explicit QuantizeLinear/DequantizeLinear.

    from hwqnn.export import export_onnx
    report = export_onnx(qmodel, example_input, "model.onnx", opset=17, int4=False)
    print(report.summary())

Besides ``model.onnx`` it writes ``model.quant.json``: the policy, every tensor's representation,
scales and zero points, TensorRT deployability, and the packed size a device would store.
"""

from .onnx_qdq import export_onnx, run_onnx
from .packing import pack_codes, packed_nbytes, unpack_codes
from .report import REPRESENTATIONS, ExportReport, SizeReport, TensorExport
from .sidecar import read_sidecar, sidecar_path_for
from .tensorrt_rules import check_tensorrt_rules

__all__ = [
    "export_onnx",
    "run_onnx",
    "ExportReport",
    "SizeReport",
    "TensorExport",
    "REPRESENTATIONS",
    "check_tensorrt_rules",
    "pack_codes",
    "unpack_codes",
    "packed_nbytes",
    "read_sidecar",
    "sidecar_path_for",
]
