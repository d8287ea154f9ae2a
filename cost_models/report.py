"""CostReport: totals and a per-layer table for one (model, policy, target, batch size)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .precision import LayerPrecision
from .workload import Workload

LAYER_COLUMNS = (
    "name", "op_type", "macs", "bits", "w_kind", "w_bits", "a_kind", "a_bits", "exec_kind", "exec_w_bits",
    "exec_a_bits", "device", "fallback", "latency_s", "compute_s", "memory_s", "bound", "energy_j",
    "weight_bytes", "activation_bytes",
)


def precision_label(p: LayerPrecision) -> str:
    """``w4a8``, ``fp16``, or ``w:shift4 a:int8`` for mixed kinds."""
    if p.w_kind == p.a_kind == "float" and p.w_bits == p.a_bits:
        return f"fp{p.w_bits}"
    if p.w_kind in ("int", "binary") and p.a_kind in ("int", "binary"):
        return f"w{p.w_bits}a{p.a_bits}"
    return f"w:{p.w_kind}{p.w_bits} a:{p.a_kind}{p.a_bits}"


def layer_columns(workload: Workload, precisions: Sequence[LayerPrecision], batch_size: int,
                  costs: dict[str, np.ndarray], execution: dict[str, np.ndarray]) -> dict:
    """The columns of a CostReport's per-layer table (MACs are per batch)."""
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
        "latency_s": costs["latency_s"],
        "compute_s": costs["compute_s"],
        "memory_s": costs["memory_s"],
        "bound": np.where(costs["compute_s"] >= costs["memory_s"], "compute", "memory"),
        "energy_j": costs["energy_j"],
        "weight_bytes": costs["weight_bytes"],
        "activation_bytes": costs["activation_bytes"],
    }
    return data


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
    #: The ops left float (softmax, norms): name, op type, the row each is charged to, bytes, latency, energy.
    float_ops: list[dict] = field(default_factory=list, repr=False)

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
            "peak_memory_bytes": self.peak_memory_bytes, "layers": records,
        }

    def summary(self) -> str:
        """One readable block of totals (used by ``hwqnn cost``)."""
        n_fallback = int(self.layers["fallback"].sum())
        bound = self.layers["bound"].value_counts().to_dict()
        return (f"target {self.target}, batch {self.batch_size}: latency {self.latency_s * 1e3:.4g} ms, "
                f"energy {self.energy_j * 1e3:.4g} mJ, size {self.size_bytes / 2**20:.4g} MiB, "
                f"peak memory {self.peak_memory_bytes / 2**20:.4g} MiB; {len(self.layers)} layers "
                f"({bound.get('compute', 0)} compute-bound, {bound.get('memory', 0)} memory-bound, "
                f"{n_fallback} on the fallback device)" + self._float_ops_summary())

    def _float_ops_summary(self) -> str:
        if not self.float_ops:
            return ""
        latency = sum(op["latency_s"] for op in self.float_ops)
        kinds = ", ".join(sorted({op["op_type"] for op in self.float_ops}))
        return (f"; {len(self.float_ops)} float ops ({kinds}) cost {latency * 1e3:.4g} ms, included in the totals and "
                f"in the layers they follow")
