"""Parse and strictly validate one hardware profile document (the mapping read from its YAML file).

Every problem raises :class:`ProfileError` naming the file, the dotted field and what is wrong:
unknown or missing field, wrong type, bad unit, a number outside its physically sane range (which also
keeps every cost finite: no subnormal peak, no 1e300 J energy), or a number without ``source:`` or
``derived:``. The schema is documented in hardware_profiles/README.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ProfileError
from .precision import COMPUTE_KINDS
from .profile import (
    BYTE_FIELDS,
    ENERGY_FIELDS,
    MEMORY_LEVELS,
    PROFILE_TYPES,
    ComputeKind,
    HardwareProfile,
    MemoryLevel,
    Tiling,
)
from .units import UnitError, parse_quantity

SCHEMA_VERSION = 1
_TOP_FIELDS = {"schema_version", "name", "description", "type", "compute", "efficiency", "bandwidth_derating",
               "layer_overhead", "memory", "energy", "fallback", "bit_brick", "max_bits", "notes", "deployment",
               "efficiency_by_precision", "inference_overhead", "tiling", "io_bytes_per_element",
               "layer_input_bytes_per_element"}
_PRECISION_LABEL = re.compile(r"^(fp|int|binary|shift)([1-9][0-9]?)$")
_QUANTITY_FIELDS = {"value", "source", "derived", "prior"}
#: The numbers calibrate() fits, as (YAML field, HardwareProfile attribute, dimension); each may carry a
#: ``prior:``, the datasheet-derived starting value a fit started from and is cross-validated against.
CALIBRATED_FIELDS = (("efficiency", "efficiency", "dimensionless"),
                     ("bandwidth_derating", "bandwidth_derating", "dimensionless"),
                     ("layer_overhead", "layer_overhead_s", "time"),
                     ("inference_overhead", "inference_overhead_s", "time"))
_LEVEL_FIELDS = {
    "dram": {"bandwidth", "size", "energy_per_byte"},
    "sram": {"bandwidth", "size", "energy_per_byte", "holds_weights", "holds_activations", "caches_activations"},
    "link": {"bandwidth", "energy_per_byte"},
}


@dataclass(frozen=True)
class SaneRange:
    """Physically sane SI range of one dimension. Outside it a value is a typo or a unit mix-up, and a
    subnormal peak or a 1e300 J energy would overflow the costs to inf and NaN."""

    what: str
    low: float
    high: float
    low_text: str
    high_text: str
    zero_ok: bool = False


SANE_RANGES = {
    "throughput": SaneRange("throughput", 1e3, 1e18, "1 kOPS", "1000000 TOPS"),
    "bandwidth": SaneRange("bandwidth", 1e3, 1e15, "1 kB/s", "1 PB/s"),
    "size": SaneRange("memory size", 1.0, 2.0**50, "1 B", "1 PiB"),
    "energy": SaneRange("energy per MAC", 1e-18, 1e-6, "1e-6 pJ", "1 uJ"),
    "energy_per_byte": SaneRange("energy per byte", 1e-18, 1e-6, "1e-6 pJ/B", "1 uJ/B"),
    "time": SaneRange("time", 0.0, 1.0, "0 s", "1 s", zero_ok=True),
    "dimensionless": SaneRange("fraction", 1e-3, 1.0, "0.001", "1.0"),
}


class _Reader:
    """Walks one parsed YAML document, raising ProfileError with the file and dotted field."""

    def __init__(self, file: str):
        self.file = file

    def error(self, field: str | None, problem: str) -> ProfileError:
        return ProfileError(problem, file=self.file, field=field)

    def mapping(self, node: Any, field: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(node, dict):
            raise self.error(field or None, f"expected a mapping, got {_typed(node)}")
        for key in node:
            if key not in allowed:
                raise self.error(_join(field, key), f"unknown field {shown(key)}; allowed fields here: "
                                                    f"{', '.join(sorted(allowed))}")
        for key in sorted(required):
            if key not in node:
                raise self.error(_join(field, key), f"missing field {key!r} (required here)")
        return node

    def quantity(self, node: Any, field: str) -> tuple[Any, str]:
        """A ``{value: ..., source: ...}`` or ``{value: ..., derived: ...}`` leaf; returns (raw value, provenance)."""
        if not isinstance(node, dict):
            raise self.error(field, f"expected {{value: ..., source: ...}} or {{value: ..., derived: ...}}, "
                                    f"got {_typed(node)}; every number needs a source or a derivation")
        self.mapping(node, field, _QUANTITY_FIELDS, {"value"})
        notes = [k for k in ("source", "derived") if k in node]
        if not notes:
            raise self.error(_join(field, "source"), "missing field 'source' or 'derived': say where the value "
                                                     "comes from (datasheet, paper) or how it was computed")
        for key in notes:
            if not isinstance(node[key], str) or not node[key].strip():
                raise self.error(_join(field, key), f"expected a non-empty string, got {_typed(node[key])}")
        return node["value"], "; ".join(f"{k}: {node[k]}" for k in notes)

    def number(self, node: Any, field: str, dimension: str) -> float:
        """A quantity in SI units of ``dimension``, finite and inside that dimension's SANE_RANGES."""
        value, _ = self.quantity(node, field)
        try:
            number = parse_quantity(value, dimension)
        except UnitError as exc:
            raise self.error(_join(field, "value"), str(exc)) from None
        sane = SANE_RANGES[dimension]
        if number < 0 or (number == 0 and not sane.zero_ok):
            raise self.error(_join(field, "value"), f"must be {'>= 0' if sane.zero_ok else '> 0'}, got {shown(value)}")
        if number < sane.low:
            raise self.error(_join(field, "value"), f"{shown(value)} is below {sane.low_text}, the smallest sane "
                                                    f"{sane.what}; check the number and its unit")
        if number > sane.high:
            raise self.error(_join(field, "value"), f"must be <= {sane.high_text}, got {shown(value)}; check the "
                                                    "number and its unit")
        return number

    def integer(self, node: Any, field: str, low: int, high: int) -> int:
        value, _ = self.quantity(node, field)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(_join(field, "value"), f"expected an integer in [{low}, {high}], got {_typed(value)}")
        return value

    def boolean(self, node: Any, field: str) -> bool:
        value, _ = self.quantity(node, field)
        if not isinstance(value, bool):
            raise self.error(_join(field, "value"), f"expected true or false, got {_typed(value)}")
        return value

    def string(self, node: Any, field: str) -> str:
        if not isinstance(node, str) or not node.strip():
            raise self.error(field, f"expected a non-empty string, got {_typed(node)}")
        return node


def _join(field: str, key: Any) -> str:
    name = str(key) if len(str(key)) <= 40 else str(key)[:37] + "..."
    return f"{field}.{name}" if field else name


def shown(value: Any, limit: int = 60) -> str:
    """A value as it appears in an error message: its repr, clipped so the message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _typed(value: Any) -> str:
    return f"{type(value).__name__} {shown(value)}"


def parse_profile(data: Any, file: str) -> HardwareProfile:
    """Validate a parsed YAML document and build the HardwareProfile."""
    r = _Reader(file)
    if data is None:
        raise r.error(None, "the file is empty; a profile is a mapping with name, description, type, compute, ... "
                            "(see hardware_profiles/README.md)")
    r.mapping(data, "", _TOP_FIELDS, {"name", "description", "type", "compute", "efficiency",
                                      "bandwidth_derating", "layer_overhead", "memory"})
    if "schema_version" in data and data["schema_version"] != SCHEMA_VERSION:
        raise r.error("schema_version", f"unsupported schema version {shown(data['schema_version'])}; "
                                        f"this hwqnn reads version {SCHEMA_VERSION}")
    name = r.string(data["name"], "name")
    stem = Path(file).stem
    if name != stem:
        raise r.error("name", f"name {shown(name)} must equal the file name {stem!r} (the file name is the profile "
                              "name)")
    description = r.string(data["description"], "description")
    kind_type = data["type"]
    if not isinstance(kind_type, str) or kind_type not in PROFILE_TYPES:
        raise r.error("type", f"unknown type {shown(kind_type)}; expected one of {', '.join(PROFILE_TYPES)}")
    if "notes" in data:
        r.string(data["notes"], "notes")

    brick_bits, max_bits = 1, 32
    if kind_type == "bitbrick":
        if "bit_brick" not in data:
            raise r.error("bit_brick", "missing field 'bit_brick' (required for type bitbrick: bits of one brick)")
        brick_bits = r.integer(data["bit_brick"], "bit_brick", 1, 16)
    elif "bit_brick" in data:
        raise r.error("bit_brick", f"field 'bit_brick' only applies to type bitbrick, not {kind_type}")
    if kind_type in ("bitbrick", "bitserial"):
        if "max_bits" not in data:
            raise r.error("max_bits", f"missing field 'max_bits' (required for type {kind_type})")
        max_bits = r.integer(data["max_bits"], "max_bits", brick_bits, 32)
    elif "max_bits" in data:
        raise r.error("max_bits", "field 'max_bits' only applies to types bitbrick and bitserial")

    compute = _parse_compute(r, data["compute"], kind_type, brick_bits, max_bits)
    memory = _parse_memory(r, data["memory"])
    energy = {}
    if "energy" in data:
        r.mapping(data["energy"], "energy", set(ENERGY_FIELDS))
        energy = {key: r.number(node, f"energy.{key}", "energy") for key, node in data["energy"].items()}
    fallback = None
    if "fallback" in data:
        value, _ = r.quantity(data["fallback"], "fallback")
        fallback = r.string(value, "fallback.value")
        if fallback == name:
            raise r.error("fallback.value", "a profile cannot be its own fallback device")
    deployment = None
    if "deployment" in data:
        from .deployment import parse_deployment

        deployment = parse_deployment(r, data["deployment"], compute, kind_type, max_bits, "fallback" in data)
    by_precision = {}
    if "efficiency_by_precision" in data:
        node = data["efficiency_by_precision"]
        if not isinstance(node, dict) or not node:
            raise r.error("efficiency_by_precision", "expected a mapping of precision (fp32, fp16, int8, int4...) "
                                                     "to {value: ..., source/derived: ...}")
        for label, leaf in node.items():
            if not isinstance(label, str) or not _PRECISION_LABEL.match(label):
                raise r.error(f"efficiency_by_precision.{label}", f"unknown precision {shown(label)}; expected "
                              "fp<bits>, int<bits>, binary<bits> or shift<bits> (e.g. fp32, int8)")
            by_precision[label] = r.number(leaf, f"efficiency_by_precision.{label}", "dimensionless")
    byte_maps = {name: _parse_io_bytes(r, data[name], name) for name in BYTE_FIELDS if name in data}
    inference_overhead = 0.0
    if "inference_overhead" in data:
        inference_overhead = r.number(data["inference_overhead"], "inference_overhead", "time")
    tiling = _parse_tiling(r, data["tiling"]) if "tiling" in data else None
    priors = {attr: _prior(r, data[key], key, dimension) for key, attr, dimension in CALIBRATED_FIELDS if key in data}
    priors.update({f"efficiency_{label}": _prior(r, data["efficiency_by_precision"][label],
                                                 f"efficiency_by_precision.{label}", "dimensionless")
                   for label in by_precision})
    priors.update({f"{BYTE_FIELDS[name]}_{label}": _io_prior(r, data[name][label], f"{name}.{label}")
                   for name, values in byte_maps.items() for label in values})
    return HardwareProfile(**byte_maps,
        name=name, description=description, type=kind_type, file=str(file), compute=compute, memory=memory,
        deployment=deployment, efficiency_by_precision=by_precision, inference_overhead_s=inference_overhead,
        tiling=tiling, priors={k: v for k, v in priors.items() if v is not None},
        efficiency=r.number(data["efficiency"], "efficiency", "dimensionless"),
        bandwidth_derating=r.number(data["bandwidth_derating"], "bandwidth_derating", "dimensionless"),
        layer_overhead_s=r.number(data["layer_overhead"], "layer_overhead", "time"),
        energy_per_mac=energy, brick_bits=brick_bits, max_bits=max_bits, fallback=fallback, raw=data,
    )


#: Largest ``io_bytes_per_element`` / ``layer_input_bytes_per_element``: a few passes over each element.
MAX_IO_BYTES = 256.0


def _io_bytes(r: _Reader, value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_IO_BYTES:
        raise r.error(field, f"expected bytes per element, a number in [0, {MAX_IO_BYTES:g}], got {_typed(value)}")
    return float(value)


def _parse_io_bytes(r: _Reader, node: Any, name: str) -> dict[str, float]:
    """``io_bytes_per_element: {fp32: {value: 8, derived: ...}, int8: {...}}`` (or
    ``layer_input_bytes_per_element``): bytes per element, by executed precision."""
    if not isinstance(node, dict) or not node:
        raise r.error(name, "expected a mapping of precision (fp32, int8...) to "
                            "{value: bytes per element, source/derived: ...}")
    out = {}
    for label, leaf in node.items():
        field = f"{name}.{label}"
        if not isinstance(label, str) or not _PRECISION_LABEL.match(label):
            raise r.error(field, f"unknown precision {shown(label)}; expected fp<bits>, int<bits>, binary<bits> or "
                                 "shift<bits> (e.g. fp32, int8)")
        value, _ = r.quantity(leaf, field)
        out[label] = _io_bytes(r, value, f"{field}.value")
    return out


def _io_prior(r: _Reader, node: Any, field: str) -> float | None:
    if not isinstance(node, dict) or "prior" not in node:
        return None
    return _io_bytes(r, node["prior"], f"{field}.prior")


def _prior(r: _Reader, node: Any, field: str, dimension: str) -> float | None:
    """The ``prior:`` of a calibrated number (None where it has none), checked like its value."""
    if not isinstance(node, dict) or "prior" not in node:
        return None
    return r.number({"value": node["prior"], "derived": "prior"}, f"{field}.prior", dimension)


def _parse_tiling(r: _Reader, node: Any) -> Tiling:
    """``tiling: {units: {value: 8, source: ...}, tile: {value: [128, 64], source: ...}}``."""
    r.mapping(node, "tiling", {"units", "tile"}, {"units", "tile"})
    units = r.integer(node["units"], "tiling.units", 1, 100_000)
    tile, _ = r.quantity(node["tile"], "tiling.tile")
    if (not isinstance(tile, list) or len(tile) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in tile)):
        raise r.error("tiling.tile.value", f"expected [rows, columns] of one output tile, two integers in "
                                           f"[1, 4096], got {_typed(tile)}")
    return Tiling(units=units, tile_m=tile[0], tile_n=tile[1])


def _parse_compute(r: _Reader, node: Any, kind_type: str, brick_bits: int, max_bits: int) -> dict[str, ComputeKind]:
    r.mapping(node, "compute", set(COMPUTE_KINDS))
    if not node:
        raise r.error("compute", "declare at least one compute kind (int, binary, shift or float)")
    kinds: dict[str, ComputeKind] = {}
    for kind, spec in node.items():
        field = f"compute.{kind}"
        r.mapping(spec, field, {"native_bits", "peak", "emulated_as"})
        if "emulated_as" in spec:
            if set(spec) != {"emulated_as"}:
                raise r.error(field, "a kind with 'emulated_as' takes no 'native_bits' or 'peak'")
            value, _ = r.quantity(spec["emulated_as"], f"{field}.emulated_as")
            kinds[kind] = ComputeKind(emulated_as=_parse_kind_bits(r, value, f"{field}.emulated_as.value"))
            continue
        if "peak" not in spec:
            raise r.error(f"{field}.peak", "missing field 'peak' (operations per second per bitwidth)")
        if kind_type == "roofline":
            if "native_bits" not in spec:
                raise r.error(f"{field}.native_bits", "missing field 'native_bits' (bitwidths the device runs natively)")
            native_value, _ = r.quantity(spec["native_bits"], f"{field}.native_bits")
            if (not isinstance(native_value, list) or not native_value
                    or not all(isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 32 for b in native_value)):
                raise r.error(f"{field}.native_bits.value",
                              f"expected a non-empty list of integers in [1, 32], got {_typed(native_value)}")
            native = tuple(sorted(set(native_value)))
            if kind == "float" and not set(native) <= {16, 32}:
                raise r.error(f"{field}.native_bits.value",
                              f"float native bits must be 16 and/or 32, got {shown(native_value)}")
            expected_keys = set(native)
        else:
            if kind != "int":
                raise r.error(field, f"a {kind_type} device computes natively on 'int' only; give '{kind}' an "
                                     "'emulated_as' or leave it out (binary and shift then run as int)")
            if "native_bits" in spec:
                raise r.error(f"{field}.native_bits",
                              f"not used for type {kind_type}: every width up to max_bits ({max_bits}) is native")
            base = brick_bits if kind_type == "bitbrick" else 1
            native = tuple(range(1, max_bits + 1))
            expected_keys = {base}
        leaves = _peak_leaves(r, spec["peak"], f"{field}.peak", expected_keys)
        peaks = {bits: r.number(leaf, f"{field}.peak.{bits}", "throughput") for bits, leaf in sorted(leaves.items())}
        kinds[kind] = ComputeKind(native_bits=native, peak_ops=peaks)
    for kind, spec in kinds.items():
        if spec.emulated_as:
            target, bits = spec.emulated_as
            if target not in kinds or kinds[target].emulated_as or bits not in kinds[target].native_bits:
                native = "; ".join(f"{k} {', '.join(map(str, v.native_bits))}" for k, v in kinds.items()
                                   if v.native_bits)
                raise r.error(f"compute.{kind}.emulated_as.value",
                              f"{target}{bits} is not a native precision of this device; native: {native}")
    if not any(spec.native_bits for spec in kinds.values()):
        raise r.error("compute", "no kind runs natively; declare native_bits and peak for at least one kind")
    return kinds


def _parse_kind_bits(r: _Reader, value: Any, field: str) -> tuple[str, int]:
    text = str(value)
    for kind in COMPUTE_KINDS:
        if text.startswith(kind) and text[len(kind):].isdigit():
            return kind, int(text[len(kind):])
    raise r.error(field, f"expected a kind and bits such as 'int16' or 'float32', got {_typed(value)}")


def _peak_leaves(r: _Reader, node: Any, field: str, expected: set[int]) -> dict[int, Any]:
    """The ``peak`` mapping keyed by bitwidth: keys are integers or digit strings, each width once."""
    if not isinstance(node, dict):
        raise r.error(field, f"expected a mapping of bitwidth to peak, got {_typed(node)}")
    allowed = ", ".join(map(str, sorted(expected)))
    leaves: dict[int, Any] = {}
    for key, leaf in node.items():
        bits = _bits_key(key)
        if bits is None or bits not in expected:
            raise r.error(_join(field, key), f"unknown field {shown(key)}; allowed fields here (bitwidths): {allowed}")
        if bits in leaves:
            raise r.error(_join(field, key), f"the peak for {bits}-bit is given twice (as {bits} and '{bits}'); "
                                             "keep one")
        leaves[bits] = leaf
    missing = sorted(expected - set(leaves))
    if missing:
        raise r.error(f"{field}.{missing[0]}", f"missing peak for {missing[0]}-bit (one per native bitwidth)")
    return leaves


def _bits_key(key: Any) -> int | None:
    """A bitwidth key (8 or '8') as an int; None for anything else (a bool, float, list or word)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 3:
        return int(key)
    return None


def _parse_memory(r: _Reader, node: Any) -> dict[str, MemoryLevel]:
    from .energy import DEFAULT_ENERGY_PER_BYTE

    r.mapping(node, "memory", set(MEMORY_LEVELS), {"dram"})
    levels = {}
    for name, spec in node.items():
        field = f"memory.{name}"
        required = {"bandwidth"} if name in ("dram", "link") else {"size"}
        if name == "link":
            required |= {"energy_per_byte"}
        r.mapping(spec, field, _LEVEL_FIELDS[name], required)
        bandwidth = r.number(spec["bandwidth"], f"{field}.bandwidth", "bandwidth") if "bandwidth" in spec else None
        size = r.number(spec["size"], f"{field}.size", "size") if "size" in spec else None
        energy = (r.number(spec["energy_per_byte"], f"{field}.energy_per_byte", "energy_per_byte")
                  if "energy_per_byte" in spec else DEFAULT_ENERGY_PER_BYTE[name])
        levels[name] = MemoryLevel(
            name=name, bandwidth=bandwidth, size=size, energy_per_byte=energy,
            holds_weights=r.boolean(spec["holds_weights"], f"{field}.holds_weights") if "holds_weights" in spec else False,
            holds_activations=(r.boolean(spec["holds_activations"], f"{field}.holds_activations")
                               if "holds_activations" in spec else False),
            caches_activations=(r.boolean(spec["caches_activations"], f"{field}.caches_activations")
                                if "caches_activations" in spec else False),
        )
    return levels
