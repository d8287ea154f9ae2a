"""How many CPU threads torch gets: a choice that suits the model and the machine, made once at the edge.

torch's default (every core) oversubscribes a shared machine: with another job on a 2-core box the default
search ran 13x slower than with one thread (134.6 s against 10.6 s, issue 14). Small steps gain nothing
from more threads (the synchronisation costs more than the arithmetic), so a step under
``SMALL_STEP_MACS`` gets one thread; a larger one gets the cores that are free now (cores minus the
1-minute load average), at least one.
"""

from __future__ import annotations

import os

#: Multiply-accumulates of one training step (MACs per sample x batch) below which one thread is fastest.
SMALL_STEP_MACS = 1e9


def free_cores() -> int:
    """Cores not busy with other work right now (1-minute load average), at least 1."""
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        busy = 0.0
    return max(1, min(cores, round(cores - busy)))


def choose_threads(requested: int | None, step_macs: float | None = None) -> int:
    """``requested`` when given; else 1 for a small step, else the free cores."""
    if requested:
        return int(requested)
    if step_macs is not None and step_macs < SMALL_STEP_MACS:
        return 1
    return free_cores()


__all__ = ["choose_threads", "free_cores", "SMALL_STEP_MACS"]
