"""Exact step functions for activation quantizers whose levels are not a uniform grid (pot, binary, ...).

In eval mode such a quantizer is an elementwise step function of its input (not always monotone:
residual binarization with a second scale larger than the first is not): a few levels and the
thresholds where it jumps. :func:`find_steps` recovers both exactly by bisection over
float32 values in their bit order, so each threshold is the smallest float32 mapped to the next level.
ONNX then evaluates ``levels[#{thresholds <= x}]`` by a binary search written with Gather/Where
(log2(levels) steps, memory of one tensor, no float arithmetic, hence bit-exact).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

#: The most levels a step function may have (a 16-bit grid has 65,536).
MAX_LEVELS = 2**16 + 1
#: The input range searched; beyond it the quantizer is assumed constant (it clips).
SEARCH_LIMIT = 1e30


def to_ordered(values: np.ndarray) -> np.ndarray:
    """Map float32 values to int64 keys with the same order (adjacent floats get adjacent keys)."""
    bits = np.asarray(values, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits >= 0, bits, -(bits & 0x7FFFFFFF))


def from_ordered(keys: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_ordered`."""
    keys = np.asarray(keys, dtype=np.int64)
    unsigned = np.where(keys >= 0, keys, -keys + 0x80000000).astype(np.uint32)
    return unsigned.view(np.float32)


def find_steps(function: Callable[[Tensor], Tensor], probes: Tensor | None = None, low: float = -SEARCH_LIMIT,
               high: float = SEARCH_LIMIT) -> tuple[np.ndarray, np.ndarray] | None:
    """(thresholds, levels) with ``function(x) == levels[sum(thresholds <= x)]`` on ``[low, high]``.

    The search starts from ``low``, ``high``, 0 and the ``probes`` (e.g. real inputs), and bisects every
    pair of neighbours with different outputs down to adjacent floats. A level that starts and ends
    between two neighbours with equal outputs can be missed, so callers verify the result on real
    inputs. None if there are more than ``MAX_LEVELS`` levels. The function must be elementwise.
    """

    def evaluate(keys: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.from_numpy(from_ordered(keys).copy())
            return function(x).detach().float().cpu().numpy().reshape(-1)

    seeds = [np.array([low, 0.0, high], dtype=np.float32)]
    if probes is not None:
        seeds.append(probes.detach().float().cpu().numpy().reshape(-1).clip(low, high))
    keys = np.unique(to_ordered(np.concatenate(seeds)))
    values = evaluate(keys)
    jumps: list[tuple[int, float]] = []
    differ = values[1:] != values[:-1]
    frontier = list(zip(keys[:-1][differ], keys[1:][differ], values[1:][differ]))
    while frontier:
        if len(jumps) + len(frontier) >= MAX_LEVELS:
            return None
        jumps.extend((int(b), float(fb)) for a, b, fb in frontier if b - a == 1)
        splittable = [(a, b, fb) for a, b, fb in frontier if b - a > 1]
        if not splittable:
            break
        starts = np.array([a for a, _, _ in splittable], dtype=np.int64)
        ends = np.array([b for _, b, _ in splittable], dtype=np.int64)
        mids = starts + (ends - starts) // 2
        # Values at the interval starts are needed to decide which half still holds a jump.
        start_values, mid_values = np.split(evaluate(np.concatenate([starts, mids])), 2)
        frontier = []
        for a, m, b, fa, fm, (_, _, fb) in zip(starts, mids, ends, start_values, mid_values, splittable):
            if fm != fa:
                frontier.append((int(a), int(m), float(fm)))
            if fm != fb:
                frontier.append((int(m), int(b), float(fb)))
    jumps.sort()
    thresholds = from_ordered(np.array([k for k, _ in jumps], dtype=np.int64))
    levels = np.array([values[0]] + [v for _, v in jumps], dtype=np.float32)
    return thresholds, levels


def apply_steps(x: Tensor, thresholds: np.ndarray, levels: np.ndarray) -> Tensor:
    """PyTorch reference of the ONNX lookup: ``levels[searchsorted(thresholds, x, right=True)]``."""
    index = torch.searchsorted(torch.from_numpy(thresholds), x.float().contiguous(), right=True)
    return torch.from_numpy(levels)[index]


def padded_tables(thresholds: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Tables for the ONNX binary search: thresholds padded with +inf to ``2**k - 1`` entries, levels to
    ``2**k``, and the search steps ``2**(k-1), ..., 1``."""
    k = max(1, int(np.ceil(np.log2(len(thresholds) + 1))))
    size = 2**k - 1
    padded_thresholds = np.full(size, np.inf, dtype=np.float32)
    padded_thresholds[: len(thresholds)] = thresholds
    padded_levels = np.full(size + 1, levels[-1], dtype=np.float32)
    padded_levels[: len(levels)] = levels
    return padded_thresholds, padded_levels, [2**i for i in range(k - 1, -1, -1)]
