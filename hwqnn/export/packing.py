"""Bit packing of integer weight codes: the bytes a device stores for a b-bit tensor.

Codes are stored as unsigned offsets from the grid's minimum (``value - qmin``), ``bits`` bits each,
little-endian within a byte stream, with no padding between elements. The size reported by the export
is ``len(pack_codes(...))``, so it is what a device would really hold, not an estimate.
"""

from __future__ import annotations

import math

import numpy as np

from cost_models import SCALE_BYTES_PER_CHANNEL

from ..errors import ExportError

#: Bytes of one float32 scale or codebook entry (what TensorRT and ONNX store scales as): the cost model's.
SCALE_BYTES = SCALE_BYTES_PER_CHANNEL


def packed_nbytes(count: int, bits: int) -> int:
    """Bytes that ``count`` codes of ``bits`` bits occupy once packed."""
    return math.ceil(count * bits / 8)


def code_bits(levels: int) -> int:
    """Smallest number of bits that can index ``levels`` distinct values (at least 1)."""
    return max(1, math.ceil(math.log2(max(levels, 1))))


def pack_codes(values: np.ndarray, bits: int, qmin: int = 0) -> bytes:
    """Pack integer ``values`` in ``[qmin, qmin + 2**bits - 1]`` into a byte string of ``bits``-bit codes."""
    if not 1 <= bits <= 32:
        raise ExportError(f"pack_codes got bits={bits}; expected an integer in [1, 32]")
    codes = np.asarray(values, dtype=np.int64).ravel() - int(qmin)
    if codes.size and (codes.min() < 0 or codes.max() >= 2**bits):
        raise ExportError(
            f"pack_codes: values span [{codes.min() + qmin}, {codes.max() + qmin}], which does not fit "
            f"{bits} bits from qmin={qmin}; pass the grid's qmin and enough bits")
    # One row of `bits` little-endian bits per code, then numpy packs the flat bit stream.
    bit_matrix = (codes[:, None] >> np.arange(bits, dtype=np.int64)[None, :]) & 1
    return np.packbits(bit_matrix.astype(np.uint8).ravel(), bitorder="little").tobytes()


def unpack_codes(data: bytes, bits: int, count: int, qmin: int = 0) -> np.ndarray:
    """Inverse of :func:`pack_codes`: ``count`` integers of ``bits`` bits each, shifted back by ``qmin``."""
    if len(data) < packed_nbytes(count, bits):
        raise ExportError(f"unpack_codes: {len(data)} bytes hold fewer than {count} codes of {bits} bits")
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")[: count * bits]
    bit_matrix = flat.reshape(count, bits).astype(np.int64)
    return (bit_matrix << np.arange(bits, dtype=np.int64)[None, :]).sum(axis=1) + int(qmin)
