"""Energy per multiply-accumulate and per byte: Horowitz (ISSCC 2014) 45 nm defaults and scaling rules.

Source of every default: M. Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014, table of 45 nm / 0.9 V energies: integer add 8-bit 0.03 pJ, 32-bit 0.1 pJ; integer
multiply 8-bit 0.2 pJ, 32-bit 3.1 pJ; float add 16-bit 0.4 pJ, 32-bit 0.9 pJ; float multiply 16-bit
1.1 pJ, 32-bit 3.7 pJ; 64-bit SRAM read 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB); 64-bit DRAM
access 1.3-2.6 nJ.

Scaling rules (documented in hardware_profiles/README.md):
- integer MAC (also binary passes, bit-bricks, bit-serial): multiplier energy grows with the product
  of the operand widths, the accumulating adder with their sum:
  ``e(bw, ba) = e_mult8 * bw*ba/64 + e_add32 * (bw+ba)/16`` (0.3 pJ at 8x8).
- shift MAC (power-of-two weights): a shift plus the accumulate, ``e_add8 * ba/8 + e_add32 * (bw+ba)/16``.
- a profile's ``energy.int8_mac`` rescales the integer and shift formulas so that 8x8 equals it;
  ``float16_mac`` / ``float32_mac`` replace the float defaults.
"""

from __future__ import annotations

HOROWITZ_SOURCE = "Horowitz, 'Computing's energy problem', ISSCC 2014 (45 nm, 0.9 V)"
INT8_ADD = 0.03e-12
INT32_ADD = 0.1e-12
INT8_MULT = 0.2e-12
FLOAT16_MAC = 1.1e-12 + 0.4e-12
FLOAT32_MAC = 3.7e-12 + 0.9e-12

#: Default energy per byte of each memory level (J/B), from the same table.
DEFAULT_ENERGY_PER_BYTE = {
    "dram": 1.3e-9 / 8,  # low end of the 1.3-2.6 nJ per 64-bit DRAM access
    "sram": 20e-12 / 8,  # 32 KB SRAM, 20 pJ per 64-bit read
}


def _int_formula(bw: int, ba: int) -> float:
    return INT8_MULT * bw * ba / 64 + INT32_ADD * (bw + ba) / 16


def _shift_formula(bw: int, ba: int) -> float:
    return INT8_ADD * ba / 8 + INT32_ADD * (bw + ba) / 16


def default_mac_energy(key: str) -> float:
    """The default of one ``energy:`` field of a profile (``int8_mac``, ``float16_mac``, ``float32_mac``), in J."""
    return {"int8_mac": _int_formula(8, 8), "float16_mac": FLOAT16_MAC, "float32_mac": FLOAT32_MAC}[key]


def mac_energy(kind: str, bw: int, ba: int, overrides: dict[str, float]) -> float:
    """Energy (J) of one MAC of ``kind`` executed at ``bw`` x ``ba`` bits on a device with ``overrides``."""
    if kind == "float":
        key = "float16_mac" if max(bw, ba) <= 16 else "float32_mac"
        default = FLOAT16_MAC if key == "float16_mac" else FLOAT32_MAC
        return overrides.get(key, default)
    scale = overrides.get("int8_mac", _int_formula(8, 8)) / _int_formula(8, 8)
    if kind == "shift":
        return scale * _shift_formula(bw, ba)
    return scale * _int_formula(bw, ba)  # int and binary (a binary pass is a 1-bit integer product)
