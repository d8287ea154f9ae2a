"""Where a quantizer lands on a device: native in one of its runtime's formats, emulated, or float.

One function answers it for every consumer, so the search space, the cost and the export agree:

- :func:`price_tensor`: one tensor (a scheme at some bits, as weight or activation) on a target, with
  the compute kind and bits the cost model charges for it;
- :func:`place_layer`: a layer's policy entry, with its status and the :class:`LayerPrecision` it is priced as;
- :func:`deployable_bits`: per scheme, the bits a slot may take on the target (the default search space).

On a ``fixed`` format (TensorRT int8, TFLite int8) a quantizer is native when its integer codes fit the
container (symmetric formats: zero point 0 and codes inside ``[-2^(c-1), 2^(c-1) - 1]``; asymmetric:
at most ``2^c`` codes), and an activation's thresholds are the grid's midpoints, so the runtime's
QuantizeLinear reproduces it. It is then priced and stored as the container: pot at 3 bits, ternary and
binary weights run as int8 on TensorRT. Activations are checked for both signed and non-negative data,
because which one a tensor is shows only at run time: unsigned 8-bit codes do not fit symmetric int8.
On a ``flexible`` format (Bit Fusion, BISMO) every integer scheme is native at its own bits and kind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from cost_models import SCALE_BYTES_PER_CHANNEL, LayerPrecision
from cost_models.deployment import DeploymentSpec, NativeFormat

from .errors import DeploymentError, SchemeError
from .quantizers import create_scheme
from .quantizers.base import IntegerCodes

log = logging.getLogger(__name__)
NATIVE, EMULATED, FLOAT, UNSUPPORTED, UNKNOWN = "native", "emulated", "float", "unsupported", "unknown"
#: Bytes of one stored scale or lookup-table entry (fp32, as ONNX and TensorRT store them): the cost model's.
SCALE_BYTES = SCALE_BYTES_PER_CHANNEL


def side_bytes(codes: IntegerCodes | None, bits: int, container: int | None) -> float:
    """Bytes per output channel stored beside a quantized weight's codes: the packing rule that the
    cost model and the exporter share. One fp32 scale; plus the zero point in its container's bytes
    when the codes need one (packed: ``ceil(bits / 8)``); a scheme without an integer grid stores a
    lookup table of ``2^bits`` fp32 levels instead of a scale."""
    if codes is None:
        return float(2**bits * SCALE_BYTES)
    zero_point = -(-(container or bits) // 8) if codes.zero_point else 0
    return float(SCALE_BYTES + zero_point)


@dataclass(frozen=True)
class TensorPrice:
    """How one quantized tensor runs on a target: status, the format (if native), and its price."""

    status: str
    kind: str
    bits: int
    format: str | None = None
    note: str = ""
    #: Weights only: bytes stored per output channel beside the codes (see :func:`side_bytes`).
    side_bytes: float = SCALE_BYTES


@dataclass(frozen=True)
class LayerPlacement:
    """How one layer runs: ``native`` (as ``format``), ``emulated``, ``float`` or ``unsupported``."""

    status: str
    precision: LayerPrecision
    format: str | None = None
    note: str = ""


def op_family(op_type: str | None) -> str | None:
    """The ``ops`` family of a workload op type (``conv2d`` -> ``conv``); None when unknown."""
    if op_type is None:
        return None
    if op_type.startswith("conv"):
        return "conv"
    return op_type if op_type in ("linear", "matmul", "embedding", "recurrent") else None


def _covers(fmt: NativeFormat, op_type: str | None) -> bool:
    family = op_family(op_type)
    return family is None or family in fmt.ops


def _fits(codes: IntegerCodes, bits: int, rule: str) -> bool:
    """Whether the codes fit a ``bits``-wide container under ``rule`` (see ``NativeFormat``)."""
    signed = -(2 ** (bits - 1)) <= codes.qmin and codes.qmax <= 2 ** (bits - 1) - 1
    if rule == "asymmetric":
        return codes.qmax - codes.qmin + 1 <= 2**bits
    if codes.zero_point:
        return False
    if rule == "unsigned":
        return signed or (0 <= codes.qmin and codes.qmax <= 2**bits - 1)
    return signed


def _side_fits(fmt: NativeFormat, role: str, codes_list: list[IntegerCodes | None], bits: int) -> bool:
    rule = fmt.weight if role == "weight" else fmt.activation
    if any(c is None for c in codes_list):
        return False
    if role != "weight" and not all(c.round_to_nearest for c in codes_list):
        return False
    return all(_fits(c, bits, rule) for c in codes_list)


@lru_cache(maxsize=4096)
def _codes(scheme: str, role: str, bits: int) -> tuple[IntegerCodes | None, ...]:
    module = create_scheme(scheme, role=role)
    eff = module.effective_bits(bits)
    signs = (False,) if role == "weight" else (False, True)
    return tuple(module.integer_codes(eff, unsigned) for unsigned in signs)


@lru_cache(maxsize=4096)
def _facts(scheme: str, role: str, bits: int) -> tuple[str, int]:
    module = create_scheme(scheme, role=role)
    facts = module.hardware(module.effective_bits(bits))
    return facts.compute_kind, facts.bits


def native_container(scheme: str, role: str, bits: int, spec: DeploymentSpec,
                     op_type: str | None = None) -> tuple[NativeFormat, int] | None:
    """The narrowest fixed format container holding this tensor exactly (for ``op_type``'s family), or None."""
    codes = list(_codes(scheme, role, bits))
    options = sorted(((c, f) for f in spec.formats if not f.flexible and _covers(f, op_type) for c in f.bits),
                     key=lambda cf: cf[0])
    for container, fmt in options:
        if _side_fits(fmt, role, codes, container):
            return fmt, container
    return None


@lru_cache(maxsize=65536)  # asked for every candidate of every slot at every search step
def price_tensor(scheme: str, role: str, bits: int, spec: DeploymentSpec | None,
                 op_type: str | None = None) -> TensorPrice:
    """How ``scheme`` at ``bits`` for ``role`` of an ``op_type`` layer (None: any) runs on a device with
    ``spec`` (None: the profile says nothing)."""
    kind, own_bits = _facts(scheme, role, bits)
    packed = side_bytes(_codes(scheme, role, bits)[0], own_bits, None)
    if spec is None:
        return TensorPrice(UNKNOWN, kind, own_bits, note="the profile declares no deployment formats",
                           side_bytes=packed)
    for fmt in spec.formats:
        if fmt.flexible and own_bits <= max(fmt.bits) and _covers(fmt, op_type):
            return TensorPrice(NATIVE, kind, own_bits, fmt.name, side_bytes=packed)
    found = native_container(scheme, role, bits, spec, op_type)
    if found is not None:
        fmt, container = found
        return TensorPrice(NATIVE, "int", container, fmt.name,
                           side_bytes=side_bytes(_codes(scheme, role, bits)[0], own_bits, container))
    why = _why_not(scheme, role, bits, spec, op_type)
    if spec.otherwise == "float":
        return TensorPrice(FLOAT, "float", spec.float_bits, note=f"{why}; runs in float{spec.float_bits}", side_bytes=0.0)
    if spec.otherwise == "emulated":
        return TensorPrice(EMULATED, kind, own_bits, note=f"{why}; emulated in a wider native container",
                           side_bytes=packed)
    return TensorPrice(UNSUPPORTED, kind, own_bits, note=f"{why}; {spec.runtime} cannot run it", side_bytes=packed)


def _why_not(scheme: str, role: str, bits: int, spec: DeploymentSpec, op_type: str | None = None) -> str:
    codes = _codes(scheme, role, bits)
    name = f"{scheme}@{bits} {role}"
    if not spec.formats:
        return f"{spec.runtime} has no native integer format on this device"
    if not any(_covers(f, op_type) for f in spec.formats):
        return f"{spec.runtime} has no native integer format for {op_family(op_type)} layers"
    if any(c is None for c in codes):
        return f"{name}: its levels are not integer multiples of one scale"
    if role != "weight" and not all(c.round_to_nearest for c in codes):
        return f"{name}: its thresholds are not round-to-nearest, so a QuantizeLinear cannot reproduce it"
    if any(c.zero_point for c in codes):
        return f"{name}: needs a zero point, and {spec.runtime}'s formats are symmetric on this side"
    formats = [f for f in spec.formats if _covers(f, op_type)]
    labels = ("signed",) if role == "weight" else ("signed", "unsigned")
    for label, c in zip(labels, codes):  # the data sign whose codes fit no container
        if not any(_side_fits(f, role, [c], b) for f in formats for b in f.bits):
            rules = "/".join(sorted({f"{f.weight if role == 'weight' else f.activation} {f.name}" for f in formats}))
            return f"{name}: {label} codes [{c.qmin}, {c.qmax}] do not fit {rules}"
    return f"{name}: no format of {spec.runtime} holds it"


def place_layer(layer, spec: DeploymentSpec | None, op_type: str | None = None) -> LayerPlacement:
    """A policy entry (``hwqnn.policy.LayerPolicy``) of an ``op_type`` layer (None: any) on a device: its
    status and the precision it is priced as."""
    from .policy import FLOAT as FLOAT_SCHEME

    if layer.w_scheme == FLOAT_SCHEME or layer.a_scheme == FLOAT_SCHEME:
        sides = [("float", b) if s == FLOAT_SCHEME else _facts(s, r, b)
                 for s, b, r in ((layer.w_scheme, layer.w_bits, "weight"), (layer.a_scheme, layer.a_bits, "activation"))]
        return LayerPlacement(FLOAT, LayerPrecision(sides[0][0], sides[0][1], sides[1][0], sides[1][1]),
                              note="the policy keeps this layer in float")
    w = price_tensor(layer.w_scheme, "weight", layer.w_bits, spec, op_type)
    a = price_tensor(layer.a_scheme, "activation", layer.a_bits, spec, op_type)
    side = None if w.side_bytes == SCALE_BYTES else w.side_bytes  # None: the cost model's default, one scale
    precision = LayerPrecision(w.kind, w.bits, a.kind, a.bits, side)
    if spec is None:
        return LayerPlacement(UNKNOWN, precision, note=w.note)
    if w.status == NATIVE and a.status == NATIVE:
        fmt = w.format if w.bits >= a.bits else a.format
        return LayerPlacement(NATIVE, precision, fmt)
    notes = "; ".join(p.note for p in (w, a) if p.status != NATIVE)
    statuses = {w.status, a.status} - {NATIVE}
    if UNSUPPORTED in statuses:
        return LayerPlacement(UNSUPPORTED, precision, note=notes)
    if FLOAT in statuses:  # a layer with one float operand runs in float
        bits = spec.float_bits
        return LayerPlacement(FLOAT, LayerPrecision("float", bits, "float", bits), note=notes)
    return LayerPlacement(EMULATED, precision, note=notes)


def deployable_bits(scheme: str, role: str, bits_range: tuple[int, int], spec: DeploymentSpec | None,
                    op_type: str | None = None) -> tuple[int, ...]:
    """The bits in ``bits_range`` at which ``scheme`` runs natively for ``role`` of an ``op_type`` layer
    (all of them without a spec). The range bounds effective bits: binary (1 bit) is outside 2:8."""
    module = create_scheme(scheme, role=role)
    low, high = bits_range
    candidates = ([module.fixed_bits] if low <= module.fixed_bits <= high else []) if module.fixed_bits is not None \
        else range(low, high + 1)
    if spec is None:
        return tuple(candidates)
    return tuple(b for b in candidates if price_tensor(scheme, role, b, spec, op_type).status == NATIVE)


def check_deployable(policy, layer_names, profile, op_types=None) -> None:
    """Raise DeploymentError naming the first layer ``profile``'s runtime cannot run at all (``unsupported``)."""
    spec = getattr(profile, "deployment", None)
    for i, name in enumerate(layer_names):
        placement = place_layer(policy.resolve(name), spec, op_types[i] if op_types else None)
        if placement.status == UNSUPPORTED:
            raise DeploymentError(f"layer '{name}' is not deployable on {profile.name}: {placement.note}")


def runs_as(policy, layer_names, profile, op_types=None) -> dict[str, str]:
    """Per layer, how ``profile``'s runtime runs ``policy``: ``native int8``, ``float as fp16``, ... ."""
    spec = profile.deployment
    out = {}
    for i, name in enumerate(layer_names):
        placement = place_layer(policy.resolve(name), spec, op_types[i] if op_types else None)
        p = placement.precision
        what = f"fp{p.w_bits}" if p.w_kind == "float" else f"{p.w_kind}{p.w_bits}/{p.a_kind}{p.a_bits}"
        if placement.status == NATIVE:
            out[name] = f"native {placement.format}"
        elif placement.status == UNKNOWN:
            out[name] = f"{what} (profile has no deployment section)"
        else:
            out[name] = f"{placement.status} as {what}"
    return out


def restrict_to_target(qmodel, profile, *, allow_emulated: bool = False) -> list[str]:
    """Narrow every slot of ``qmodel`` to the (scheme, bits) pairs ``profile``'s runtime runs natively.

    A layer with a tensor that no candidate runs natively (an embedding on TensorRT, whose int8 formats
    cover conv, linear and matmul) stays float, as the runtime runs it; the names of such layers are
    returned and logged. When no layer at all is left to quantize, that is a DeploymentError. With
    ``allow_emulated`` every pair stays (except those the runtime cannot run at all), priced at its real
    fallback cost (float, or a wider container). A profile without a ``deployment`` section leaves the
    space as it is, priced from the schemes' own facts.
    """
    spec = profile.deployment
    if spec is None:
        return []
    # A join is 8 bits wide: it may be unsigned only where an 8-bit format takes unsigned or asymmetric
    # activations (TensorRT's int8 is symmetric; the T4's unsigned int4 format does not hold 8-bit codes).
    symmetric_only = not spec.flexible and not any(
        not f.flexible and 8 in f.bits and f.activation != "symmetric" for f in spec.formats)
    for join in qmodel.joins():
        join.set_signed_only(symmetric_only)
    wanted = (NATIVE,) if not allow_emulated else (NATIVE, EMULATED, FLOAT, UNKNOWN)
    kept_float, reasons = [], []
    for layer, role, slot in qmodel.slots():
        if slot.pinned_float:
            continue
        op = qmodel.layer(layer)
        allowed = {name: tuple(b for b in deployable_bits(name, role, slot.bits_range, None)
                               if price_tensor(name, role, b, spec, op.op_type).status in wanted)
                   for name in slot.scheme_names}
        try:
            slot.restrict(allowed, spec, op.op_type)
        except SchemeError:
            for s in op.slots:  # a layer with one float operand runs in float
                s.pin_float()
            kept_float.append(layer)
            reasons.append(_why_not(slot.scheme_names[0], role, slot.bits_range[1], spec, op.op_type))
    if kept_float and len(kept_float) == len(qmodel.layer_names):
        hint = ("" if allow_emulated else "; search with --allow-emulated (allow_emulated=True) to price "
                "non-native layers at their real fallback cost")
        why = reasons[0] if spec.formats else f"{spec.runtime} has no native integer format on this device"
        raise DeploymentError(f"{profile.name}: no layer of the model can be quantized natively ({why}){hint}")
    if kept_float:
        log.warning("%s: %d layer(s) stay float, as %s runs them (no native format): %s (e.g. %s)", profile.name,
                    len(kept_float), spec.runtime, ", ".join(kept_float), reasons[0])
    return kept_float


__all__ = ["TensorPrice", "LayerPlacement", "price_tensor", "place_layer", "deployable_bits", "native_container",
           "check_deployable", "restrict_to_target", "runs_as", "NATIVE", "EMULATED", "FLOAT", "UNSUPPORTED", "UNKNOWN"]
