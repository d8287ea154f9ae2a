"""What an export produced: one :class:`TensorExport` per quantized tensor, totals in :class:`ExportReport`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

#: How a tensor can appear in the ONNX graph.
REPRESENTATIONS = {
    "qdq-int8": "int8 integers + DequantizeLinear (weights) or QuantizeLinear->DequantizeLinear (activations)",
    "qdq-uint8": "uint8 integers with Q/DQ",
    "qdq-int4": "INT4 integers with Q/DQ (opset 21)",
    "qdq-uint4": "UINT4 integers with Q/DQ (opset 21)",
    "qdq-int16": "int16 integers with Q/DQ (opset 21)",
    "qdq-uint16": "uint16 integers with Q/DQ (opset 21)",
    "dequantized-float": "weights stored as float32 holding the exact quantized values",
    "lut-float": "activation levels looked up exactly (binary search over thresholds with Gather/Where)",
    "lut+qdq-int8": "the exact lookup, then an int8 Q/DQ pair that is exact on its levels (binary, ternary, pot)",
    "lut+qdq-int4": "the exact lookup, then an INT4 Q/DQ pair (opset 21)",
    "fake-quant-float": "the scheme's quantizer traced as float ONNX ops",
    "float": "not quantized by the policy",
    "not-executed": "the slot did not run on the example input, so it is not in the traced graph",
}


@dataclass
class TensorExport:
    """How one quantized tensor (a layer's weight operand or its input activation) was exported.

    ``role`` is the position in the layer (``weight`` = second operand, ``activation`` = input);
    ``kind`` is ``constant`` (a parameter) or ``dynamic`` (computed at run time).
    """

    layer: str
    role: str
    kind: str
    scheme: str
    bits: int
    representation: str
    reason: str = ""
    dtype: str | None = None
    axis: int | None = None
    scale: list[float] = field(default_factory=list)
    zero_point: list[int] = field(default_factory=list)
    qmin: int | None = None
    qmax: int | None = None
    grid_source: str | None = None
    clip: list[float] | None = None
    levels: list[float] | None = None
    shape: list[int] = field(default_factory=list)
    storage_bits: int | None = None
    packed_bytes: int = 0
    side_bytes: int = 0
    float32_bytes: int = 0
    activation_mismatch: float | None = None
    onnx_nodes: list[str] = field(default_factory=list)
    tensorrt_native: bool = False
    tensorrt_note: str = ""

    @property
    def is_qdq(self) -> bool:
        return "qdq-" in self.representation

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SizeReport:
    """Bytes a device would store for the model, against float32 storage of the same tensors."""

    quantized_weight_bytes: int
    quantized_weight_side_bytes: int
    quantized_weight_float32_bytes: int
    other_float_bytes: int
    onnx_file_bytes: int

    @property
    def packed_bytes(self) -> int:
        """Total: packed quantized weights, their scales/codebooks, and every other tensor as float32."""
        return self.quantized_weight_bytes + self.quantized_weight_side_bytes + self.other_float_bytes

    @property
    def float32_bytes(self) -> int:
        return self.quantized_weight_float32_bytes + self.other_float_bytes

    @property
    def quantized_weight_ratio(self) -> float:
        """Packed quantized weights (with scales) over the same weights in float32."""
        denominator = self.quantized_weight_float32_bytes
        return (self.quantized_weight_bytes + self.quantized_weight_side_bytes) / denominator if denominator else 1.0

    def to_dict(self) -> dict:
        return {**asdict(self), "packed_bytes": self.packed_bytes, "float32_bytes": self.float32_bytes,
                "quantized_weight_ratio": self.quantized_weight_ratio}


@dataclass
class ExportReport:
    """The result of :func:`hwqnn.export.export_onnx`."""

    path: Path
    sidecar_path: Path
    opset: int
    int4: bool
    tensors: list[TensorExport]
    sizes: SizeReport
    max_abs_diff: float | None = None
    max_abs_output: float | None = None
    top1_agreement: float | None = None
    max_abs_diff_optimized: float | None = None
    top1_agreement_optimized: float | None = None
    tensorrt_violations: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: The device the export was judged for (None: no target; sizes are then the ONNX containers' packing).
    target: str | None = None
    #: Per layer on the target: native (as which format), emulated or float (``deployability.LayerDeployment``).
    deployments: list = field(default_factory=list)
    #: The joins' own quantizers (inputs of residual adds and pools that convs feed, see ``hwqnn.qag.joins``),
    #: named ``<op>.in<k>``; a join that shares a layer's activation Q/DQ has none of its own.
    joins: list[TensorExport] = field(default_factory=list)

    def layers(self) -> list[dict]:
        """One row per layer: representation of its weight and activation, TensorRT-native or not."""
        rows: dict[str, dict] = {}
        for t in self.tensors:
            row = rows.setdefault(t.layer, {"layer": t.layer})
            prefix = "w" if t.role == "weight" else "a"
            row[f"{prefix}_scheme"] = t.scheme
            row[f"{prefix}_bits"] = t.bits
            row[f"{prefix}_representation"] = t.representation
            row[f"{prefix}_tensorrt_native"] = t.tensorrt_native
        for row in rows.values():
            row["tensorrt_native"] = bool(row.get("w_tensorrt_native") and row.get("a_tensorrt_native"))
        for d in self.deployments:
            if d.layer in rows:
                rows[d.layer].update({"deploy_status": d.status, "deploy_format": d.format,
                                      "deploy_precision": d.precision, "deploy_note": d.note})
        return list(rows.values())

    def native_fraction(self) -> float | None:
        """Share of quantized layers the target runs natively (None without a target)."""
        judged = [d for d in self.deployments if d.note != "the policy keeps this layer in float"]
        return sum(d.status == "native" for d in judged) / len(judged) if judged else None

    def summary(self) -> str:
        """A short human-readable table for the CLI."""
        on_target = f"on {self.target}" if self.target else ""
        lines = [f"{'layer':<32} {'weight':<30} {'activation':<30} TensorRT-int8"
                 + (f"  {on_target}" if self.target else "")]
        for row in self.layers():
            weight = f"{row.get('w_scheme')}@{row.get('w_bits')} {row.get('w_representation')}"
            act = f"{row.get('a_scheme')}@{row.get('a_bits')} {row.get('a_representation')}"
            deploy = ""
            if "deploy_status" in row:
                fmt = f" {row['deploy_format']}" if row.get("deploy_format") else ""
                deploy = f"  {row['deploy_status']}{fmt} ({row['deploy_precision']})"
            lines.append(f"{row['layer']:<32} {weight:<30} {act:<30} {'yes' if row['tensorrt_native'] else 'no':<13}"
                         f"{deploy}".rstrip())
        if self.joins:
            kinds = sorted({f"{t.representation}" for t in self.joins})
            trt = sum(bool(t.tensorrt_native) for t in self.joins)
            lines.append(f"joins: {len(self.joins)} input(s) of residual adds and pools quantized by their own "
                         f"8-bit quantizer ({', '.join(kinds)}; {trt} TensorRT-int8)")
        fraction = self.native_fraction()
        if fraction is not None:
            lines.append(f"{fraction:.0%} of quantized layers run natively on {self.target}")
        s = self.sizes
        where = f"stored on {self.target}" if self.target else "packed size"
        lines.append(f"{where} {s.packed_bytes} B (quantized weights {s.quantized_weight_bytes} B + scales "
                     f"{s.quantized_weight_side_bytes} B + float tensors {s.other_float_bytes} B) vs float32 "
                     f"{s.float32_bytes} B; ONNX file {s.onnx_file_bytes} B")
        if self.max_abs_diff is not None:
            lines.append(f"onnxruntime vs PyTorch on the example input (max |output| {self.max_abs_output:.3g}): "
                         f"graph as written max |diff| {self.max_abs_diff:.3g}, top-1 agreement "
                         f"{_fraction(self.top1_agreement)}; with runtime optimizations (integer kernels) "
                         f"max |diff| {self.max_abs_diff_optimized:.3g}, top-1 agreement "
                         f"{_fraction(self.top1_agreement_optimized)}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "onnx": str(self.path), "opset": self.opset, "int4": self.int4,
            "sizes": self.sizes.to_dict(),
            "verification": {"max_abs_output": self.max_abs_output,
                             "max_abs_diff": self.max_abs_diff, "top1_agreement": self.top1_agreement,
                             "max_abs_diff_optimized": self.max_abs_diff_optimized,
                             "top1_agreement_optimized": self.top1_agreement_optimized},
            "layers": self.layers(),
            "tensors": [t.to_dict() for t in self.tensors],
            "joins": [t.to_dict() for t in self.joins],
            "tensorrt_violations": self.tensorrt_violations,
            "warnings": list(self.warnings),
            "target": self.target,
            "native_fraction": self.native_fraction(),
            "deployments": [d.to_dict() for d in self.deployments],
        }


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
