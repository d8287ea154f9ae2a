"""Scale-out on existing engines: torch.distributed (DDP) for training, an optuna study for parallel search.

* :mod:`._context` - which rank this process is; the process group started from ``torchrun``'s environment.
* :mod:`._ddp` / :mod:`._data` - DDP around a phase's model, each rank's share of every global batch.
* :mod:`._batchnorm` / :mod:`._batch_statistics` - BatchNorm and quantizer statistics over the global batch.
* :mod:`._collectives` - agreement checks and broadcasts (no-ops in a single process).
* :mod:`._study` - a shared, crash-tolerant queue of candidates in RDB storage (SQLite or PostgreSQL).
"""

from ._batch_statistics import batch_slots, gather_rows, synchronize_batch_statistics
from ._batchnorm import global_batch_norm, synchronize_batch_norms
from ._collectives import (
    all_reduce_sums,
    barrier,
    broadcast_from_main,
    check_agreement,
    check_identical,
    on_main,
    state_digest,
)
from ._context import DistributedContext, backend_for, current_context, launched_by_torchrun
from ._data import ShardedBatches, evaluate_sharded, loss_scale_of, per_rank_batch, sharded_loader
from ._ddp import AMP_PHASES, autocast_for, data_parallel
from ._errors import DistributedError, StudyError
from ._study import SharedStudy, StudyOptions, default_storage_url, open_storage, redact

__all__ = [
    "DistributedContext", "current_context", "launched_by_torchrun", "backend_for",
    "data_parallel", "autocast_for", "AMP_PHASES", "synchronize_batch_norms", "global_batch_norm",
    "synchronize_batch_statistics", "gather_rows", "batch_slots",
    "sharded_loader", "ShardedBatches", "loss_scale_of", "per_rank_batch", "evaluate_sharded",
    "broadcast_from_main", "on_main", "check_agreement", "check_identical", "all_reduce_sums", "state_digest", "barrier",
    "SharedStudy", "StudyOptions", "open_storage", "default_storage_url", "redact",
    "DistributedError", "StudyError",
]
