"""Costs of the ops that stay float: memory-bound kernels whose cost no policy changes.

A costed float op (``pricing`` ``"kernel"`` or ``"unpriced"``, see :mod:`cost_models.float_ops`) reads its
activation inputs and writes its output once through DRAM at the precision the device runs float at
(:func:`~cost_models.float_ops.float_op_bits`), plus one per-layer overhead: ``latency = bytes *
seconds_per_byte + overhead``, ``energy = bytes * energy_per_byte``; its peak-memory term is those bytes.
Fused ops cost nothing and get no table row.

The search sees these constants through the quantizable row each op is charged to
(:meth:`FloatOpPrices.per_row`); a cost report shows each op as its own row
(:meth:`FloatOpPrices.table_columns`), after the row it followed in the run.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from .float_ops import FloatOpInfo, float_op_bits
from .profile import HardwareProfile
from .workload import Workload


@dataclass(frozen=True, eq=False)
class FloatOpLayout:
    """What pricing needs of a workload's float ops, worked out once per workload (see float_op_layout).

    ``costed`` indexes the costed ops in ``workload.float_ops``; the arrays are over those ops.
    """

    n_rows: int
    records: tuple[dict, ...]  # per float op, fused ones included: name, op type, pricing, charged_to
    costed: np.ndarray
    charged_rows: np.ndarray  # the quantizable row each costed op is charged to
    elems: np.ndarray  # per-sample elements read and written
    merge_order: np.ndarray  # interleaves [quantizable rows..., costed ops...] in execution order
    ops: tuple[FloatOpInfo, ...]


_LAYOUTS: dict[int, FloatOpLayout] = {}


def float_op_layout(workload: Workload) -> FloatOpLayout:
    """The workload's float-op layout, cached per workload object (dropped with it)."""
    layout = _LAYOUTS.get(id(workload))
    if layout is None:
        index = {name: i for i, name in enumerate(workload.names)}
        rows = workload.float_op_rows()
        costed = [i for i, op in enumerate(workload.float_ops) if op.costed]
        ops = tuple(workload.float_ops[i] for i in costed)
        anchors = np.array([index.get(op.after_layer, -1) for op in ops], dtype=float)
        layout = _LAYOUTS[id(workload)] = FloatOpLayout(
            n_rows=len(workload),
            records=tuple({"name": op.name, "op_type": op.op_type, "pricing": op.pricing,
                           "charged_to": workload.names[row]} for op, row in zip(workload.float_ops, rows)),
            costed=np.array(costed, dtype=np.int64),
            charged_rows=np.array([rows[i] for i in costed], dtype=np.int64),
            elems=np.array([op.in_elems + op.out_elems for op in ops], dtype=float),
            merge_order=np.argsort(np.concatenate([np.arange(len(workload), dtype=float), anchors + 0.5]),
                                   kind="stable"),
            ops=ops,
        )
        weakref.finalize(workload, _LAYOUTS.pop, id(workload), None)
    return layout


@dataclass(frozen=True, eq=False)
class FloatOpPrices:
    """Per costed float op, in execution order: its bits, bytes moved (per batch) and costs."""

    layout: FloatOpLayout
    bits: np.ndarray
    bytes: np.ndarray
    memory_s: np.ndarray
    latency_s: np.ndarray
    energy_j: np.ndarray

    @property
    def ops(self) -> tuple[FloatOpInfo, ...]:
        return self.layout.ops

    def per_row(self) -> dict[str, np.ndarray]:
        """Summed latency and energy, and the largest bytes, of the ops charged to each quantizable row."""
        rows, n = self.layout.charged_rows, self.layout.n_rows
        peak = np.zeros(n)
        np.maximum.at(peak, rows, self.bytes)
        return {"float_latency": np.bincount(rows, self.latency_s, n),
                "float_energy": np.bincount(rows, self.energy_j, n), "float_peak": peak}

    def records(self) -> list[dict]:
        """One record per float op (fused ones at cost 0): the layout's record plus bits, bytes, latency, energy."""
        out = [{**record, "bits": 0, "bytes": 0.0, "latency_s": 0.0, "energy_j": 0.0} for record in self.layout.records]
        values = zip(self.bits.astype(int).tolist(), self.bytes.tolist(), self.latency_s.tolist(), self.energy_j.tolist())
        for i, (bits, moved, latency, energy) in zip(self.layout.costed.tolist(), values):
            out[i].update(bits=bits, bytes=moved, latency_s=latency, energy_j=energy)
        return out

    @property
    def warnings(self) -> list[str]:
        """One line per op the tables do not know, with the estimate it got."""
        return [f"'{op.name}' ({op.op_type}) is not an op the cost model knows: estimated as a memory-bound "
                f"fp{bits:.0f} kernel reading its inputs and writing its output ({size:.4g} bytes), plus one layer "
                f"overhead" for op, bits, size in zip(self.ops, self.bits, self.bytes) if op.pricing == "unpriced"]

    def table_columns(self, device: str) -> dict[str, np.ndarray]:
        """The report-table columns of the float-op rows (no MACs, no weights, memory-bound)."""
        n = len(self.ops)
        bits = self.bits.astype(np.int64)
        kinds = np.array(["float" if op.int_bits is None else "int" for op in self.ops], dtype=object)

        def same(value) -> np.ndarray:
            return np.full(n, value, dtype=object)

        return {
            "name": np.array([op.name for op in self.ops], dtype=object),
            "op_type": np.array([op.op_type for op in self.ops], dtype=object),
            "macs": np.zeros(n),
            "bits": np.array([f"{'fp' if k == 'float' else 'int'}{b}" for k, b in zip(kinds, bits.tolist())], dtype=object),
            "w_kind": kinds, "w_bits": bits, "a_kind": kinds, "a_bits": bits,
            "exec_kind": kinds, "exec_w_bits": bits, "exec_a_bits": bits,
            "device": same(device), "fallback": np.zeros(n, dtype=bool),
            "latency_s": self.latency_s, "compute_s": np.zeros(n), "memory_s": self.memory_s,
            "bound": same("memory"), "energy_j": self.energy_j,
            "weight_bytes": np.zeros(n), "activation_bytes": self.bytes,
            "pricing": np.array(["unpriced" if op.pricing == "unpriced" else "float" if op.int_bits is None
                                 else "joined" for op in self.ops], dtype=object),
        }


def device_float_bits(profile: HardwareProfile) -> int:
    """The width the device's runtime runs float layers at: its deployment's ``float_bits`` where the
    profile has a deployment section, else 16 where it computes fp16 natively, else 32 (also for a device
    without a float unit: an upper bound, as its runtime runs such ops quantized or on a host)."""
    if profile.deployment is not None:
        return int(profile.deployment.float_bits)
    return 16 if 16 in profile.native_precisions().get("float", ()) else 32


def price_float_ops(workload: Workload, batch_size: int, float_bits: int, seconds_per_byte: float,
                    energy_per_byte: float, overhead_s: float, joined_at_int_bits: bool = True,
                    cached_bytes: float = 0.0) -> FloatOpPrices:
    """Cost every costed float op of ``workload`` on a device running float at ``float_bits`` with these
    DRAM and overhead numbers (the ops with quantized inputs at their ``int_bits``, unless told not to).
    ``cached_bytes``: an on-chip cache keeps that many of each op's bytes (a GPU's L2; see MemoryLevel)."""
    layout = float_op_layout(workload)
    bits = np.array([float_op_bits(op.op_type, op.pricing, float_bits, op.int_bits if joined_at_int_bits else None)
                     for op in layout.ops], dtype=float)
    moved = layout.elems * batch_size * bits / 8
    from_dram = np.maximum(moved - cached_bytes, 0.0)
    memory_s = from_dram * seconds_per_byte
    return FloatOpPrices(layout, bits=bits, bytes=moved, memory_s=memory_s, latency_s=memory_s + overhead_s,
                         energy_j=from_dram * energy_per_byte)
