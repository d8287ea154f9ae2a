"""Start a small gloo job on localhost the way torchrun does (environment variables), with a timeout.

Each rank runs ``hwqnn.search`` on a digits subset and writes what it saw (its architecture digests, its
policy, its accuracy, or the error it raised) to ``<out>/rank<k>.json``.
"""

from __future__ import annotations

import json
import os
import socket
import traceback
from pathlib import Path

import torch.multiprocessing as mp

TINY = dict(pretrain_epochs=1, search_epochs=2, finetune_epochs=1, batch_size=32, seed=0, device="cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, out: str, kwargs: dict, per_rank: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), HWQNN_DIST_TIMEOUT_S="60")
    import torch
    import torch.distributed as dist
    from torch.utils.data import Subset

    torch.set_num_threads(1)
    from hwqnn import search
    from hwqnn.data import load_dataset
    from hwqnn.distributed import _context
    from hwqnn.models import create_model

    _context.DEFAULT_TIMEOUT_S = 60.0
    record: dict = {"rank": rank}
    try:
        data = load_dataset("digits", seed=0)
        train, test = Subset(data.train, range(256)), Subset(data.test, range(200))
        torch.manual_seed(0)
        model = create_model("tiny_cnn", num_classes=10)
        options = {**TINY, **kwargs, **per_rank.get(rank, {})}
        result = search(model, train, test, target="bitfusion", budgets=["size=0.5x"],
                        meta={"model": "tiny_cnn", "num_classes": 10}, **options)
        record.update(digests=result.arch_digests, policy=result.policy.to_dict()["layers"],
                      accuracy=result.metrics["quantized_accuracy"], world_size=result.metrics["world_size"])
    except Exception as exc:  # noqa: BLE001 - reported to the test, which asserts on it
        record.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finally:
        Path(out, f"rank{rank}.json").write_text(json.dumps(record))
        if dist.is_initialized():
            dist.destroy_process_group()


def run_job(world: int, out: Path, timeout_s: float = 240, per_rank: dict | None = None, **kwargs) -> list[dict]:
    """Run ``world`` ranks to the end (or kill them after ``timeout_s``); each rank's record."""
    out.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    port = free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, world, port, str(out), kwargs, per_rank or {}))
             for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout_s)
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    return [json.loads((out / f"rank{r}.json").read_text()) if (out / f"rank{r}.json").is_file() else {"rank": r}
            for r in range(world)]


# --- one training step of a searched model: N ranks against one process on the same global batch ----------
def _step_rank(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    from hwqnn import convert
    from hwqnn.distributed import (
        DistributedContext,
        current_context,
        synchronize_batch_norms,
        synchronize_batch_statistics,
    )
    from hwqnn.models import create_model

    torch.set_num_threads(1)
    context = current_context("cpu")
    record: dict = {"rank": rank}
    try:
        x = torch.randn(9, 1, 8, 8, generator=torch.Generator().manual_seed(1))  # 9 rows: shares of 5 and 4
        y = torch.arange(9) % 10

        def one_step(ctx):
            torch.manual_seed(0)
            qmodel = convert(create_model("tiny_cnn", num_classes=10), x[:2], schemes=["uniform", "zoom", "ul2q"])
            qmodel.set_search()
            qmodel.train()
            undo = [synchronize_batch_norms(qmodel, ctx), synchronize_batch_statistics(qmodel, ctx)]
            rows = torch.tensor_split(torch.arange(9), ctx.world_size)[ctx.rank]
            logits = qmodel(x[rows])
            loss = F.cross_entropy(logits, y[rows], reduction="sum") * (ctx.world_size / 9)
            loss.backward()
            grads = {n: p.grad.clone() for n, p in qmodel.named_parameters() if p.grad is not None}
            if ctx.active:
                for g in grads.values():
                    dist.all_reduce(g)
                    g /= ctx.world_size
                parts = [torch.zeros(5, 10) for _ in range(ctx.world_size)]
                padded = torch.zeros(5, 10)
                padded[: logits.shape[0]] = logits.detach()
                dist.all_gather(parts, padded)
                logits = torch.cat([p[: len(r)] for p, r in zip(parts, torch.tensor_split(torch.arange(9), ctx.world_size))])
            for u in undo:
                u()
            return logits.detach(), grads, {k: v.clone() for k, v in qmodel.state_dict().items()}

        sharded = one_step(context)
        if rank == 0:
            whole = one_step(DistributedContext())
            gaps = {n: float((sharded[1][n] - whole[1][n]).abs().max() / (whole[1][n].abs().max() + 1e-12))
                    for n in whole[1]}
            grad_gap = max(gaps.values())
            record["worst"] = sorted(gaps.items(), key=lambda kv: -kv[1])[:5]
            state_gap = max(float((sharded[2][k].double() - whole[2][k].double()).abs().max())
                            for k in whole[2] if whole[2][k].is_floating_point() and whole[2][k].numel())
            record.update(logit_gap=float((sharded[0] - whole[0]).abs().max()), grad_gap=grad_gap,
                          state_gap=state_gap, same_grads=sorted(sharded[1]) == sorted(whole[1]))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        record.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finally:
        Path(out, f"step{rank}.json").write_text(json.dumps(record))
        if dist.is_initialized():
            dist.destroy_process_group()


def run_one_step(world: int, out: Path, timeout_s: float = 120) -> dict:
    """Rank 0's comparison of one sharded step (``world`` ranks) with one process on the same 9 images."""
    out.mkdir(parents=True, exist_ok=True)
    ctx, port = mp.get_context("spawn"), free_port()
    procs = [ctx.Process(target=_step_rank, args=(r, world, port, str(out))) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout_s)
        if p.is_alive():
            p.kill()
    return json.loads((out / "step0.json").read_text())
