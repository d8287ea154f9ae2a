"""Where and how one layer's MACs run, for every (w_kind, a_kind, w_bits, a_bits) with bits in 1..32.

Two steps, both documented in hardware_profiles/README.md:

1. **Execution kind** from the two operands' kinds: ``float`` if either is float (fp16 when every float
   side is <= 16 bits and any integer side has <= 11 bits, else fp32); ``binary`` if both are binary;
   ``shift`` if one is shift and the other int, shift or binary; otherwise ``int`` (a binary side counts
   as an integer of its bits, i.e. its number of binary passes).
2. **Device mapping** of that kind and bits onto the profile: the smallest native precision that holds
   both operands (roofline), ``ceil(bw/g)*ceil(ba/g)`` bricks (bitbrick) or ``bw*ba`` bit-serial
   cycles (bitserial). A kind the device lacks runs as the next one: binary -> int, shift -> int at the
   bits its power-of-two levels need as integers (``2**(b-1)+1``), int -> float, fp16 -> fp32, a kind
   with ``emulated_as`` -> that kind; if nothing on the device fits, the ``fallback`` device runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .energy import mac_energy
from .errors import ProfileError
from .precision import COMPUTE_KINDS

MAX_BITS = 32
FP16_EXACT_INT_BITS = 11  # fp16 has an 11-bit significand: wider integers need fp32
KIND_INDEX = {kind: i for i, kind in enumerate(COMPUTE_KINDS)}


PRECISION_LABEL_PREFIX = {"float": "fp", "int": "int", "binary": "binary", "shift": "shift"}


def precision_label(kind: str, w_bits: int, a_bits: int) -> str:
    """The precision a MAC executes at, as profiles name it: ``fp32``, ``fp16``, ``int8``, ``int4``..."""
    return f"{PRECISION_LABEL_PREFIX[kind]}{max(int(w_bits), int(a_bits))}"


def label_codes(tables: ExecutionTables) -> np.ndarray:
    """Per cell, ``kind index * 64 + executed bits``: an integer key of its precision label."""
    return tables.kind * 64 + np.maximum(tables.w_bits, tables.a_bits)


@dataclass(frozen=True)
class Execution:
    """How one MAC runs: on which device (0 = this profile, 1 = its fallback), as which kind and bits."""

    device: int
    kind: str
    w_bits: int
    a_bits: int
    seconds_per_mac: float  # at the device's peak (efficiency is applied later)
    energy_per_mac: float


@dataclass(frozen=True)
class ExecutionTables:
    """Arrays shaped [4, 4, 32, 32] indexed by (w_kind, a_kind, w_bits - 1, a_bits - 1)."""

    device: np.ndarray
    kind: np.ndarray
    w_bits: np.ndarray
    a_bits: np.ndarray
    seconds_per_mac: np.ndarray
    energy_per_mac: np.ndarray

    def lookup(self, w_kind: str, a_kind: str, w_bits: int, a_bits: int) -> Execution:
        i = (KIND_INDEX[w_kind], KIND_INDEX[a_kind], w_bits - 1, a_bits - 1)
        return Execution(int(self.device[i]), COMPUTE_KINDS[int(self.kind[i])], int(self.w_bits[i]),
                         int(self.a_bits[i]), float(self.seconds_per_mac[i]), float(self.energy_per_mac[i]))


def shift_as_int_bits(bits: int) -> int:
    """Integer bits that hold a ``bits``-bit power-of-two code (sign + exponents 0 .. 2**(bits-1)-1)."""
    return min(MAX_BITS, 2 ** (bits - 1) + 1)


def _float_bits(bits: int) -> int:
    return 16 if bits <= 16 else 32


def combine_kinds(w_kind: str, w_bits: int, a_kind: str, a_bits: int) -> tuple[str, int, int, int, int]:
    """(kind, bw, ba, bw as int, ba as int): the execution kind and what it means as integers."""
    w_int = shift_as_int_bits(w_bits) if w_kind == "shift" else w_bits
    a_int = shift_as_int_bits(a_bits) if a_kind == "shift" else a_bits
    if "float" in (w_kind, a_kind):
        widths = [_float_bits(b) for k, b in ((w_kind, w_bits), (a_kind, a_bits)) if k == "float"]
        widths += [32 if b > FP16_EXACT_INT_BITS else 16 for k, b in ((w_kind, w_int), (a_kind, a_int)) if k != "float"]
        bits = max(widths)
        return "float", bits, bits, bits, bits
    if w_kind == "binary" and a_kind == "binary":
        return "binary", w_bits, a_bits, w_bits, a_bits
    if "shift" in (w_kind, a_kind):
        return "shift", w_bits, a_bits, w_int, a_int
    return "int", w_bits, a_bits, w_int, a_int


def _smallest_native(native: tuple[int, ...], need: int) -> int | None:
    fits = [b for b in native if b >= need]
    return min(fits) if fits else None


def resolve_on(profile, kind: str, bw: int, ba: int, bw_int: int, ba_int: int) -> Execution | None:
    """Map an execution kind and bits onto one device, or None if nothing on it can run it."""
    spec = profile.compute.get(kind)
    energy = profile.energy_per_mac
    if spec is not None and spec.emulated_as:
        target, bits = spec.emulated_as
        return resolve_on(profile, target, bits, bits, bits, bits)
    if kind == "float":
        if spec is not None:
            native = _smallest_native(spec.native_bits, bw)
            if native is not None:
                return Execution(0, "float", native, native, 2.0 / spec.peak_ops[native],
                                 mac_energy("float", native, native, energy))
        return None
    if spec is not None and profile.type == "roofline":
        if kind == "binary":  # bw x ba binary passes, each one native 1-bit product
            native = _smallest_native(spec.native_bits, 1)
            if native is not None:
                return Execution(0, "binary", bw, ba, 2.0 * bw * ba / spec.peak_ops[native],
                                 mac_energy("binary", bw, ba, energy))
        else:
            native = _smallest_native(spec.native_bits, max(bw, ba))
            if native is not None:
                return Execution(0, kind, native, native, 2.0 / spec.peak_ops[native],
                                 mac_energy(kind, native, native, energy))
    elif spec is not None and kind == "int" and max(bw, ba) <= profile.max_bits:
        brick = profile.brick_bits
        if profile.type == "bitbrick":
            cycles = math.ceil(bw / brick) * math.ceil(ba / brick)
        else:
            cycles = bw * ba
        return Execution(0, "int", bw, ba, 2.0 * cycles / spec.peak_ops[brick if profile.type == "bitbrick" else 1],
                         mac_energy("int", bw, ba, energy))
    if kind in ("binary", "shift"):
        return resolve_on(profile, "int", bw_int, ba_int, bw_int, ba_int)
    if kind == "int":
        need = max(bw, ba)
        float_bits = 16 if need <= FP16_EXACT_INT_BITS else 32
        return resolve_on(profile, "float", float_bits, float_bits, float_bits, float_bits)
    return None


def resolve(profile, w_kind: str, w_bits: int, a_kind: str, a_bits: int) -> Execution:
    """Where one (w_kind, w_bits, a_kind, a_bits) MAC runs: this device, else its fallback."""
    request = combine_kinds(w_kind, w_bits, a_kind, a_bits)
    found = resolve_on(profile, *request)
    if found is None and profile.fallback_profile is not None:
        on_fallback = resolve_on(profile.fallback_profile, *request)
        if on_fallback is not None:
            found = Execution(1, on_fallback.kind, on_fallback.w_bits, on_fallback.a_bits,
                              on_fallback.seconds_per_mac, on_fallback.energy_per_mac)
    if found is None:
        raise ProfileError(
            f"the device cannot run {request[0]} at w{request[1]}a{request[2]} (from w_kind={w_kind}, "
            f"a_kind={a_kind}); declare that kind (or an 'emulated_as' for it) or a 'fallback' device",
            file=profile.file, field="compute")
    return found


def build_tables(profile) -> ExecutionTables:
    """Resolve every cell once (about 16k small lookups, memoized by execution request)."""
    shape = (len(COMPUTE_KINDS), len(COMPUTE_KINDS), MAX_BITS, MAX_BITS)
    arrays = {name: np.zeros(shape, dtype=dtype) for name, dtype in (
        ("device", np.int64), ("kind", np.int64), ("w_bits", np.int64), ("a_bits", np.int64),
        ("seconds_per_mac", np.float64), ("energy_per_mac", np.float64))}
    memo: dict[tuple, Execution] = {}
    for wk, w_kind in enumerate(COMPUTE_KINDS):
        for ak, a_kind in enumerate(COMPUTE_KINDS):
            for bw in range(1, MAX_BITS + 1):
                for ba in range(1, MAX_BITS + 1):
                    key = combine_kinds(w_kind, bw, a_kind, ba)
                    if key not in memo:
                        memo[key] = resolve(profile, w_kind, bw, a_kind, ba)
                    ex = memo[key]
                    cell = (wk, ak, bw - 1, ba - 1)
                    arrays["device"][cell] = ex.device
                    arrays["kind"][cell] = KIND_INDEX[ex.kind]
                    arrays["w_bits"][cell] = ex.w_bits
                    arrays["a_bits"][cell] = ex.a_bits
                    arrays["seconds_per_mac"][cell] = ex.seconds_per_mac
                    arrays["energy_per_mac"][cell] = ex.energy_per_mac
    return ExecutionTables(**arrays)
