"""Read and strictly validate hardware profile YAML files (``yaml.safe_load`` only).

Every problem raises :class:`ProfileError` naming the file, the dotted field and what is wrong:
unknown or missing field, wrong type, bad unit, non-positive throughput or bandwidth, malformed YAML,
a number without ``source:`` or ``derived:``. The schema is documented in hardware_profiles/README.md.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

from hardware_profiles import PROFILE_DIR

from .errors import ProfileError
from .precision import COMPUTE_KINDS
from .profile import ENERGY_FIELDS, MEMORY_LEVELS, PROFILE_TYPES, ComputeKind, HardwareProfile, MemoryLevel
from .units import UnitError, parse_quantity

SCHEMA_VERSION = 1
ALIASES_FILE = "aliases.yaml"
_TOP_FIELDS = {"schema_version", "name", "description", "type", "compute", "efficiency", "bandwidth_derating",
               "layer_overhead", "memory", "energy", "fallback", "bit_brick", "max_bits", "notes"}
_QUANTITY_FIELDS = {"value", "source", "derived"}
_LEVEL_FIELDS = {
    "dram": {"bandwidth", "size", "energy_per_byte"},
    "sram": {"bandwidth", "size", "energy_per_byte", "holds_weights", "holds_activations"},
    "link": {"bandwidth", "energy_per_byte"},
}


class _Reader:
    """Walks one parsed YAML document, raising ProfileError with the file and dotted field."""

    def __init__(self, file: str):
        self.file = file

    def error(self, field: str | None, problem: str) -> ProfileError:
        return ProfileError(problem, file=self.file, field=field)

    def mapping(self, node: Any, field: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(node, dict):
            raise self.error(field or None, f"expected a mapping, got {type(node).__name__} {node!r}")
        for key in node:
            if key not in allowed:
                raise self.error(_join(field, key), f"unknown field {key!r}; allowed fields here: {sorted(allowed)}")
        for key in sorted(required):
            if key not in node:
                raise self.error(_join(field, key), f"missing field {key!r} (required here)")
        return node

    def quantity(self, node: Any, field: str) -> tuple[Any, str]:
        """A ``{value: ..., source: ...}`` or ``{value: ..., derived: ...}`` leaf; returns (raw value, provenance)."""
        if not isinstance(node, dict):
            raise self.error(field, f"expected {{value: ..., source: ...}} or {{value: ..., derived: ...}}, "
                                    f"got {node!r}; every number needs a source or a derivation")
        self.mapping(node, field, _QUANTITY_FIELDS, {"value"})
        notes = [k for k in ("source", "derived") if k in node]
        if not notes:
            raise self.error(_join(field, "source"), "missing field 'source' or 'derived': say where the value "
                                                     "comes from (datasheet, paper) or how it was computed")
        for key in notes:
            if not isinstance(node[key], str) or not node[key].strip():
                raise self.error(_join(field, key), f"expected a non-empty string, got {node[key]!r}")
        return node["value"], "; ".join(f"{k}: {node[k]}" for k in notes)

    def number(self, node: Any, field: str, dimension: str, *, positive: bool = True, at_most: float | None = None,
               allow_zero: bool = False) -> float:
        value, _ = self.quantity(node, field)
        try:
            number = parse_quantity(value, dimension)
        except UnitError as exc:
            raise self.error(_join(field, "value"), str(exc)) from None
        if positive and (number < 0 or (number == 0 and not allow_zero)):
            bound = ">= 0" if allow_zero else "> 0"
            raise self.error(_join(field, "value"), f"must be {bound}, got {value!r}")
        if at_most is not None and number > at_most:
            raise self.error(_join(field, "value"), f"must be <= {at_most}, got {value!r}")
        return number

    def integer(self, node: Any, field: str, low: int, high: int) -> int:
        value, _ = self.quantity(node, field)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(_join(field, "value"), f"expected an integer in [{low}, {high}], got {value!r}")
        return value

    def boolean(self, node: Any, field: str) -> bool:
        value, _ = self.quantity(node, field)
        if not isinstance(value, bool):
            raise self.error(_join(field, "value"), f"expected true or false, got {value!r}")
        return value

    def string(self, node: Any, field: str) -> str:
        if not isinstance(node, str) or not node.strip():
            raise self.error(field, f"expected a non-empty string, got {node!r}")
        return node


def _join(field: str, key: Any) -> str:
    return f"{field}.{key}" if field else str(key)


def parse_profile(data: Any, file: str) -> HardwareProfile:
    """Validate a parsed YAML document and build the HardwareProfile."""
    r = _Reader(file)
    r.mapping(data, "", _TOP_FIELDS, {"name", "description", "type", "compute", "efficiency",
                                      "bandwidth_derating", "layer_overhead", "memory"})
    if "schema_version" in data and data["schema_version"] != SCHEMA_VERSION:
        raise r.error("schema_version", f"unsupported schema version {data['schema_version']!r}; "
                                        f"this hwqnn reads version {SCHEMA_VERSION}")
    name = r.string(data["name"], "name")
    stem = Path(file).stem
    if name != stem:
        raise r.error("name", f"name {name!r} must equal the file name {stem!r} (the file name is the profile name)")
    description = r.string(data["description"], "description")
    kind_type = data["type"]
    if kind_type not in PROFILE_TYPES:
        raise r.error("type", f"unknown type {kind_type!r}; expected one of {PROFILE_TYPES}")
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
    return HardwareProfile(
        name=name, description=description, type=kind_type, file=str(file), compute=compute, memory=memory,
        efficiency=r.number(data["efficiency"], "efficiency", "dimensionless", at_most=1.0),
        bandwidth_derating=r.number(data["bandwidth_derating"], "bandwidth_derating", "dimensionless", at_most=1.0),
        layer_overhead_s=r.number(data["layer_overhead"], "layer_overhead", "time", allow_zero=True),
        energy_per_mac=energy, brick_bits=brick_bits, max_bits=max_bits, fallback=fallback, raw=data,
    )


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
                              f"expected a non-empty list of integers in [1, 32], got {native_value!r}")
            native = tuple(sorted(set(native_value)))
            if kind == "float" and not set(native) <= {16, 32}:
                raise r.error(f"{field}.native_bits.value", f"float native bits must be 16 and/or 32, got {native_value!r}")
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
        peaks_node = r.mapping(spec["peak"], f"{field}.peak", set(expected_keys) | {str(k) for k in expected_keys})
        peaks = {}
        for key in sorted(expected_keys):
            if key not in peaks_node and str(key) not in peaks_node:
                raise r.error(f"{field}.peak.{key}", f"missing peak for {key}-bit (one per native bitwidth)")
            leaf = peaks_node.get(key, peaks_node.get(str(key)))
            peaks[key] = r.number(leaf, f"{field}.peak.{key}", "throughput")
        kinds[kind] = ComputeKind(native_bits=native, peak_ops=peaks)
    for kind, spec in kinds.items():
        if spec.emulated_as:
            target, bits = spec.emulated_as
            if target not in kinds or kinds[target].emulated_as or bits not in kinds[target].native_bits:
                raise r.error(f"compute.{kind}.emulated_as.value",
                              f"{target}{bits} is not a native precision of this device; native: "
                              f"{ {k: list(v.native_bits) for k, v in kinds.items() if v.native_bits} }")
    if not any(spec.native_bits for spec in kinds.values()):
        raise r.error("compute", "no kind runs natively; declare native_bits and peak for at least one kind")
    return kinds


def _parse_kind_bits(r: _Reader, value: Any, field: str) -> tuple[str, int]:
    text = str(value)
    for kind in COMPUTE_KINDS:
        if text.startswith(kind) and text[len(kind):].isdigit():
            return kind, int(text[len(kind):])
    raise r.error(field, f"expected a kind and bits such as 'int16' or 'float32', got {value!r}")


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
        )
    return levels


# --- files, names, aliases ---------------------------------------------------------------------------
def read_profile_file(path: str | os.PathLike) -> HardwareProfile:
    """Parse and validate one YAML file (not cached)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read the file: {exc.strerror or exc}", file=file) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ProfileError(f"malformed YAML{at}: {getattr(exc, 'problem', None) or exc}", file=file) from None
    return parse_profile(data, file)


@functools.lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int) -> HardwareProfile:
    profile = read_profile_file(path)
    profile.execution_tables()  # fail early on a precision no device can run
    return profile


def profile_aliases(directory: Path = PROFILE_DIR) -> dict[str, str]:
    """Short names (``jetson``) mapped to profile names, from ``aliases.yaml``."""
    file = Path(directory) / ALIASES_FILE
    if not file.exists():
        return {}
    return dict(_read_aliases(str(file), file.stat().st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _read_aliases(path: str, mtime_ns: int) -> dict[str, str]:
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"malformed YAML: {exc}", file=str(file)) from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ProfileError("expected a mapping of alias name to profile name", file=str(file))
    return dict(data)


def list_profiles(directory: Path = PROFILE_DIR) -> list[str]:
    """Names of the profiles shipped in ``directory`` (file stems), sorted; aliases are not included."""
    return sorted(p.stem for p in Path(directory).glob("*.yaml") if p.name != ALIASES_FILE)


def load_profile(name_or_path: str | os.PathLike | HardwareProfile) -> HardwareProfile:
    """A profile by name (``jetson-nano``), alias (``jetson``) or YAML path; validated and cached."""
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if text.endswith((".yaml", ".yml")) or os.sep in text or path.is_file():
        if not path.is_file():
            raise ProfileError(f"no such file; pass a profile name ({', '.join(list_profiles())}) or a YAML path",
                               file=text)
        resolved = path.resolve()
        return _load_cached(str(resolved), resolved.stat().st_mtime_ns)
    aliases = profile_aliases()
    name = aliases.get(text, text)
    file = PROFILE_DIR / f"{name}.yaml"
    if not file.is_file():
        raise ProfileError(f"unknown hardware profile {text!r}; known profiles: {list_profiles()}, aliases: "
                           f"{aliases}; or pass the path of a YAML profile")
    return _load_cached(str(file), file.stat().st_mtime_ns)


def load_fallback(name: str, *, near: str, requested_by: HardwareProfile) -> HardwareProfile:
    """The fallback device of a profile: looked up next to its file first, then among shipped profiles."""
    local = Path(near).parent / f"{name}.yaml"
    try:
        fallback = load_profile(local if local.is_file() else name)
    except ProfileError as exc:
        raise ProfileError(f"fallback device {name!r} cannot be loaded: {exc}", file=requested_by.file,
                           field="fallback.value") from None
    if fallback.fallback is not None:
        raise ProfileError(f"fallback device {name!r} has a fallback of its own ({fallback.fallback!r}); a fallback "
                           "device must run every precision itself", file=requested_by.file, field="fallback.value")
    return fallback
