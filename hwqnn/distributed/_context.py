"""Which process this is in a torch.distributed job, and the process group it joins.

hwqnn never launches processes itself: ``torchrun`` (or any launcher that sets the same environment
variables: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) does. When those
variables are present the process group is initialised here, once: gloo for CPU runs, NCCL for CUDA.
Without them every call below describes a single process and no collective is ever issued.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ._errors import DistributedError

log = logging.getLogger(__name__)
#: How long a collective waits for the other ranks before failing (a dead peer must not hang a run forever).
DEFAULT_TIMEOUT_S = float(os.environ.get("HWQNN_DIST_TIMEOUT_S", 600))


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job. ``world_size == 1`` and ``active`` False outside a launcher."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        """Whether a process group is up (collectives are issued, even in a world of one)."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        """Rank 0 is the only process that writes files."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The device this rank trains on: ``cuda`` becomes this node's ``cuda:LOCAL_RANK``."""
        if self.active and device.type == "cuda" and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA tensors, gloo for everything else (CPU)."""
    return "nccl" if device.type == "cuda" else "gloo"


def current_context(device: torch.device | str = "cpu") -> DistributedContext:
    """The context of this process, initialising the process group from the launcher's environment once."""
    if dist.is_available() and dist.is_initialized():
        return DistributedContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                                  dist.get_backend())
    if not launched_by_torchrun():
        return DistributedContext()
    device = torch.device(device) if not isinstance(device, torch.device) else device
    backend = backend_for(device)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=DEFAULT_TIMEOUT_S))
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(f"cannot join the torch.distributed job (backend {backend}, "
                               f"MASTER_ADDR={os.environ.get('MASTER_ADDR')}, MASTER_PORT={os.environ.get('MASTER_PORT')}): "
                               f"{str(exc).splitlines()[0]}; check the launcher's rendezvous settings") from None
    context = DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, backend)
    log.info("rank %d of %d joined the %s process group", context.rank, context.world_size, backend)
    return context


__all__ = ["DistributedContext", "current_context", "launched_by_torchrun", "backend_for", "DEFAULT_TIMEOUT_S"]
