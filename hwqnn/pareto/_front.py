"""Pareto math as pure numpy functions over objectives that are all to be *minimised* (optuna style).

Conventions, stated once so callers need not guess:

* ``a`` dominates ``b`` when ``a <= b`` in every objective and ``a < b`` in at least one.
* Duplicates (equal in every objective) never dominate each other: all copies of a non-dominated
  point are on the front, and :func:`non_dominated_mask` marks every copy.
* Ties in some objectives are decided by the others (a point equal in cost but less accurate is dominated).
* :func:`hypervolume` counts duplicates once: they enclose no extra volume.
* NaN objectives are rejected (``ValueError``): a failed run is not a point, leave it out before calling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_objectives(values: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """A float (n, m) array of finite-or-infinite objectives with m >= 1; rejects NaN and bad shapes."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, 1)
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"objectives must be a 2-D array (points x objectives), got shape {array.shape}")
    if np.isnan(array).any():
        rows = np.flatnonzero(np.isnan(array).any(axis=1)).tolist()
        raise ValueError(f"objectives contain NaN in rows {rows}; drop failed points before Pareto analysis")
    return array


def to_minimize(values: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool]) -> np.ndarray:
    """Negate the columns flagged in ``maximize`` so every objective is to be minimised."""
    array = as_objectives(values)
    if len(maximize) != array.shape[1]:
        raise ValueError(f"maximize has {len(maximize)} flags for {array.shape[1]} objectives")
    signs = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    return array * signs


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is no worse than ``b`` everywhere and strictly better somewhere (minimisation)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_mask(values: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Boolean mask of the points no other point dominates (every copy of a duplicate is kept)."""
    array = as_objectives(values)
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype=bool)
    # no_worse[i, j]: point j is <= point i everywhere; strictly[i, j]: and < somewhere.
    no_worse = np.all(array[None, :, :] <= array[:, None, :], axis=2)
    strictly = np.any(array[None, :, :] < array[:, None, :], axis=2)
    dominated = np.any(no_worse & strictly, axis=1)
    return ~dominated


def non_dominated_ranks(values: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Front index of every point: 0 for the Pareto front, 1 for the front once 0 is removed, and so on."""
    array = as_objectives(values)
    ranks = np.full(len(array), -1, dtype=int)
    remaining = np.arange(len(array))
    rank = 0
    while remaining.size:
        mask = non_dominated_mask(array[remaining])
        ranks[remaining[mask]] = rank
        remaining = remaining[~mask]
        rank += 1
    return ranks


def hypervolume(values: np.ndarray | Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Volume dominated by ``values`` and bounded by ``reference`` (minimisation, exact).

    Points that do not beat the reference strictly in every objective enclose nothing and are ignored.
    Exact by slicing the last objective (2-D base case by a sweep): fine for the tens of points of a sweep.
    """
    array = as_objectives(values)
    ref = np.asarray(reference, dtype=float)
    if ref.shape != (array.shape[1],):
        raise ValueError(f"reference point has {ref.size} coordinates for {array.shape[1]} objectives")
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"reference point must be finite, got {ref.tolist()}")
    inside = array[np.all(array < ref, axis=1)]
    if len(inside) == 0:
        return 0.0
    inside = np.unique(inside, axis=0)
    inside = inside[non_dominated_mask(inside)]
    return float(_hv(inside, ref))


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    if points.shape[1] == 2:
        return _hv_2d(points, ref)
    order = np.argsort(points[:, -1], kind="stable")
    points = points[order]
    total = 0.0
    levels = np.append(points[:, -1], ref[-1])
    for i in range(len(points)):
        height = levels[i + 1] - levels[i]
        if height <= 0:
            continue
        slab = points[: i + 1, :-1]
        total += height * _hv(slab[non_dominated_mask(slab)], ref[:-1])
    return total


def _hv_2d(points: np.ndarray, ref: np.ndarray) -> float:
    order = np.lexsort((points[:, 1], points[:, 0]))
    total, best_y = 0.0, ref[1]
    for x, y in points[order]:
        if y < best_y:
            total += (ref[0] - x) * (best_y - y)
            best_y = y
    return total
