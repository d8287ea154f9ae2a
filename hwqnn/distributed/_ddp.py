"""DistributedDataParallel around a phase's model, and the AMP policy of a phase.

A phase re-wraps the model because its mode changes between phases (float bypass, search mixture, fixed
policy), and with it the set of parameters the forward pass uses: DDP records that set when it is built.
Building it also broadcasts rank 0's parameters and buffers, so every phase, resumed or not, starts with
identical replicas.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ._context import DistributedContext

#: Phases whose forward pass may run in bfloat16 autocast on CUDA. Only float pretraining: the fake-quantized
#: phases round onto integer grids whose step sizes bfloat16 cannot hold exactly, so they stay in float32.
AMP_PHASES = ("pretrain",)


def data_parallel(model: nn.Module, context: DistributedContext, device: torch.device) -> nn.Module:
    """``model`` under DDP when a process group is up (gradients averaged over ranks), else ``model`` itself.

    ``find_unused_parameters``: the scheme candidates a slot does not sample and the quantizers of a float
    bypass get no gradient in some steps, and DDP must not wait for them.
    """
    if not context.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def autocast_for(phase: str, device: torch.device):
    """bfloat16 autocast for the phases in :data:`AMP_PHASES` on CUDA; a null context everywhere else."""
    if device.type == "cuda" and phase in AMP_PHASES:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


__all__ = ["data_parallel", "autocast_for", "AMP_PHASES"]
