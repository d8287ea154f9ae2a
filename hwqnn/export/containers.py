"""Integer containers a Q/DQ tensor can be stored in, and how to pick one for a grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Container:
    """An ONNX integer element type: its name, range, and the first opset whose Q/DQ accepts it."""

    name: str
    low: int
    high: int
    min_opset: int
    bits: int


INT4 = Container("int4", -8, 7, 21, 4)
UINT4 = Container("uint4", 0, 15, 21, 4)
INT8 = Container("int8", -128, 127, 13, 8)
UINT8 = Container("uint8", 0, 255, 13, 8)
INT16 = Container("int16", -32768, 32767, 21, 16)
UINT16 = Container("uint16", 0, 65535, 21, 16)
#: Order of preference: narrowest first, signed before unsigned.
CONTAINERS = (INT4, UINT4, INT8, UINT8, INT16, UINT16)
#: The opset that first allows 4-bit (and 16-bit) Q/DQ.
INT4_OPSET = 21


def choose_container(qmin: int, qmax: int, zero_point: np.ndarray, *, int4: bool, opset: int) -> Container | None:
    """The narrowest container holding ``[qmin, qmax]`` and the zero points, or None.

    4-bit containers are used only when ``int4`` is asked for; every container must exist at ``opset``.
    """
    zmin, zmax = int(np.min(zero_point, initial=0)), int(np.max(zero_point, initial=0))
    for container in CONTAINERS:
        if container.bits == 4 and not int4:
            continue
        if container.min_opset > opset:
            continue
        if container.low <= min(qmin, zmin) and max(qmax, zmax) <= container.high:
            return container
    return None
