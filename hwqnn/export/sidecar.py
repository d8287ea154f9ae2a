"""The JSON sidecar written beside an exported ONNX file.

It holds the fixed policy, and per tensor how it was represented, its scales, zero points, bits and
scheme, whether TensorRT can run it as int8, and the packed model size a device would store.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ExportError
from ..policy import FLOAT, POLICY_VERSION
from ..qag import QuantizedModel
from ..run_dir import atomic_write_json
from .report import ExportReport

SIDECAR_SUFFIX = ".quant.json"
SIDECAR_VERSION = 1


def sidecar_path_for(onnx_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.quant.json`` in the same folder."""
    path = Path(onnx_path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def write_sidecar(report: ExportReport, model: QuantizedModel) -> Path:
    """Write the sidecar of ``report`` atomically; return its path."""
    data = {"version": SIDECAR_VERSION, "policy": policy_dict(model), **report.to_dict()}
    return atomic_write_json(report.sidecar_path, data)


def policy_dict(model: QuantizedModel) -> dict:
    """The fixed policy the model's slots hold, in the policy file's format (``Policy.to_dict``).

    Built from the slots directly, so a scheme set on a slot without being registered is still written.
    """
    layers = {}
    for op in model.quant_ops():
        sides = []
        for slot in op.slots:
            sides += [slot.fixed_scheme, slot.fixed_bits] if slot.mode == "fixed" else [FLOAT, 32]
        layers[op.layer_name] = dict(zip(("w_scheme", "w_bits", "a_scheme", "a_bits"), sides))
    return {"version": POLICY_VERSION, "meta": {}, "layers": layers}


def read_sidecar(path: str | Path) -> dict:
    """Load a sidecar, with a clear error when it is missing or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"export sidecar {path} does not exist; run 'hwqnn export' first")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ExportError(f"export sidecar {path} is not valid JSON: {exc}") from None
    if data.get("version") != SIDECAR_VERSION:
        raise ExportError(f"export sidecar {path} has version {data.get('version')!r}; expected {SIDECAR_VERSION}")
    return data
