"""How a layer is executed, in hardware terms: the input of every cost model.

hwqnn's policies name schemes; the cost models only need each tensor's compute kind and bits, so a
policy reaches them as one :class:`LayerPrecision` per layer (``Policy.to_precisions()``) or as a
uniform string such as ``"w4a8"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import PolicyFormatError

COMPUTE_KINDS = ("int", "binary", "shift", "float")
_UNIFORM = re.compile(r"^w(\d+)a(\d+)$")


@dataclass(frozen=True)
class LayerPrecision:
    """Compute kind and bits of a layer's weight (second operand) and input activation, as the device runs them."""

    w_kind: str
    w_bits: int
    a_kind: str
    a_bits: int
    #: Bytes stored per output channel beside the weight codes (scale, zero point, lookup table);
    #: None: one fp32 scale (4 B). The exporter's packing rule (hwqnn.export) uses the same numbers.
    w_side_bytes: float | None = None

    def __post_init__(self) -> None:
        for side in ("w", "a"):
            kind, bits = getattr(self, f"{side}_kind"), getattr(self, f"{side}_bits")
            if kind not in COMPUTE_KINDS:
                raise PolicyFormatError(f"{side}_kind must be one of {COMPUTE_KINDS}, got {kind!r}")
            if kind == "float" and bits not in (16, 32):
                raise PolicyFormatError(f"a float {side} precision must be 16 or 32 bits, got {bits!r}")
            if not isinstance(bits, int) or not 1 <= bits <= 32:
                raise PolicyFormatError(f"{side}_bits must be an integer in [1, 32], got {bits!r}")
        if self.w_side_bytes is not None and not (isinstance(self.w_side_bytes, (int, float))
                                                  and 0 <= self.w_side_bytes < 2**40):
            raise PolicyFormatError(f"w_side_bytes must be a non-negative number of bytes, got {self.w_side_bytes!r}")


def parse_uniform(spec: str) -> LayerPrecision:
    """Parse ``fp32``, ``fp16``, or ``wXaY`` (integer, 1 <= X, Y <= 16; ``w1`` means binary weights)."""
    text = spec.strip().lower()
    if text in ("fp32", "float", "float32"):
        return LayerPrecision("float", 32, "float", 32)
    if text in ("fp16", "float16", "half"):
        return LayerPrecision("float", 16, "float", 16)
    match = _UNIFORM.match(text)
    if not match:
        raise PolicyFormatError(f"uniform policy {spec!r} not understood; expected fp32, fp16 or wXaY such as w8a8, w4a8")
    w_bits, a_bits = int(match[1]), int(match[2])
    for what, bits in (("weight", w_bits), ("activation", a_bits)):
        if not 1 <= bits <= 16:
            raise PolicyFormatError(f"uniform policy {spec!r}: {what} bits must be in [1, 16], got {bits}")
    return LayerPrecision("binary" if w_bits == 1 else "int", w_bits, "binary" if a_bits == 1 else "int", a_bits)


def resolve_precisions(policy, layer_names: Sequence[str], profile=None,
                       op_types: Sequence[str] | None = None) -> list[LayerPrecision]:
    """One LayerPrecision per layer name, from a uniform string, a mapping, or an object with
    ``to_precisions()`` (hwqnn's Policy, which prices each layer as ``profile``'s runtime runs it when
    given one, for the layers' workload ``op_types``). Every layer must be covered; unknown layers are an error."""
    if isinstance(policy, str):
        p = parse_uniform(policy)
        return [p] * len(layer_names)
    if hasattr(policy, "to_precisions"):
        policy = (policy.to_precisions(layer_names, profile, op_types) if profile is not None and _takes_profile(policy)
                  else policy.to_precisions(layer_names))
    if isinstance(policy, LayerPrecision):
        return [policy] * len(layer_names)
    if not isinstance(policy, Mapping):
        raise PolicyFormatError(
            f"policy must be a uniform string, a mapping of layer name to LayerPrecision, or a Policy; "
            f"got {type(policy).__name__}")
    unknown = sorted(set(policy) - set(layer_names))
    if unknown:
        raise PolicyFormatError(f"policy names layers the model does not have: {unknown}; model layers: {list(layer_names)}")
    missing = [n for n in layer_names if n not in policy]
    if missing:
        raise PolicyFormatError(f"policy does not cover layers {missing}")
    out = []
    for name in layer_names:
        p = policy[name]
        if not isinstance(p, LayerPrecision):
            raise PolicyFormatError(f"policy entry for layer '{name}' must be a LayerPrecision, got {type(p).__name__}")
        out.append(p)
    return out


def _takes_profile(policy) -> bool:
    """Whether ``policy.to_precisions`` accepts a profile and op types (hwqnn's Policy does; a user's may not)."""
    import inspect

    try:
        return len(inspect.signature(policy.to_precisions).parameters) >= 3
    except (TypeError, ValueError):
        return False
