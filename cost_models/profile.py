"""HardwareProfile: the validated, SI-unit view of one ``hardware_profiles/<name>.yaml``.

The loader (:mod:`cost_models.profile_loader`) builds these; cost models read them. Efficiency (per
precision), bandwidth derating, the per-layer and the per-inference overheads are the numbers
:func:`cost_models.calibrate` refits, so :meth:`HardwareProfile.with_params` swaps them without
rebuilding the precision tables.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .deployment import DeploymentSpec
from .errors import ProfileError

PROFILE_TYPES = ("roofline", "bitbrick", "bitserial")
PROVENANCE_KEYS = ("source", "derived")
MEMORY_LEVELS = ("dram", "sram", "link")
ENERGY_FIELDS = ("int8_mac", "float16_mac", "float32_mac")
#: Per-precision conversion bytes a runtime moves beside the roofline (YAML field -> the key prefix of its
#: fitted values and priors): at the model's input and output, and at every layer's input.
BYTE_FIELDS = {"io_bytes_per_element": "io_bytes", "layer_input_bytes_per_element": "layer_input_bytes"}


@dataclass(frozen=True)
class ComputeKind:
    """Arithmetic of one compute kind on a device.

    ``peak_ops`` maps bits to operations per second (one MAC = 2 ops). On a roofline device the keys are
    the native bitwidths; on bitbrick/bitserial devices the single key is the base (brick) precision.
    ``emulated_as`` (kind, bits) runs this kind on another kind of the same device instead.
    """

    native_bits: tuple[int, ...] = ()
    peak_ops: dict[int, float] = field(default_factory=dict)
    emulated_as: tuple[str, int] | None = None


@dataclass(frozen=True)
class MemoryLevel:
    """One memory level: bandwidth (B/s, None = never a bottleneck), capacity (B), energy per byte (J/B).

    On-chip memory (``sram``) may hold the weights (up to its size, the rest streamed), hold every
    activation (a scratchpad that never spills them), or cache activations (``caches_activations``, a
    GPU's L2): a layer's input and output stay on chip up to its size, passed from producer to consumer,
    and only the excess goes through DRAM.
    """

    name: str
    bandwidth: float | None
    size: float | None
    energy_per_byte: float
    holds_weights: bool = False
    holds_activations: bool = False
    caches_activations: bool = False


@dataclass(frozen=True)
class Tiling:
    """How a GPU spreads one GEMM: the output (rows = batch x output pixels, columns = output channels) is
    cut into ``tile_m x tile_n`` tiles, run ``units`` (SMs) at a time. A layer whose tiles fill 1.1 waves
    takes 2 waves, and a layer narrower than a tile still pays for the whole tile."""

    units: int
    tile_m: int
    tile_n: int

    def factor(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Per layer, time of the waves it occupies / time of its useful work (>= 1)."""
        rows, columns = np.maximum(np.asarray(rows, float), 1), np.maximum(np.asarray(columns, float), 1)
        tiles = np.ceil(rows / self.tile_m) * np.ceil(columns / self.tile_n)
        waves = np.ceil(tiles / self.units)
        return waves * self.units * self.tile_m * self.tile_n / (rows * columns)


@dataclass(frozen=True)
class ProfileNumber:
    """One number of a profile as ``hwqnn profiles show`` lists it: its dotted field, its value as written,
    and where it comes from (``source: ...``, ``derived: ...``, or ``default: ...`` when the file leaves
    it to the Horowitz defaults)."""

    field: str
    value: str
    provenance: str


@dataclass(frozen=True, eq=False)
class HardwareProfile:
    """A device: compute peaks per kind and bits, memory levels, energies, efficiency factors, fallback."""

    name: str
    description: str
    type: str
    file: str
    compute: dict[str, ComputeKind]
    memory: dict[str, MemoryLevel]
    efficiency: float
    bandwidth_derating: float
    layer_overhead_s: float
    energy_per_mac: dict[str, float]
    brick_bits: int = 1
    max_bits: int = 32
    fallback: str | None = None
    #: What the device's runtime executes natively (None: the profile does not say; see deployment.py).
    deployment: DeploymentSpec | None = None
    #: Efficiency per executed precision (``fp32``, ``int8``...), overriding ``efficiency`` there: a CPU's
    #: int8 kernels and its fp32 ones reach different shares of their peaks.
    efficiency_by_precision: dict[str, float] = field(default_factory=dict)
    #: Fixed cost of one inference call whatever the model (runtime launch, synchronisation, host copies of
    #: the input and output): paid once per batch, not per layer.
    inference_overhead_s: float = 0.0
    #: GPU tile and wave quantization (None: the device has no such granularity, or the profile does not say).
    tiling: Tiling | None = None
    #: Bytes moved through DRAM per element of the model's input (read by its first layer) and output
    #: (written by its last), by the precision that layer executes at (``fp32``, ``int8``...): the layout and
    #: Q/DQ conversions a runtime runs at the graph's edges (ONNX Runtime: NCHWc reorders around fp32 convs;
    #: QuantizeLinear + NHWC Transpose in, Transpose + DequantizeLinear out around int8 ones). Empty: none.
    io_bytes_per_element: dict[str, float] = field(default_factory=dict)
    #: Bytes moved through DRAM per element of each layer's input, by the precision the layer executes at,
    #: beyond its roofline: the runtime's per-layer conversions (ONNX Runtime: the QuantizeLinear of a float
    #: activation before an integer MatMul, a bias Add after it). Empty: none.
    layer_input_bytes_per_element: dict[str, float] = field(default_factory=dict)
    #: Datasheet-derived starting values of the numbers a calibration fitted (``efficiency``,
    #: ``layer_overhead_s``, ``efficiency_int8``...): what a refit starts from and must beat.
    priors: dict[str, float] = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    # --- derived views -------------------------------------------------------------------------
    @property
    def fallback_profile(self) -> HardwareProfile | None:
        """The device that runs what this one cannot (the loader resolves it when it loads this profile)."""
        if self.fallback is None:
            return None
        if "fallback" not in self._cache:
            raise ProfileError(f"fallback device {self.fallback!r} is not resolved: load this profile with "
                               f"cost_models.load_profile", file=self.file, field="fallback.value")
        return self._cache["fallback"]

    def with_fallback(self, device: HardwareProfile) -> HardwareProfile:
        """Attach the resolved fallback device (the loader's job; a profile never loads files itself)."""
        self._cache["fallback"] = device
        return self

    def execution_tables(self):
        """Per (w_kind, a_kind, w_bits, a_bits): where and how a MAC runs (cached, see execution.py)."""
        if "tables" not in self._cache:
            from .execution import build_tables

            self._cache["tables"] = build_tables(self)
        return self._cache["tables"]

    def efficiency_for(self, label: str) -> float:
        """The efficiency of MACs executed at ``label`` (``int8``...): its own, else ``efficiency``."""
        return self.efficiency_by_precision.get(label, self.efficiency)

    def efficiency_scale(self) -> np.ndarray | None:
        """Per execution-table cell, ``efficiency / efficiency_for(cell's precision)`` (None: all 1; cached)."""
        if not self.efficiency_by_precision:
            return None
        if "efficiency_scale" not in self._cache:
            from .execution import PRECISION_LABEL_PREFIX, label_codes
            from .precision import COMPUTE_KINDS

            codes = label_codes(self.execution_tables())
            scale = np.ones(int(codes.max()) + 1)
            for k, kind in enumerate(COMPUTE_KINDS):
                for bits in range(1, 65):
                    label = f"{PRECISION_LABEL_PREFIX[kind]}{bits}"
                    if label in self.efficiency_by_precision and k * 64 + bits < len(scale):
                        scale[k * 64 + bits] = self.efficiency / self.efficiency_by_precision[label]
            self._cache["efficiency_scale"] = scale[codes]
        return self._cache["efficiency_scale"]

    def bytes_scale(self, field_name: str) -> np.ndarray | None:
        """Per execution-table cell, the ``field_name`` (one of BYTE_FIELDS) bytes of the cell's precision (0
        where it has none; None: the profile lists none; cached)."""
        values = getattr(self, field_name)
        if not values:
            return None
        if field_name not in self._cache:
            from .execution import PRECISION_LABEL_PREFIX, label_codes
            from .precision import COMPUTE_KINDS

            codes = label_codes(self.execution_tables())
            table = np.zeros(max(int(codes.max()) + 1, len(COMPUTE_KINDS) * 64 + 65))
            for k, kind in enumerate(COMPUTE_KINDS):
                for bits in range(1, 65):
                    label = f"{PRECISION_LABEL_PREFIX[kind]}{bits}"
                    if label in values:
                        table[k * 64 + bits] = values[label]
            self._cache[field_name] = table[codes]
        return self._cache[field_name]

    def native_precisions(self) -> dict[str, tuple[int, ...]]:
        return {kind: spec.native_bits for kind, spec in self.compute.items() if spec.native_bits}

    # --- calibration -------------------------------------------------------------------------------
    def prior_profile(self) -> HardwareProfile:
        """This profile with every calibrated number back at its prior (itself where none was calibrated)."""
        if not self.priors:
            return self
        prefixes = ("efficiency_", *(f"{prefix}_" for prefix in BYTE_FIELDS.values()))
        scalars = {k: v for k, v in self.priors.items() if not k.startswith(prefixes)}
        default = scalars.get("efficiency", self.efficiency)
        # a per-precision prior equal to the scalar one is the scalar: the fit added that precision, so the
        # prior has none, and a refit of one precision moves the others with it, as it did the first time
        by_precision = {label: self.priors.get(f"efficiency_{label}", value)
                        for label, value in self.efficiency_by_precision.items()
                        if self.priors.get(f"efficiency_{label}", value) != default}
        byte_maps = {name: {label: self.priors.get(f"{prefix}_{label}", value)
                            for label, value in getattr(self, name).items()}
                     for name, prefix in BYTE_FIELDS.items() if getattr(self, name)}
        notes = {k: "prior (datasheet-derived starting value) of a calibrated number" for k in self.priors}
        return self.with_params(**scalars, efficiency_by_precision=by_precision, notes=notes, priors={}, **byte_maps)

    def with_params(
        self,
        *,
        efficiency: float | None = None,
        bandwidth_derating: float | None = None,
        layer_overhead_s: float | None = None,
        inference_overhead_s: float | None = None,
        efficiency_by_precision: dict[str, float] | None = None,
        io_bytes_per_element: dict[str, float] | None = None,
        layer_input_bytes_per_element: dict[str, float] | None = None,
        name: str | None = None,
        notes: dict[str, str] | None = None,
        priors: dict[str, float] | None = None,
    ) -> HardwareProfile:
        """A copy with new efficiency / derating / overheads (and per-precision efficiencies: given, they
        replace the profile's); precision tables are shared (they do not use them). ``priors`` (keys as in
        :attr:`priors`) replace the profile's and are written as each number's ``prior:``."""
        raw = copy.deepcopy(self.raw)
        notes = notes or {}
        changes: dict[str, Any] = {}
        if priors is not None:
            changes["priors"] = {k: float(v) for k, v in priors.items()}
        all_priors = changes.get("priors", self.priors)

        def leaf(key: str, value, default_note: str) -> dict:
            node = {"value": value, "derived": notes.get(key, default_note)}
            if key in all_priors:
                prior = all_priors[key]
                node["prior"] = f"{prior * 1e6:.6g} us" if key.endswith("overhead_s") else round(prior, 6)
            return node

        if efficiency_by_precision is not None:
            changes["efficiency_by_precision"] = {k: float(v) for k, v in efficiency_by_precision.items()}
            raw.pop("efficiency_by_precision", None)
            if efficiency_by_precision:
                raw["efficiency_by_precision"] = {
                    label: leaf(f"efficiency_{label}", round(float(value), 6),
                                f"set by HardwareProfile.with_params ({label} {value:.6g})")
                    for label, value in efficiency_by_precision.items()}
        for field_name, values in (("io_bytes_per_element", io_bytes_per_element),
                                   ("layer_input_bytes_per_element", layer_input_bytes_per_element)):
            if values is None:
                continue
            changes[field_name] = {k: float(v) for k, v in values.items()}
            old = raw.pop(field_name, None) or {}
            if values:
                raw[field_name] = {
                    label: leaf(f"{BYTE_FIELDS[field_name]}_{label}", round(float(value), 4),
                                _kept_note(old.get(label), value)
                                or f"set by HardwareProfile.with_params ({label} {value:.6g})")
                    for label, value in values.items()}
        for key, value, raw_value in (
            ("efficiency", efficiency, None if efficiency is None else round(float(efficiency), 6)),
            ("bandwidth_derating", bandwidth_derating,
             None if bandwidth_derating is None else round(float(bandwidth_derating), 6)),
            ("layer_overhead_s", layer_overhead_s,
             None if layer_overhead_s is None else f"{layer_overhead_s * 1e6:.6g} us"),
            ("inference_overhead_s", inference_overhead_s,
             None if inference_overhead_s is None else f"{inference_overhead_s * 1e6:.6g} us"),
        ):
            if value is None:
                continue
            changes[key] = float(value)
            raw_key = key.removesuffix("_s")
            raw[raw_key] = leaf(key, raw_value, f"set by HardwareProfile.with_params({key}={value:.6g})")
        if name is not None:
            changes["name"] = name
            raw["name"] = name
        shared = {k: v for k, v in self._cache.items() if k in ("tables", "fallback", "torch_tables")}
        return replace(self, raw=raw, _cache=shared, **changes)

    def to_dict(self) -> dict:
        """The YAML mapping this profile was read from, with any :meth:`with_params` changes."""
        return copy.deepcopy(self.raw)

    def numbers(self) -> list[ProfileNumber]:
        """Every number the cost model uses, with its provenance: the file's quantities in file order, then
        the energies the file leaves to the defaults."""
        written = [ProfileNumber(field, _value_text(leaf["value"]),
                                 "; ".join(f"{k}: {leaf[k]}" for k in PROVENANCE_KEYS if k in leaf))
                   for field, leaf in _quantities(self.raw)]
        present = {row.field for row in written}
        return written + [row for row in self._default_energies() if row.field not in present]

    def _default_energies(self) -> list[ProfileNumber]:
        from .energy import DEFAULT_ENERGY_PER_BYTE, HOROWITZ_SOURCE, default_mac_energy

        note = f"default: {HOROWITZ_SOURCE}"
        rows = [ProfileNumber(f"energy.{key}", f"{default_mac_energy(key) * 1e12:.4g} pJ", note)
                for key in ENERGY_FIELDS]
        rows += [ProfileNumber(f"memory.{level}.energy_per_byte", f"{DEFAULT_ENERGY_PER_BYTE[level] * 1e12:.4g} pJ/B",
                               note) for level in self.memory if level in DEFAULT_ENERGY_PER_BYTE]
        return rows

    def summary(self) -> str:
        """A few readable lines for ``hwqnn profiles show``."""
        lines = [f"{self.name} ({self.type}): {self.description}", f"  file: {self.file}"]
        for kind, spec in self.compute.items():
            if spec.emulated_as:
                lines.append(f"  {kind}: emulated as {spec.emulated_as[0]}{spec.emulated_as[1]}")
                continue
            peaks = ", ".join(f"{bits}-bit {ops / 1e12:.4g} TOPS" for bits, ops in sorted(spec.peak_ops.items()))
            lines.append(f"  {kind}: native bits {list(spec.native_bits)}; peak {peaks}")
        for level in self.memory.values():
            bandwidth = "-" if level.bandwidth is None else f"{level.bandwidth / 1e9:.4g} GB/s"
            size = "-" if level.size is None else f"{level.size / 2**20:.6g} MiB"
            lines.append(f"  memory {level.name}: {bandwidth}, {size}, {level.energy_per_byte * 1e12:.4g} pJ/B")
        per_precision = "".join(f", {label} {value:.3g}" for label, value in self.efficiency_by_precision.items())
        lines.append(f"  efficiency {self.efficiency:.3g}{per_precision}, bandwidth derating "
                     f"{self.bandwidth_derating:.3g}, layer overhead {self.layer_overhead_s * 1e6:.4g} us, "
                     f"inference overhead {self.inference_overhead_s * 1e6:.4g} us")
        for field_name, what in (("io_bytes_per_element", "model input/output"),
                                 ("layer_input_bytes_per_element", "each layer's input")):
            values = getattr(self, field_name)
            if values:
                lines.append(f"  conversion bytes per element of {what}: "
                             + ", ".join(f"{label} {value:.3g}" for label, value in values.items()))
        if self.tiling is not None:
            t = self.tiling
            lines.append(f"  tiling: {t.tile_m}x{t.tile_n} output tiles over {t.units} units (wave quantization)")
        if self.fallback:
            lines.append(f"  fallback device: {self.fallback}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"HardwareProfile(name={self.name!r}, type={self.type!r}, file={Path(self.file).name!r})"


def _kept_note(node: Any, value: float) -> str | None:
    """The provenance of an unchanged leaf (its value is ``value``), to keep where nothing replaces it."""
    if not isinstance(node, dict) or node.get("value") != value:
        return None
    return node.get("derived") or node.get("source")


def _quantities(node: Any, path: str = ""):
    """(dotted field, leaf) for every ``{value: ..., source/derived: ...}`` leaf, in file order."""
    if isinstance(node, dict) and "value" in node:
        yield path, node
    elif isinstance(node, dict):
        for key, child in node.items():
            yield from _quantities(child, f"{path}.{key}" if path else str(key))


def _value_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)
