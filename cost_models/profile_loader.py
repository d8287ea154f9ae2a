"""Read and strictly validate hardware profile YAML files (strict safe YAML, see :mod:`cost_models.yaml_io`).

Every problem raises :class:`ProfileError` naming the file, the dotted field and what is wrong:
unknown or missing field, wrong type, bad unit, a number outside its physically sane range (which also
keeps every cost finite: no subnormal peak, no 1e300 J energy), malformed YAML, a number without
``source:`` or ``derived:``, a ``fallback`` that does not load or has a fallback of its own.
The schema is documented in hardware_profiles/README.md.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware_profiles import PROFILE_DIR

from .errors import ProfileError, YamlFileError
from .precision import COMPUTE_KINDS
from .profile import ENERGY_FIELDS, MEMORY_LEVELS, PROFILE_TYPES, ComputeKind, HardwareProfile, MemoryLevel
from .units import UnitError, parse_quantity
from .yaml_io import read_yaml_file

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
                raise self.error(_join(field, key), f"unknown field {_shown(key)}; allowed fields here: "
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
            raise self.error(_join(field, "value"), f"must be {'>= 0' if sane.zero_ok else '> 0'}, got {_shown(value)}")
        if number < sane.low:
            raise self.error(_join(field, "value"), f"{_shown(value)} is below {sane.low_text}, the smallest sane "
                                                    f"{sane.what}; check the number and its unit")
        if number > sane.high:
            raise self.error(_join(field, "value"), f"must be <= {sane.high_text}, got {_shown(value)}; check the "
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


def _shown(value: Any, limit: int = 60) -> str:
    """A value as it appears in an error message: its repr, clipped so the message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _typed(value: Any) -> str:
    return f"{type(value).__name__} {_shown(value)}"


def parse_profile(data: Any, file: str) -> HardwareProfile:
    """Validate a parsed YAML document and build the HardwareProfile."""
    r = _Reader(file)
    if data is None:
        raise r.error(None, "the file is empty; a profile is a mapping with name, description, type, compute, ... "
                            "(see hardware_profiles/README.md)")
    r.mapping(data, "", _TOP_FIELDS, {"name", "description", "type", "compute", "efficiency",
                                      "bandwidth_derating", "layer_overhead", "memory"})
    if "schema_version" in data and data["schema_version"] != SCHEMA_VERSION:
        raise r.error("schema_version", f"unsupported schema version {_shown(data['schema_version'])}; "
                                        f"this hwqnn reads version {SCHEMA_VERSION}")
    name = r.string(data["name"], "name")
    stem = Path(file).stem
    if name != stem:
        raise r.error("name", f"name {_shown(name)} must equal the file name {stem!r} (the file name is the profile "
                              "name)")
    description = r.string(data["description"], "description")
    kind_type = data["type"]
    if not isinstance(kind_type, str) or kind_type not in PROFILE_TYPES:
        raise r.error("type", f"unknown type {_shown(kind_type)}; expected one of {', '.join(PROFILE_TYPES)}")
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
        efficiency=r.number(data["efficiency"], "efficiency", "dimensionless"),
        bandwidth_derating=r.number(data["bandwidth_derating"], "bandwidth_derating", "dimensionless"),
        layer_overhead_s=r.number(data["layer_overhead"], "layer_overhead", "time"),
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
                              f"expected a non-empty list of integers in [1, 32], got {_typed(native_value)}")
            native = tuple(sorted(set(native_value)))
            if kind == "float" and not set(native) <= {16, 32}:
                raise r.error(f"{field}.native_bits.value",
                              f"float native bits must be 16 and/or 32, got {_shown(native_value)}")
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
            raise r.error(_join(field, key), f"unknown field {_shown(key)}; allowed fields here (bitwidths): {allowed}")
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
        )
    return levels


# --- files, names, aliases ---------------------------------------------------------------------------
def read_profile_file(path: str | os.PathLike) -> HardwareProfile:
    """Parse and validate one YAML file (not cached; its fallback is not loaded)."""
    file = str(path)
    try:
        data = read_yaml_file(path)
    except YamlFileError as exc:
        raise ProfileError(exc.problem, file=file) from None
    return parse_profile(data, file)


@functools.lru_cache(maxsize=64)
def _read_cached(path: str, mtime_ns: int) -> HardwareProfile:
    return read_profile_file(path)


@functools.lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int) -> HardwareProfile:
    """A profile ready for costing: its fallback device loaded and checked, every precision resolvable."""
    profile = _read_cached(path, mtime_ns)
    if profile.fallback is not None:
        _ = profile.fallback_profile  # an unknown, chained or cyclic fallback fails here, at validation
    profile.execution_tables()  # fail early on a precision no device can run
    return profile


def _cache_key(file: Path) -> tuple[str, int]:
    resolved = file.resolve()
    return str(resolved), resolved.stat().st_mtime_ns


def profile_aliases(directory: Path = PROFILE_DIR) -> dict[str, str]:
    """Short names (``jetson``) mapped to profile names, from ``aliases.yaml``."""
    file = Path(directory) / ALIASES_FILE
    if not file.exists():
        return {}
    return dict(_read_aliases(str(file), file.stat().st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _read_aliases(path: str, mtime_ns: int) -> dict[str, str]:
    """``aliases.yaml`` checked: a mapping of new short names to profiles that exist next to it."""
    try:
        data = read_yaml_file(path)
    except YamlFileError as exc:
        raise ProfileError(exc.problem, file=path) from None
    data = {} if data is None else data
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ProfileError("expected a mapping of alias name to profile name, such as 'jetson: jetson-orin-nano'",
                           file=path)
    known = list_profiles(Path(path).parent)
    for alias, target in data.items():
        if alias in known:
            raise ProfileError(f"alias '{alias}' is already the name of a profile; pick another short name",
                               file=path, field=alias)
        if target not in known:
            raise ProfileError(f"alias '{alias}' names '{target}', which is not a profile here; known profiles: "
                               f"{', '.join(known)}", file=path, field=alias)
    return dict(data)


def list_profiles(directory: Path = PROFILE_DIR) -> list[str]:
    """Names of the profiles shipped in ``directory`` (file stems), sorted; aliases are not included."""
    return sorted(p.stem for p in Path(directory).glob("*.yaml") if p.name != ALIASES_FILE)


def _is_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or os.sep in text or _is_file(Path(text))


def _is_file(path: Path) -> bool:
    """Path.is_file, but False (not OSError) for a name too long or otherwise impossible on this system."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def profile_file(name_or_path: str | os.PathLike) -> Path:
    """The YAML file of a profile name (``jetson-nano``), alias (``jetson``) or path; ProfileError if none."""
    text = str(name_or_path)
    if _is_path(text):
        path = Path(text)
        if not _is_file(path):
            raise ProfileError(f"no such file; pass a profile name ({', '.join(list_profiles())}) or the path of a "
                               "YAML profile", file=text)
        return path
    aliases = profile_aliases()
    file = PROFILE_DIR / f"{aliases.get(text, text)}.yaml"
    if not _is_file(file):
        raise ProfileError(unknown_profile_message(text, aliases))
    return file


def unknown_profile_message(text: str, aliases: dict[str, str]) -> str:
    """Plain text: the unknown name, the known profiles and the aliases, and what else to pass."""
    known = ", ".join(list_profiles())
    short = ", ".join(f"{alias} -> {target}" for alias, target in sorted(aliases.items()))
    return (f"unknown hardware profile {_shown(text)}; known profiles: {known}"
            + (f" (aliases: {short})" if short else "") + "; or pass the path of a YAML profile")


def load_profile(name_or_path: str | os.PathLike | HardwareProfile) -> HardwareProfile:
    """A profile by name (``jetson-nano``), alias (``jetson``) or YAML path; validated and cached."""
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    return _load_cached(*_cache_key(profile_file(name_or_path)))


def load_fallback(name: str, *, near: str, requested_by: HardwareProfile) -> HardwareProfile:
    """The fallback device of a profile: looked up next to its file first, then among shipped profiles.

    A fallback device must run every precision itself, so it may not have a fallback of its own; this
    also refuses cycles (a -> b -> a) before they recurse.
    """
    local = Path(near).parent / f"{name}.yaml"
    try:
        key = _cache_key(local if _is_file(local) else profile_file(name))
        fallback = _read_cached(*key)
    except ProfileError as exc:
        raise ProfileError(f"fallback device {name!r} cannot be loaded: {exc}", file=requested_by.file,
                           field="fallback.value") from None
    if fallback.fallback is not None:
        cycle = (f"a cycle {requested_by.name} -> {fallback.name} -> {fallback.fallback}; "
                 if fallback.fallback == requested_by.name else "")
        raise ProfileError(f"fallback device {name!r} has a fallback of its own ({fallback.fallback!r}): {cycle}a "
                           "fallback device must run every precision itself (no chains)", file=requested_by.file,
                           field="fallback.value")
    try:
        return _load_cached(*key)
    except ProfileError as exc:
        raise ProfileError(f"fallback device {name!r} cannot be loaded: {exc}", file=requested_by.file,
                           field="fallback.value") from None
