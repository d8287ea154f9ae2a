"""What a device's runtime executes natively, parsed from a profile's ``deployment:`` section.

A profile's peaks say how fast a precision runs; this says *which quantized formats reach those peaks*
on the device's real runtime (TensorRT, TFLite/Edge TPU, ONNX Runtime, a bit-flexible accelerator):
per format its integer container, whether zero points are allowed on weights and on activations,
per-channel or per-tensor weight scales, and the op families it covers. Everything else runs as
``otherwise`` says: in float (``float_bits``), emulated in a wider native container, or not at all.

Two kinds of format:

- ``fixed``: the device computes in the listed container widths (TensorRT int8, TFLite int8). A
  quantizer is native when its integer codes fit the container (with a zero point only where the
  format allows one); it is priced and stored as the container.
- ``flexible``: the device computes at the scheme's own bits and kind (Bit Fusion's bricks, BISMO's
  bit-serial passes), so every integer scheme is native at its own bits, as the execution tables price it.

Every format carries a ``source``, like every number in a profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OTHERWISE = ("float", "emulated", "unsupported")
STORAGE = ("container", "packed")
PRECISION_MODES = ("fixed", "flexible")
ZERO_POINT_MODES = ("symmetric", "asymmetric")
#: Activations may also be ``unsigned``: no zero point, in a signed or an unsigned container (CUTLASS u4).
ACTIVATION_MODES = ("symmetric", "unsigned", "asymmetric")
SCALE_MODES = ("per-channel", "per-tensor")
OP_FAMILIES = ("conv", "linear", "matmul", "embedding", "recurrent")


@dataclass(frozen=True)
class NativeFormat:
    """One quantized format the runtime executes natively.

    ``weight``/``activation``: ``symmetric`` (zero point 0, signed container) or ``asymmetric`` (zero
    points allowed); activations may be ``unsigned`` (zero point 0, signed or unsigned container).
    ``bits``: container widths (``fixed``) or the widths the device accepts (``flexible``). Weight-only
    formats (int4 weights with float activations) are not modelled yet.
    """

    name: str
    precision: str
    bits: tuple[int, ...]
    weight: str
    activation: str
    weight_scales: str
    ops: tuple[str, ...]
    source: str

    @property
    def flexible(self) -> bool:
        return self.precision == "flexible"


@dataclass(frozen=True, eq=False)
class DeploymentSpec:
    """The runtime, its native formats, how the rest runs, and how weights are stored.

    Compared and hashed by identity (one per loaded profile), so answers about it can be cached."""

    runtime: str
    formats: tuple[NativeFormat, ...]
    otherwise: str
    float_bits: int
    storage: str
    sources: dict[str, str] = field(default_factory=dict)
    #: The one integer type the runtime wants every 8-bit Q/DQ activation in (``"uint8"`` for ONNX
    #: Runtime's U8S8 kernels on x86), or None: each grid in its natural container (TensorRT: int8).
    activation_type: str | None = None

    @property
    def flexible(self) -> bool:
        """True when some format computes at the scheme's own bits (a bit-flexible device)."""
        return any(f.flexible for f in self.formats)

    def describe(self) -> str:
        lines = [f"runtime: {self.runtime}"]
        for f in self.formats:
            bits = "/".join(map(str, f.bits))
            act = f"activations {f.activation} per-tensor"
            lines.append(f"  native {f.name} ({f.precision}, {bits}-bit): weights {f.weight} {f.weight_scales}, "
                         f"{act}; ops {', '.join(f.ops)}")
        lines.append(f"  otherwise: {self.otherwise}" + (f" (float{self.float_bits})" if self.otherwise == "float" else ""))
        lines.append(f"  weight storage: {self.storage}")
        return "\n".join(lines)


_SECTION_FIELDS = {"runtime", "formats", "otherwise", "float_bits", "storage", "activation_type"}
ACTIVATION_TYPES = ("int8", "uint8")
_FORMAT_FIELDS = {"name", "precision", "bits", "weight", "activation", "weight_scales", "ops"}


def parse_deployment(r, node, compute: dict, kind_type: str, max_bits: int, has_fallback: bool = False) -> DeploymentSpec:
    """Validate a ``deployment:`` section against the profile's own compute peaks (``r``: the schema reader).

    A format must be backed by the peaks: a fixed int8 format needs ``compute.int`` native at 8 bits,
    a flexible format needs a bit-flexible device type, and ``float_bits`` must be a native float width
    (of this device, or of its fallback device, which then runs the float layers).
    """
    r.mapping(node, "deployment", _SECTION_FIELDS, {"runtime", "formats", "otherwise", "storage"})
    runtime, runtime_note = r.quantity(node["runtime"], "deployment.runtime")
    runtime = r.string(runtime, "deployment.runtime.value")
    otherwise, otherwise_note = _choice(r, node["otherwise"], "deployment.otherwise", OTHERWISE)
    storage, storage_note = _choice(r, node["storage"], "deployment.storage", STORAGE)
    float_spec = compute.get("float")
    float_native = tuple(float_spec.native_bits) if float_spec is not None and not float_spec.emulated_as else ()
    float_bits = 32
    if "float_bits" in node:
        float_bits = r.integer(node["float_bits"], "deployment.float_bits", 16, 32)
    elif float_native:
        float_bits = min(float_native)
    if otherwise == "float" and float_bits not in float_native and not has_fallback:
        raise r.error("deployment.float_bits.value" if "float_bits" in node else "deployment.otherwise.value",
                      f"layers that are not native run in float{float_bits}, but compute.float has no native "
                      f"{float_bits}-bit peak (native float bits: {list(float_native) or 'none'})")
    if not isinstance(node["formats"], list):
        raise r.error("deployment.formats", "expected a list of {value: {name: ..., ...}, source: ...} formats")
    formats, names = [], set()
    int_spec = compute.get("int")
    int_native = tuple(int_spec.native_bits) if int_spec is not None and not int_spec.emulated_as else ()
    for i, leaf in enumerate(node["formats"]):
        where = f"deployment.formats[{i}]"
        value, note = r.quantity(leaf, where)
        fmt = _parse_format(r, value, f"{where}.value", note)
        if fmt.name in names:
            raise r.error(f"{where}.value.name", f"format {fmt.name!r} is listed twice")
        names.add(fmt.name)
        if fmt.flexible:
            if kind_type == "roofline":
                raise r.error(f"{where}.value.precision", "a flexible format needs a bit-flexible device "
                              "(type bitbrick or bitserial); a roofline device computes in fixed containers")
            too_wide = [b for b in fmt.bits if b > max_bits]
            if too_wide:
                raise r.error(f"{where}.value.bits", f"bits {too_wide} exceed max_bits ({max_bits})")
        else:
            missing = [b for b in fmt.bits if b not in int_native]
            if missing:
                raise r.error(f"{where}.value.bits",
                              f"format {fmt.name!r} is native at {missing[0]} bits, but compute.int has no native "
                              f"{missing[0]}-bit peak (native int bits: {list(int_native) or 'none'}); add the "
                              f"peak or drop the width")
        formats.append(fmt)
    sources = {"runtime": runtime_note, "otherwise": otherwise_note, "storage": storage_note}
    activation_type = None
    if "activation_type" in node:
        activation_type, sources["activation_type"] = _choice(r, node["activation_type"], "deployment.activation_type",
                                                              ACTIVATION_TYPES)
        if not any(f.activation == "asymmetric" for f in formats):
            raise r.error("deployment.activation_type.value", "one activation type for every tensor needs a zero "
                          "point (a signed grid in uint8), but no format has asymmetric activations")
    return DeploymentSpec(runtime, tuple(formats), otherwise, float_bits, storage, sources, activation_type)


def _choice(r, node, field: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    value, note = r.quantity(node, field)
    if value not in allowed:
        raise r.error(f"{field}.value", f"expected one of {', '.join(allowed)}, got {value!r}")
    return value, note


def _parse_format(r, value, field: str, source: str) -> NativeFormat:
    r.mapping(value, field, _FORMAT_FIELDS, _FORMAT_FIELDS - {"weight_scales", "ops"})
    name = r.string(value["name"], f"{field}.name")
    precision = value["precision"]
    if precision not in PRECISION_MODES:
        raise r.error(f"{field}.precision", f"expected one of {', '.join(PRECISION_MODES)}, got {precision!r}")
    bits = value["bits"]
    if (not isinstance(bits, list) or not bits
            or any(isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 32 for b in bits)):
        raise r.error(f"{field}.bits", f"expected a non-empty list of integer widths in [1, 32], got {bits!r}")
    for key, allowed in (("weight", ZERO_POINT_MODES), ("activation", ACTIVATION_MODES)):
        if value[key] not in allowed:
            raise r.error(f"{field}.{key}", f"expected one of {', '.join(allowed)}, got {value[key]!r}")
    scales = value.get("weight_scales", "per-channel")
    if scales not in SCALE_MODES:
        raise r.error(f"{field}.weight_scales", f"expected one of {', '.join(SCALE_MODES)}, got {scales!r}")
    ops = value.get("ops", ["conv", "linear", "matmul", "recurrent"])
    if not isinstance(ops, list) or not ops or any(op not in OP_FAMILIES for op in ops):
        raise r.error(f"{field}.ops", f"expected a non-empty list of {', '.join(OP_FAMILIES)}, got {ops!r}")
    return NativeFormat(name, precision, tuple(sorted(set(bits))), value["weight"], value["activation"], scales,
                        tuple(ops), source)


__all__ = ["parse_deployment", "NativeFormat", "DeploymentSpec", "OTHERWISE", "STORAGE", "PRECISION_MODES", "OP_FAMILIES"]
