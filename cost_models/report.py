"""CostReport: totals and a per-layer table for one (model, policy, target, batch size)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .float_op_costs import FloatOpPrices
from .precision import LayerPrecision
from .workload import Workload

LAYER_COLUMNS = (
    "name", "op_type", "macs", "bits", "w_kind", "w_bits", "a_kind", "a_bits", "exec_kind", "exec_w_bits",
    "exec_a_bits", "device", "fallback", "latency_s", "compute_s", "memory_s", "bound", "energy_j",
    "weight_bytes", "activation_bytes", "pricing",
)
#: ``pricing`` of a row: a layer the policy sets, a float op (memory-bound kernel), a non-GEMM op whose
#: inputs are quantized (an integer memory-bound kernel, see ``FloatOpInfo.int_bits``), an estimated op, or
#: the device's fixed per-inference overhead (the first row, where the profile has one).
ROW_PRICINGS = ("policy", "float", "joined", "unpriced", "overhead")
INFERENCE_ROW = "(per inference)"


def precision_label(p: LayerPrecision) -> str:
    """``w4a8``, ``fp16``, or ``w:shift4 a:int8`` for mixed kinds."""
    if p.w_kind == p.a_kind == "float" and p.w_bits == p.a_bits:
        return f"fp{p.w_bits}"
    if p.w_kind in ("int", "binary") and p.a_kind in ("int", "binary"):
        return f"w{p.w_bits}a{p.a_bits}"
    return f"w:{p.w_kind}{p.w_bits} a:{p.a_kind}{p.a_bits}"


def layer_columns(workload: Workload, precisions: Sequence[LayerPrecision], batch_size: int,
                  costs: dict[str, np.ndarray], execution: dict[str, np.ndarray],
                  float_ops: FloatOpPrices | None = None, device: str = "", inference_overhead_s: float = 0.0
                  ) -> dict:
    """The columns of a CostReport's per-layer table (MACs are per batch).

    With ``float_ops``, each costed float op is its own row, placed in execution order; its costs, which
    ``costs`` charged to a quantizable row, are taken back out of that row, so the rows still sum to the
    totals. A quantizable row's ``activation_bytes`` stays the peak-memory term the search sees (the
    larger of its own and those of the float ops charged to it). A per-inference overhead, charged to the
    first row, is taken out of it the same way and becomes the table's first row.
    """
    latency, energy = costs["latency_s"], costs["energy_j"]
    if float_ops is not None and float_ops.ops:
        charged = float_ops.per_row()
        latency, energy = latency - charged["float_latency"], energy - charged["float_energy"]
    if inference_overhead_s:
        latency = np.array(latency, dtype=float)
        latency[0] -= inference_overhead_s
    data = {
        "name": [layer.name for layer in workload.layers],
        "op_type": [layer.op_type for layer in workload.layers],
        "macs": np.array([layer.macs for layer in workload.layers]) * batch_size,
        "bits": [precision_label(p) for p in precisions],
        "w_kind": [p.w_kind for p in precisions],
        "w_bits": [p.w_bits for p in precisions],
        "a_kind": [p.a_kind for p in precisions],
        "a_bits": [p.a_bits for p in precisions],
        **execution,
        "latency_s": latency,
        "compute_s": costs["compute_s"],
        "memory_s": costs["memory_s"],
        "bound": np.where(costs["compute_s"] >= costs["memory_s"], "compute", "memory"),
        "energy_j": energy,
        "weight_bytes": costs["weight_bytes"],
        "activation_bytes": costs["activation_bytes"],
        "pricing": ["policy"] * len(workload),
    }
    if float_ops is not None and float_ops.ops:
        extra, order = float_ops.table_columns(device), float_ops.layout.merge_order
        data = {key: np.concatenate([np.asarray(values), extra[key]])[order] for key, values in data.items()}
    if not inference_overhead_s:
        return data
    first = {"name": INFERENCE_ROW, "op_type": "overhead", "macs": 0.0, "bits": "-", "w_kind": "-", "w_bits": 0,
             "a_kind": "-", "a_bits": 0, "exec_kind": "-", "exec_w_bits": 0, "exec_a_bits": 0, "device": device,
             "fallback": False, "latency_s": inference_overhead_s, "compute_s": 0.0, "memory_s": 0.0,
             "bound": "overhead", "energy_j": 0.0, "weight_bytes": 0.0, "activation_bytes": 0.0,
             "pricing": "overhead"}
    return {key: np.concatenate([np.asarray([first[key]]), np.asarray(values)]) for key, values in data.items()}


@dataclass
class CostReport:
    """Hard (integer-policy) costs: totals as floats and ``layers``, one DataFrame row per layer.

    The DataFrame is built on first access of ``layers`` (pandas construction costs about as much as
    the whole cost evaluation, and a search loop reading only the totals never needs it).
    """

    target: str
    batch_size: int
    latency_s: float
    energy_j: float
    size_bytes: float
    peak_memory_bytes: float
    layer_data: dict = field(repr=False)
    #: The ops left float (softmax, norms, adds...): name, op type, pricing, the row each is charged to,
    #: bits, bytes, latency, energy. Fused ones are listed at cost 0; costed ones are also table rows.
    float_ops: list[dict] = field(default_factory=list, repr=False)
    #: Ops the cost model does not know: each was estimated (as stated here) and is a row with
    #: ``pricing == "unpriced"``.
    warnings: list[str] = field(default_factory=list)

    @functools.cached_property
    def layers(self) -> pd.DataFrame:
        return pd.DataFrame(self.layer_data, columns=list(LAYER_COLUMNS))

    def to_dict(self) -> dict:
        """JSON-ready: totals plus one record per layer."""
        records = self.layers.to_dict(orient="records")
        for record in records:
            for key, value in record.items():
                if isinstance(value, np.generic):
                    record[key] = value.item()
        return {
            "target": self.target, "batch_size": self.batch_size, "latency_s": self.latency_s,
            "energy_j": self.energy_j, "size_bytes": self.size_bytes,
            "peak_memory_bytes": self.peak_memory_bytes, "layers": records, "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        """One readable block of totals (used by ``hwqnn cost``), then one line per warning."""
        policy_rows = self.layers[self.layers["pricing"] == "policy"]
        n_fallback = int(policy_rows["fallback"].sum())
        bound = policy_rows["bound"].value_counts().to_dict()
        text = (f"target {self.target}, batch {self.batch_size}: latency {self.latency_s * 1e3:.4g} ms, "
                f"energy {self.energy_j * 1e3:.4g} mJ, size {self.size_bytes / 2**20:.4g} MiB, "
                f"peak memory {self.peak_memory_bytes / 2**20:.4g} MiB; {len(policy_rows)} layers "
                f"({bound.get('compute', 0)} compute-bound, {bound.get('memory', 0)} memory-bound, "
                f"{n_fallback} on the fallback device)" + self._float_ops_summary() + self._overhead_summary())
        return "\n".join([text, *(f"warning: {line}" for line in self.warnings)])

    def _overhead_summary(self) -> str:
        rows = self.layers[self.layers["pricing"] == "overhead"]
        if rows.empty:
            return ""
        return f"; per-inference overhead {float(rows['latency_s'].sum()) * 1e3:.4g} ms (its own row)"

    def _float_ops_summary(self) -> str:
        costed = [op for op in self.float_ops if op["pricing"] != "fused"]
        fused = len(self.float_ops) - len(costed)
        if not self.float_ops:
            return ""
        latency = sum(op["latency_s"] for op in costed)
        kinds = ", ".join(sorted({op["op_type"] for op in costed}))
        text = (f"; {len(costed)} float ops ({kinds}) cost {latency * 1e3:.4g} ms, included in the totals, each its "
                f"own row" if costed else "")
        return text + (f"; {fused} fused into the op before them (cost 0)" if fused else "")


def policy_layer_names(layer_costs: dict) -> list[str]:
    """The layers a policy sets, from a report's per-layer table as saved (``layer_data`` / metrics'
    ``layer_costs``): its float-op rows (softmax, adds, pooling) left out."""
    names = list(layer_costs.get("name", []))
    pricing = layer_costs.get("pricing")
    return names if pricing is None else [n for n, p in zip(names, pricing) if p == "policy"]
