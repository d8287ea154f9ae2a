"""The few collectives hwqnn needs beside DDP's gradient all-reduce: agreement checks and broadcasts.

Each one is a no-op in a single process, so callers never branch on whether a job is distributed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

import torch
import torch.distributed as dist

from ._context import DistributedContext
from ._errors import DistributedError


def _gather(context: DistributedContext, value) -> list:
    if not context.active:
        return [value]
    gathered: list = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_from_main(context: DistributedContext, value):
    """Rank 0's ``value`` on every rank (pickled over the job's own process group; never read from a file)."""
    if not context.active or context.world_size == 1:
        return value
    box = [value if context.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(context: DistributedContext, fn):
    """Run ``fn`` on rank 0 only; every rank gets its result, or raises the user error it raised there."""
    from cost_models import UserError

    outcome = None
    if context.is_main:
        try:
            outcome = (True, fn())
        except UserError as exc:
            if not context.active or context.world_size == 1:
                raise
            outcome = (False, exc)
    ok, value = broadcast_from_main(context, outcome)
    if not ok:
        raise value
    return value


def check_agreement(context: DistributedContext, what: str, settings: Mapping) -> None:
    """Fail on every rank, naming the first field that differs, when the ranks were launched differently."""
    gathered = _gather(context, json.loads(json.dumps(dict(settings), sort_keys=True, default=str)))
    reference = gathered[0]
    for rank, other in enumerate(gathered[1:], start=1):
        if other == reference:
            continue
        keys = sorted(set(reference) | set(other))
        field = next(k for k in keys if reference.get(k) != other.get(k))
        raise DistributedError(f"ranks disagree on the {what}: rank {rank} has {field}={other.get(field)!r} where "
                               f"rank 0 has {reference.get(field)!r}; launch every rank with the same arguments")


def all_reduce_sums(context: DistributedContext, values: Iterable[float]) -> list[float]:
    """Element-wise sums of ``values`` over the ranks (float64, so counts stay exact)."""
    values = list(values)
    if not context.active or context.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    if context.backend == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def state_digest(tensors: Iterable[torch.Tensor], extra: Mapping | None = None) -> str:
    """SHA-256 of the exact bytes of ``tensors`` (in order) and of ``extra`` (JSON): equal iff bitwise equal."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    if extra is not None:
        digest.update(json.dumps(extra, sort_keys=True, default=repr).encode())
    return digest.hexdigest()


def check_identical(context: DistributedContext, what: str, digest: str) -> list[str]:
    """Every rank's digest; raises when one rank's ``what`` has drifted from rank 0's."""
    gathered = _gather(context, digest)
    drifted = [rank for rank, d in enumerate(gathered) if d != gathered[0]]
    if drifted:
        raise DistributedError(f"the {what} of rank(s) {drifted} differ from rank 0's (digest {gathered[0][:12]}); "
                               f"this is a bug in hwqnn's distributed training, please report it")
    return gathered


def barrier(context: DistributedContext) -> None:
    if context.active and context.world_size > 1:
        dist.barrier()


__all__ = ["on_main", "broadcast_from_main", "check_agreement", "all_reduce_sums", "state_digest", "check_identical", "barrier"]
