"""Differentiable per-layer latency, energy and memory of a workload on one hardware profile.

Every cost is the *expected cost under stochastic rounding* of the bitwidths: the four integer corners
(floor/ceil of w_bits x floor/ceil of a_bits) are costed exactly and blended bilinearly, so the result
is exact at integers, piecewise-linear in between, and differentiable w.r.t. both bitwidths.

Per corner, a roofline: ``latency = max(compute, memory) + overhead (+ host transfer)`` where
``compute = MACs * seconds_per_MAC(kind, bits) / efficiency(precision) * waves`` (``waves`` >= 1: the
GPU tile and wave quantization of the profile's ``tiling``, 1 elsewhere) and ``memory`` is the slowest memory
level's ``bytes / (bandwidth * derating)``. Bytes moved (a documented proxy): the weights once per
batch, the input and the output activations, all at the *execution* precision (a 4-bit weight that
a GPU computes in INT8 moves as 8 bits). A smooth max (log-sum-exp, temperature 2% of the two terms)
replaces the hard max when ``smooth=True``; reports use the hard max.

Where the profile gives its runtime's conversion bytes (``io_bytes_per_element``: the layout and Q/DQ
conversions of the model's input, read by the first layer, and output, written by the last;
``layer_input_bytes_per_element``: a conversion of every layer's input, such as the QuantizeLinear before
an integer MatMul), ``elements * bytes(executed precision)`` go through DRAM on top of the roofline, per
corner like everything else.

Ops left float (the workload's ``float_ops``: softmax, norms, pooling, adds, activations...) are
memory-bound kernels at the device's float precision with one per-layer overhead each, or fused for free
(see cost_models.float_ops and cost_models.float_op_costs). Their costs do not depend on the policy: in
``layer_costs`` they are constants added to the row each is charged to (the quantizable op that ran
before it), so totals, the search's expected costs and the MILP all include them; ``evaluate`` takes
them back out of that row and reports each as its own row. The profile's per-inference overhead (launch,
synchronisation, host copies: once per batch) is charged to the first row the same way and reported as
its own ``overhead`` row.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from .errors import CostModelError, PolicyFormatError, ProfileError
from .execution import KIND_INDEX, MAX_BITS
from .float_op_costs import FloatOpPrices, device_float_bits, price_float_ops
from .precision import COMPUTE_KINDS, LayerPrecision
from .profile import BYTE_FIELDS, HardwareProfile
from .profile_loader import load_profile
from .report import CostReport, layer_columns
from .workload import Workload

SMOOTH_TEMPERATURE = 0.02  # of (compute + memory): the smooth max overshoots the hard max by <= 1.4%
PEAK_TEMPERATURE = 0.01  # of the largest activation term, for the smooth peak-memory max
#: Largest worst-case total cost (s or J) accepted: far beyond any real device, far below float32 overflow.
COST_CEILING = 1e30
SCALE_BYTES_PER_CHANNEL = 4  # one fp32 scale per output channel of a quantized weight
FLOAT = KIND_INDEX["float"]
FLOAT_OP_BYTES = 4  # the widest a float op (softmax, norms, adds...) reads and writes: float32


_COLUMNS: dict[int, dict] = {}


def workload_columns(workload: Workload, dtype: torch.dtype, device: torch.device) -> dict:
    """The workload's tensor columns plus out_channels, cached per workload object (dropped with it)."""
    per_workload = _COLUMNS.get(id(workload))
    if per_workload is None:
        per_workload = _COLUMNS[id(workload)] = {}
        weakref.finalize(workload, _COLUMNS.pop, id(workload), None)
    key = (dtype, str(device))
    if key not in per_workload:
        columns = dict(workload.tensors(device=device, dtype=dtype))
        columns["out_channels"] = torch.tensor([float(layer.out_channels) for layer in workload.layers],
                                               dtype=dtype, device=device)
        per_workload[key] = columns
    return per_workload[key]


def _inverse(value: float) -> float:
    """1 / value, or inf for a value <= 0 (so a broken hand-made profile reads as out of range, not a crash)."""
    return math.inf if not value > 0 else 1.0 / value


def _largest(values) -> float:
    """The largest value, inf if any is NaN or infinite (plain max() lets a NaN slip through), 0 if none."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return 0.0
    return math.inf if not np.isfinite(array).all() else float(array.max())


def smooth_max(a: Tensor, b: Tensor, temperature: float = SMOOTH_TEMPERATURE) -> Tensor:
    """log-sum-exp max of two non-negative tensors, its temperature relative to their size."""
    scale = ((a + b).detach() * temperature).clamp_min(1e-30)
    return scale * torch.logaddexp(a / scale, b / scale)


class CostModel:
    """Costs of ``workload`` on ``profile`` at ``batch_size``, vectorized over layers and candidates."""

    def __init__(self, workload: Workload, profile: HardwareProfile | str, batch_size: int = 1,
                 float_op_bits: int | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise CostModelError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not isinstance(workload, Workload) or len(workload) == 0:
            raise CostModelError(f"CostModel needs a non-empty Workload (see extract_workload), got {workload!r}")
        self.workload = workload
        self.profile = load_profile(profile)
        self.batch_size = batch_size
        if float_op_bits is not None and float_op_bits not in (8, 16, 32):
            raise CostModelError(f"float_op_bits must be 8, 16 or 32, got {float_op_bits!r}")
        #: Width of the non-GEMM ops (adds, pooling, softmax...): None, the device's float width (what hwqnn's
        #: exports run), the ops whose inputs hwqnn quantizes at their integer width; given, every such op at
        #: that width (8 for a fully integer deployment, TFLite int8, as published benchmarks measure).
        self.float_op_bits = float_op_bits
        deployment = self.profile.deployment
        #: True when the device's runtime stores weights in its containers (TensorRT int8), not bit-packed.
        self.stores_containers = deployment is not None and deployment.storage == "container"
        self.devices = (self.profile, self.profile.fallback_profile or self.profile)
        self._cache: dict = {}
        self._check_worst_case()

    def _check_worst_case(self) -> None:
        """Refuse a profile whose costs could overflow to inf (and blend to NaN) on this workload.

        An upper bound of every cost over every kind and bitwidth: the slowest and costliest MAC of the
        execution tables, every byte at 32 bits on the slowest and costliest memory level. Validated
        profiles always pass; this guards profiles built in code (``with_params``, hand-made objects).
        """
        tables = self.profile.execution_tables()
        layers = self.workload.layers
        batch = self.batch_size
        tiling = self.wave_factors().max()
        macs = sum(layer.macs for layer in layers) * batch * tiling
        moved = (sum(layer.weight_elems + layer.in_elems + layer.out_elems for layer in layers) * MAX_BITS / 8
                 + sum(op.in_elems + op.out_elems for op in self.workload.float_ops) * FLOAT_OP_BYTES) * batch
        levels = [(p, level) for p in self.devices for level in p.memory.values()]
        slowest_byte = _largest([_inverse(level.bandwidth * p.bandwidth_derating) for p, level in levels
                                 if level.bandwidth is not None])
        worst = {
            "latency": macs * _largest(tables.seconds_per_mac)
            * _largest([_inverse(min([p.efficiency, *p.efficiency_by_precision.values()])) for p in self.devices])
            + moved * slowest_byte
            + (len(layers) + len(self.workload.float_ops)) * _largest([p.layer_overhead_s for p in self.devices])
            + self.profile.inference_overhead_s
            + (layers[0].in_elems + layers[-1].out_elems + sum(layer.in_elems for layer in layers)) * batch
            * _largest([*self.profile.io_bytes_per_element.values(),
                        *self.profile.layer_input_bytes_per_element.values(), 0.0]) * slowest_byte,
            "energy": macs * _largest(tables.energy_per_mac)
            + moved * len(levels) * _largest([level.energy_per_byte for _, level in levels]),
        }
        self._refuse_unbounded({f"worst-case {name}": value for name, value in worst.items()})

    def _refuse_unbounded(self, costs: dict[str, float]) -> None:
        """ProfileError naming the profile and each cost that is NaN, infinite or beyond COST_CEILING."""
        bad = {name: value for name, value in costs.items() if not (math.isfinite(value) and value <= COST_CEILING)}
        if bad:
            listed = ", ".join(f"{name} {value:.3g}" for name, value in bad.items())
            raise ProfileError(f"costs of this model at batch {self.batch_size} on {self.profile.name} are not finite "
                               f"or absurdly large ({listed}); the model and batch are too large or a number in the "
                               f"profile is out of range (check it with 'hwqnn profiles validate {self.profile.file}')",
                               file=self.profile.file)

    # --- cached tensors ----------------------------------------------------------------------------
    def _tables(self, dtype: torch.dtype, device: torch.device) -> dict[str, Tensor]:
        key = ("torch_tables", dtype, str(device))
        shared = self.profile._cache.setdefault("torch_tables", {})
        if key not in shared:
            t = self.profile.execution_tables()
            shared[key] = {
                "seconds_per_mac": torch.as_tensor(t.seconds_per_mac.ravel(), dtype=dtype, device=device),
                "energy_per_mac": torch.as_tensor(t.energy_per_mac.ravel(), dtype=dtype, device=device),
                "w_bits": torch.as_tensor(t.w_bits.ravel(), dtype=dtype, device=device),
                "a_bits": torch.as_tensor(t.a_bits.ravel(), dtype=dtype, device=device),
                "device": torch.as_tensor(t.device.ravel(), dtype=torch.long, device=device),
            }
        tables = {}  # this profile's own cells, beside the shared ones
        scales = [p.efficiency_scale() for p in self.devices]
        if any(scale is not None for scale in scales):
            own_key = ("efficiency_scale", dtype, str(device))  # per profile instance: calibration changes it
            if own_key not in self._cache:
                t = self.profile.execution_tables()
                cells = [np.ones(t.kind.shape) if scale is None else scale for scale in scales]
                merged = np.where(t.device == 1, cells[-1], cells[0]).ravel()
                self._cache[own_key] = torch.as_tensor(merged, dtype=dtype, device=device)
            tables["efficiency_scale"] = self._cache[own_key]
        for field_name, prefix in BYTE_FIELDS.items():  # this profile's runtime's conversions (not its fallback's)
            per_cell = self.profile.bytes_scale(field_name)
            if per_cell is None:
                continue
            own_key = (prefix, dtype, str(device))
            if own_key not in self._cache:
                on_main = self.profile.execution_tables().device != 1
                self._cache[own_key] = torch.as_tensor(np.where(on_main, per_cell, 0.0).ravel(), dtype=dtype,
                                                       device=device)
            tables[prefix] = self._cache[own_key]
        return {**shared[key], **tables} if tables else shared[key]


    def _constants(self, dtype: torch.dtype, device: torch.device) -> dict:
        """Workload columns as tensors, and per-device scalars (index 0: this profile, 1: its fallback)."""
        key = (dtype, str(device))
        if key not in self._cache:
            def seconds_per_byte(p: HardwareProfile, level: str) -> float:
                lv = p.memory.get(level)
                return 0.0 if lv is None or lv.bandwidth is None else 1.0 / (lv.bandwidth * p.bandwidth_derating)

            def scalars(p: HardwareProfile) -> dict[str, float]:
                sram = p.memory.get("sram")
                return {
                    "inv_efficiency": 1.0 / p.efficiency,
                    "overhead": p.layer_overhead_s,
                    "dram_spb": seconds_per_byte(p, "dram"),
                    "sram_spb": seconds_per_byte(p, "sram"),
                    "dram_epb": p.memory["dram"].energy_per_byte,
                    "sram_epb": 0.0 if sram is None else sram.energy_per_byte,
                    "has_sram": float(sram is not None),
                    "sram_size": 0.0 if sram is None else (sram.size or 0.0),
                    "holds_weights": float(sram is not None and sram.holds_weights),
                    "holds_activations": float(sram is not None and sram.holds_activations),
                    "caches_activations": float(sram is not None and sram.caches_activations and not sram.holds_activations),
                }

            link = self.profile.memory.get("link")
            consts = dict(workload_columns(self.workload, dtype, device))
            consts["wave_factor"] = torch.as_tensor(self.wave_factors(), dtype=dtype, device=device)
            once = np.zeros(len(self.workload))
            once[0] = self.profile.inference_overhead_s
            consts["io_elems"] = torch.as_tensor(self.io_elems(), dtype=dtype, device=device)
            consts["inference_latency"] = torch.as_tensor(once, dtype=dtype, device=device)
            consts.update(self._float_op_columns(scalars(self.profile), dtype, device))
            consts["devices"] = [scalars(p) for p in self.devices]
            consts["link_spb"] = 0.0 if link is None else 1.0 / (link.bandwidth * self.profile.bandwidth_derating)
            consts["link_epb"] = 0.0 if link is None else link.energy_per_byte
            self._cache[key] = consts
        return self._cache[key]

    def io_elems(self) -> np.ndarray:
        """Per layer, the model-input and model-output elements (per sample) it converts at the graph's
        edges: the first layer's input and the last layer's output (see ``io_bytes_per_element``)."""
        elems = np.zeros(len(self.workload))
        elems[0] += self.workload.layers[0].in_elems
        elems[-1] += self.workload.layers[-1].out_elems
        return elems

    def wave_factors(self) -> np.ndarray:
        """Per layer, the profile's tile and wave quantization of its GEMM at this batch (1 without tiling):
        rows = batch x output positions, columns = output channels (see ``Tiling``)."""
        tiling = self.profile.tiling
        if tiling is None:
            return np.ones(len(self.workload))
        layers = self.workload.layers
        columns = np.array([float(layer.out_channels) for layer in layers])
        rows = np.array([layer.out_elems for layer in layers]) / np.maximum(columns, 1) * self.batch_size
        return tiling.factor(rows, columns)

    def _float_op_columns(self, device_scalars: dict, dtype: torch.dtype, device: torch.device) -> dict[str, Tensor]:
        """Per quantizable row: latency, energy and peak bytes of the float ops charged to it.

        Float ops are memory-bound kernels whose cost no policy changes (see cost_models.float_op_costs),
        so they are constants added to the row each is charged to: every candidate of that row gets the
        same amount, and totals, the search's expected costs and the MILP all include them.
        """
        per_row = self._float_op_prices(device_scalars).per_row()
        return {name: torch.as_tensor(values, dtype=dtype, device=device) for name, values in per_row.items()}

    def _float_op_prices(self, device_scalars: dict | None = None) -> FloatOpPrices:
        """The float ops' costs on this profile (cached): memory-bound kernels on its DRAM (its SRAM where
        that holds the activations), at ``float_op_bits``."""
        prices = self._cache.get("float_op_prices")
        if prices is None:
            if device_scalars is None:  # they are priced while the constants are built
                self._constants(torch.float64, torch.device("cpu"))
                return self._cache["float_op_prices"]
            # On a device whose on-chip memory holds the activations (the Edge TPU), they never leave it.
            level = "sram" if device_scalars["holds_activations"] else "dram"
            cached = device_scalars["sram_size"] if device_scalars["caches_activations"] else 0.0
            prices = self._cache["float_op_prices"] = price_float_ops(
                self.workload, self.batch_size, self.float_op_bits or device_float_bits(self.profile),
                device_scalars[f"{level}_spb"], device_scalars[f"{level}_epb"], device_scalars["overhead"],
                joined_at_int_bits=self.float_op_bits is None, cached_bytes=cached)
        return prices

    def float_op_costs(self) -> list[dict]:
        """One record per float op, fused ones included (cost 0): name, op type, pricing, the row it is
        charged to, bits, bytes, latency and energy."""
        return self._float_op_prices().records()

    # --- the differentiable core ----------------------------------------------------------------------
    def layer_costs(self, w_kind, w_bits, a_kind, a_bits, *, smooth: bool = True, w_side=None) -> dict[str, Tensor]:
        """Per-layer costs for kinds (indices into COMPUTE_KINDS) and bits shaped [..., L].

        ``w_side``: bytes stored per output channel beside a quantized weight's codes (scale, zero point,
        lookup table; see ``LayerPrecision.w_side_bytes``), broadcast like the bits; default one fp32 scale.

        Returns ``latency_s``, ``energy_j``, ``weight_bytes`` (storage, incl. per-channel scales),
        ``activation_bytes`` (input + output, the peak-memory term), ``compute_s``, ``memory_s`` and
        ``fallback`` (fraction run on the fallback device), each shaped like the broadcast inputs.
        """
        w_bits, a_bits = torch.as_tensor(w_bits), torch.as_tensor(a_bits)
        dtype = torch.promote_types(w_bits.dtype, a_bits.dtype)
        if not dtype.is_floating_point:
            dtype = torch.float64
        device = w_bits.device
        w_kind = torch.as_tensor(w_kind, device=device).long()
        a_kind = torch.as_tensor(a_kind, device=device).long()
        n_layers = len(self.workload)
        try:
            shape = torch.broadcast_shapes(w_kind.shape, w_bits.shape, a_kind.shape, a_bits.shape, (n_layers,))
        except RuntimeError:
            raise CostModelError(
                f"layer_costs inputs must broadcast to [..., {n_layers}] (one entry per workload layer); got shapes "
                f"w_kind {tuple(w_kind.shape)}, w_bits {tuple(w_bits.shape)}, a_kind {tuple(a_kind.shape)}, "
                f"a_bits {tuple(a_bits.shape)}") from None
        c = self._constants(dtype, device)
        tables = self._tables(dtype, device)
        wk, ak = w_kind.expand(shape), a_kind.expand(shape)
        wb = w_bits.to(dtype).expand(shape).clamp(1, MAX_BITS)
        ab = a_bits.to(dtype).expand(shape).clamp(1, MAX_BITS)

        # storage terms are linear in the bits: no corners needed
        batch = float(self.batch_size)
        is_param = c["weight_is_param"]
        quantized = (wk != FLOAT).to(dtype)
        activation_bytes = ((c["in_elems"] + c["out_elems"]) * batch * ab
                            + (1 - is_param) * c["weight_elems"] * batch * wb) / 8

        # the four integer corners, blended bilinearly
        w_lo = wb.detach().floor().clamp(max=MAX_BITS - 1)
        a_lo = ab.detach().floor().clamp(max=MAX_BITS - 1)
        w_t, a_t = wb - w_lo, ab - a_lo
        w_idx = torch.stack([w_lo, w_lo, w_lo + 1, w_lo + 1]).long() - 1
        a_idx = torch.stack([a_lo, a_lo + 1, a_lo, a_lo + 1]).long() - 1
        blend = torch.stack([(1 - w_t) * (1 - a_t), (1 - w_t) * a_t, w_t * (1 - a_t), w_t * a_t])
        flat = ((wk * len(COMPUTE_KINDS) + ak) * MAX_BITS + w_idx) * MAX_BITS + a_idx

        def gather(name: str) -> Tensor:
            return tables[name].index_select(0, flat.reshape(-1)).view(flat.shape)

        on_fallback = gather("device").to(dtype)
        # Storage: packed at the policy's bits, or (a fixed-container runtime) at the width the layer executes in.
        stored_bits = (blend * gather("w_bits")).sum(0) if self.stores_containers else wb
        side = SCALE_BYTES_PER_CHANNEL * quantized if w_side is None else torch.as_tensor(w_side, dtype=dtype) * quantized
        weight_bytes = is_param * (c["weight_elems"] * stored_bits / 8 + c["out_channels"] * side)
        total_weight_bytes = weight_bytes.sum(-1, keepdim=True).clamp_min(1.0)
        main, fallback = c["devices"]
        has_fallback = self.devices[1] is not self.devices[0]

        def per_device(name: str):
            if not has_fallback or main[name] == fallback[name]:
                return main[name]
            return main[name] + on_fallback * (fallback[name] - main[name])

        macs = c["macs"] * batch
        compute_s = macs * gather("seconds_per_mac") * per_device("inv_efficiency")
        if self.profile.tiling is not None:  # the layer occupies whole tiles and waves of this device's units
            compute_s = compute_s * (1 + (1 - on_fallback) * (c["wave_factor"] - 1))
        if "efficiency_scale" in tables:  # per-precision efficiencies (profile.efficiency_by_precision)
            compute_s = compute_s * gather("efficiency_scale")
        moved_weight_elems = c["weight_elems"] * (is_param + (1 - is_param) * batch)
        w_moved = moved_weight_elems * gather("w_bits") / 8
        a_moved = (c["in_elems"] + c["out_elems"]) * batch * gather("a_bits") / 8
        resident = per_device("holds_weights") * (per_device("sram_size") / total_weight_bytes).clamp(max=1.0) * is_param
        a_dram = a_moved * (1 - per_device("holds_activations"))
        caches = per_device("caches_activations")
        if torch.is_tensor(caches) or caches:  # an L2 keeps the first sram_size bytes of the layer's activations
            a_dram = a_dram - caches * torch.minimum(a_dram, torch.as_tensor(per_device("sram_size"), dtype=dtype))
        dram_bytes = w_moved * (1 - resident) + a_dram
        sram_bytes = (w_moved + a_moved) * per_device("has_sram")
        memory_s = torch.maximum(dram_bytes * per_device("dram_spb"), sram_bytes * per_device("sram_spb"))
        link_bytes = on_fallback * a_moved
        bound = smooth_max(compute_s, memory_s) if smooth else torch.maximum(compute_s, memory_s)
        latency = (bound + per_device("overhead") + link_bytes * c["link_spb"] + c["float_latency"]
                   + c["inference_latency"])
        energy = (macs * gather("energy_per_mac") + dram_bytes * per_device("dram_epb")
                  + sram_bytes * per_device("sram_epb") + link_bytes * c["link_epb"] + c["float_energy"])
        for prefix, elems in (("io_bytes", c["io_elems"]), ("layer_input_bytes", c["in_elems"])):
            if prefix in tables:  # the runtime's layout and Q/DQ conversions (see BYTE_FIELDS)
                converted = elems * batch * gather(prefix)
                latency = latency + converted * main["dram_spb"]
                energy = energy + converted * main["dram_epb"]
        return {
            "latency_s": (blend * latency).sum(0),
            "energy_j": (blend * energy).sum(0),
            "weight_bytes": weight_bytes,
            "activation_bytes": torch.maximum(activation_bytes, c["float_peak"]),
            "compute_s": (blend * compute_s).sum(0),
            "memory_s": (blend * memory_s).sum(0),
            "fallback": (blend * on_fallback).sum(0),
        }

    @staticmethod
    def totals(costs: dict[str, Tensor], smooth: bool = False, fixed_bytes: float = 0.0) -> dict[str, Tensor]:
        """Sums over the layer axis; size adds ``fixed_bytes`` (the workload's other float tensors, see
        ``Workload.float_param_bytes``); peak memory = size + the largest activation term (a log-sum-exp
        max when ``smooth``)."""
        act = costs["activation_bytes"]
        if smooth:
            scale = (act.detach().amax(-1, keepdim=True) * PEAK_TEMPERATURE).clamp_min(1e-30)
            largest = (scale * torch.logsumexp(act / scale, dim=-1, keepdim=True)).squeeze(-1)
        else:
            largest = act.amax(-1)
        size = costs["weight_bytes"].sum(-1) + fixed_bytes
        return {
            "latency_s": costs["latency_s"].sum(-1),
            "energy_j": costs["energy_j"].sum(-1),
            "size_bytes": size,
            "peak_memory_bytes": size + largest,
        }

    # --- hard values for one policy ---------------------------------------------------------------------
    def evaluate(self, precisions: Sequence[LayerPrecision]) -> CostReport:
        """Exact costs of one integer policy (one LayerPrecision per workload layer, in order)."""
        if len(precisions) != len(self.workload):
            raise PolicyFormatError(f"evaluate needs one LayerPrecision per layer ({len(self.workload)} layers), "
                                    f"got {len(precisions)}")
        kinds = np.array([[KIND_INDEX[p.w_kind], KIND_INDEX[p.a_kind]] for p in precisions], dtype=np.int64)
        bits = np.array([[p.w_bits, p.a_bits] for p in precisions], dtype=np.float64)
        with torch.no_grad():
            side = torch.tensor([SCALE_BYTES_PER_CHANNEL if p.w_side_bytes is None else p.w_side_bytes
                                 for p in precisions], dtype=torch.float64)
            costs = self.layer_costs(torch.from_numpy(kinds[:, 0]), torch.from_numpy(bits[:, 0]),
                                     torch.from_numpy(kinds[:, 1]), torch.from_numpy(bits[:, 1]), smooth=False,
                                     w_side=side)
            totals = self.totals(costs, fixed_bytes=self.workload.float_param_bytes)
        tables = self.profile.execution_tables()
        cell = (kinds[:, 0], kinds[:, 1], bits[:, 0].astype(np.int64) - 1, bits[:, 1].astype(np.int64) - 1)
        execution = {
            "exec_kind": np.asarray(COMPUTE_KINDS)[tables.kind[cell]],
            "exec_w_bits": tables.w_bits[cell],
            "exec_a_bits": tables.a_bits[cell],
            "device": np.asarray([d.name for d in self.devices])[tables.device[cell]],
            "fallback": tables.device[cell] == 1,
        }
        self._refuse_unbounded({name: float(value) for name, value in totals.items()})
        prices = self._float_op_prices()
        columns = layer_columns(self.workload, precisions, self.batch_size,
                                {k: v.numpy() for k, v in costs.items()}, execution, prices, self.profile.name,
                                self.profile.inference_overhead_s)
        records = self._cache.get("float_op_records")
        if records is None:
            records = self._cache["float_op_records"] = self.float_op_costs()
        return CostReport(
            target=self.profile.name, batch_size=self.batch_size,
            latency_s=float(totals["latency_s"]), energy_j=float(totals["energy_j"]),
            size_bytes=float(totals["size_bytes"]), peak_memory_bytes=float(totals["peak_memory_bytes"]),
            layer_data=columns, float_ops=list(records), warnings=prices.warnings,
        )
