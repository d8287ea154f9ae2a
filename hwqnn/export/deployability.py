"""What an export means on its target: per layer native (as which format), emulated or float, and
the bytes the device stores, by the packing rule the cost model prices (:mod:`hwqnn.deployment`).

The rule is shared, the counts are not: element counts and channels come from the exported tensors,
the float tensors from the model's state, so a cost-model size that drifts from the export shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cost_models import LayerPrecision

from ..deployment import FLOAT, NATIVE, op_family, place_layer
from .report import SizeReport, TensorExport

TENSORRT = "TensorRT"


@dataclass(frozen=True)
class LayerDeployment:
    """One layer on the export's target."""

    layer: str
    status: str
    format: str | None
    precision: str
    note: str = ""

    def to_dict(self) -> dict:
        return {"layer": self.layer, "status": self.status, "format": self.format, "precision": self.precision,
                "note": self.note}


def _precision_text(p) -> str:
    if p.w_kind == "float" and p.a_kind == "float":
        return f"fp{p.w_bits}"
    return f"{p.w_kind}{p.w_bits} x {p.a_kind}{p.a_bits}"


def layer_deployments(qmodel, profile) -> list[LayerDeployment]:
    """Per layer of ``qmodel``'s current policy: how ``profile``'s runtime runs it."""
    policy = qmodel.current_policy()
    spec = profile.deployment
    out = []
    for name in qmodel.layer_names:
        placement = place_layer(policy.resolve(name), spec, qmodel.layer(name).op_type)
        out.append(LayerDeployment(name, placement.status, placement.format, _precision_text(placement.precision),
                                   placement.note))
    return out


def check_against_graph(deployments: list[LayerDeployment], tensors: list[TensorExport], profile) -> list[str]:
    """On a TensorRT target, a layer placed as native must pass TensorRT's Q/DQ rules in the written graph."""
    spec = profile.deployment
    if spec is None or not spec.runtime.startswith(TENSORRT):
        return []
    by_layer: dict[str, list[TensorExport]] = {}
    for t in tensors:
        by_layer.setdefault(t.layer, []).append(t)
    problems = []
    for d in deployments:
        if d.status != NATIVE or d.format != "int8":
            continue
        broken = [f"{t.role}: {t.tensorrt_note}" for t in by_layer.get(d.layer, [])
                  if t.representation != "not-executed" and not t.tensorrt_native]
        if broken:
            problems.append(f"layer '{d.layer}' is priced as native int8 on {profile.name}, but the exported graph "
                            f"breaks TensorRT's rules ({'; '.join(broken)})")
    return problems


def sizes_on_target(tensors: list[TensorExport], qmodel, profile, float_bytes: int, onnx_bytes: int) -> SizeReport:
    """The bytes ``profile``'s device stores for the export, by the cost model's packing rule.

    Per quantized weight: codes at the bits the device stores them in (its container on a fixed-format
    runtime, the policy's bits where it bit-packs, the float width where the layer falls back to float),
    plus the side bytes per channel (scale, zero point, lookup table); every other tensor as float32.
    """
    policy = qmodel.current_policy()
    spec = profile.deployment
    tables = profile.execution_tables()
    containers = spec is not None and spec.storage == "container"
    codes = side = as_float32 = 0
    for t in tensors:
        if t.kind != "constant" or t.representation in ("float", "not-executed"):
            continue
        numel = math.prod(t.shape)
        as_float32 += numel * 4
        placement = place_layer(policy.resolve(t.layer), spec, qmodel.layer(t.layer).op_type)
        p = placement.precision
        if placement.status == FLOAT or p.w_kind == "float":
            codes += math.ceil(numel * p.w_bits / 8)
            continue
        bits = tables.lookup(p.w_kind, p.a_kind, p.w_bits, p.a_bits).w_bits if containers else p.w_bits
        channels = qmodel.layer(t.layer).weight_slot.channels or 1
        codes += math.ceil(numel * bits / 8)
        side += channels * (4 if p.w_side_bytes is None else p.w_side_bytes)
    return SizeReport(quantized_weight_bytes=int(codes), quantized_weight_side_bytes=int(side),
                      quantized_weight_float32_bytes=int(as_float32), other_float_bytes=int(float_bytes),
                      onnx_file_bytes=onnx_bytes)


def exported_precisions(tensors: list[TensorExport], profile, op_types: dict[str, str] | None = None
                        ) -> dict[str, LayerPrecision]:
    """Per layer, the precision a fixed-format runtime runs the *written graph* in, read from the graph
    alone (Q/DQ element types and zero points, not the policy): int at the container width when both
    operands are Q/DQ tensors one of its formats (for the layer's ``op_types`` family) accepts, else its
    float width. Pricing these must give the policy's costs, or the search priced something the device
    does not run."""
    spec = profile.deployment
    by_layer: dict[str, dict[str, TensorExport]] = {}
    for t in tensors:
        by_layer.setdefault(t.layer, {})[t.role] = t
    out = {}
    for layer, sides in by_layer.items():
        w, a = sides.get("weight"), sides.get("activation")
        if w is not None and w.representation == "float" and (a is None or a.representation == "float"):
            out[layer] = LayerPrecision("float", 32, "float", 32)  # the policy keeps it float
            continue
        container = _graph_container(w, a, spec, (op_types or {}).get(layer))
        out[layer] = (LayerPrecision("int", container, "int", container) if container
                      else LayerPrecision("float", spec.float_bits, "float", spec.float_bits))
    return out


def _graph_container(w: TensorExport | None, a: TensorExport | None, spec, op_type: str | None) -> int | None:
    """The container width a fixed format of ``spec`` runs this layer in, judging the graph's Q/DQ tensors."""
    if w is None or a is None or not (w.is_qdq and a.is_qdq) or w.representation.startswith("lut"):
        return None
    if a.representation.startswith("lut"):
        return None  # a float lookup before the Q/DQ: not the runtime's own quantize
    bits = max(_dtype_bits(w.dtype), _dtype_bits(a.dtype))
    family = op_family(op_type)
    for fmt in spec.formats:
        if fmt.flexible or bits not in fmt.bits or (family is not None and family not in fmt.ops):
            continue
        ok = all(_accepts(rule, t) for rule, t in ((fmt.weight, w), (fmt.activation, a)))
        if ok:
            return bits
    return None


def _dtype_bits(dtype: str | None) -> int:
    return int("".join(ch for ch in (dtype or "") if ch.isdigit()) or 32)


def _accepts(rule: str, t: TensorExport) -> bool:
    if rule == "symmetric":  # zero point 0 in a signed container
        return t.dtype in ("int8", "int4") and not any(t.zero_point)
    if rule == "unsigned":  # zero point 0, signed or unsigned container
        return not any(t.zero_point)
    return t.dtype in ("int8", "uint8", "int4", "uint4")


__all__ = ["LayerDeployment", "layer_deployments", "check_against_graph", "sizes_on_target", "exported_precisions"]
