"""One run of any strategy: pretrain (float) -> search -> finalize -> fine-tune -> evaluate.

The runner owns the phases, the checkpoints and the run directory; the strategy (registered by name,
see ``strategies/``) owns what is method-specific: the search phase and the finalized policy. Every
phase checkpoints at each epoch boundary (``checkpoint.pt``, written atomically, loadable with
``weights_only=True``), so an interrupted run resumes where it stopped and, with the same seed, ends
with the same policy: data order and random state are functions of (seed, phase, epoch).

Under ``torchrun`` every training phase is data-parallel (see ``hwqnn.distributed``): each rank trains a
DDP replica on its share of every global batch (``config.batch_size`` is the global batch), so the
architecture parameters and the Lagrange multipliers stay identical on every rank (checked, bitwise, at
every checkpoint). Only rank 0 writes the run directory; a resumed run may use another number of processes.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cost_models import CostMetric

from .. import distributed
from ..data import fixed_sample
from ..errors import DeviceError, RunDirError
from ..policy import Policy
from ..qag import QuantizedModel
from ..run_dir import atomic_torch_save, read_checkpoint, tidy_for_json, write_finished_run
from .budgets import format_cost
from .config import SearchConfig
from .problem import Problem, totals_of
from .space import SearchSpace
from .strategies import Strategy
from .train import evaluate, train_epoch

log = logging.getLogger(__name__)
PHASES = ("pretrain", "search", "finalize", "finetune", "done")
#: The unit of each cost in metrics.json (values are plain SI; ``costs_readable`` has them formatted).
COST_UNITS = {metric.value: metric.unit for metric in CostMetric}
#: Images in the batch that finalize measures each option's quantization error on.
CALIBRATION_IMAGES = 128


@dataclass
class SearchResult:
    """What a search returns: the policy, the fine-tuned quantized model, metrics and history."""

    policy: Policy
    model: QuantizedModel
    metrics: dict
    history: list[dict] = field(default_factory=list)
    run_dir: Path | None = None
    #: SHA-256 of the architecture parameters and strategy state at each checkpoint (equal on every rank).
    arch_digests: list[str] = field(default_factory=list)
    #: The searchable model's state right after the search phase (weights, logits, bits): the warm start
    #: of a neighbouring sweep point. None for strategies without a search and for runs resumed after it.
    search_state: dict | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None


class Runner:
    """Runs the phases of one strategy on one resolved problem and owns the run's state."""

    def __init__(self, qmodel: QuantizedModel, problem: Problem, strategy: Strategy, train_data, val_data,
                 config: SearchConfig, *, run_dir: str | Path | None = None, meta: dict | None = None,
                 on_step: Callable[[str, int], None] | None = None):
        self.qmodel, self.problem, self.strategy, self.config = qmodel, problem, strategy, config
        self.train_data, self.val_data = train_data, val_data
        self.run_dir = Path(run_dir) if run_dir else None
        self.meta = dict(meta or {})
        self.on_step = on_step
        self.dist = distributed.current_context(resolve_device(config.device))
        self.device = self.dist.device(resolve_device(config.device))
        distributed.per_rank_batch(config.batch_size, self.dist.world_size)  # fails before any work
        self.qmodel.to(self.device)
        self.space = SearchSpace(qmodel, problem.cost_model, config.t_start, config.t_end, config.gumbel,
                                 config.single_path)
        self.history: list[dict] = []
        self.phase, self.epoch = "pretrain", 0
        self.policy: Policy | None = None
        self.float_accuracy: float | None = None
        self.search_state: dict | None = None
        self.optimizer_state: list | None = None
        self.scheduler_state: list | None = None
        self.times: dict[str, float] = {}
        self.arch_digests: list[str] = []
        self._release_sync: Callable[[], None] = lambda: None
        problem.check_feasible(self.space)

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory: rank 0 of a job, or a single process."""
        return self.run_dir is not None and self.dist.is_main

    # --- services for strategies ---------------------------------------------------------------
    def train_loader(self, phase: str, data=None, stream: int = 0):
        """The epoch's batches of ``data`` (default: the training data; this rank's share under torchrun), a
        function of (seed, phase, epoch, stream); ``stream`` tells apart two loaders of one epoch."""
        from ..data import make_loader

        data = self.train_data if data is None else data
        seed = self.config.seed * 100_003 + PHASES.index(phase) * 10_007 + self.epoch + stream * 7_919
        if self.dist.active:
            return distributed.sharded_loader(data, self.config.batch_size, seed, self.dist,
                                              augment=self.config.augment)
        return make_loader(data, self.config.batch_size, train=True, augment=self.config.augment, seed=seed)

    def val_loader(self):
        from ..data import make_loader

        return make_loader(self.val_data, 256, train=False, augment=False, seed=0)

    def evaluate(self) -> dict[str, float]:
        """Accuracy and loss on the held-out set (each rank scores its shard under torchrun)."""
        if self.dist.active:
            return distributed.evaluate_sharded(self.qmodel, self.val_data, self.device, self.dist)
        return evaluate(self.qmodel, self.val_loader(), self.device)

    def training_model(self) -> torch.nn.Module:
        """The model a training phase steps: a DDP replica under torchrun (call once per phase), else the model.

        Under DDP its BatchNorms and activation quantizers take the statistics of the global batch until
        the phase ends (``_end_phase``), so that it computes what one process would on that batch.
        """
        self._end_phase()
        release = [distributed.synchronize_batch_norms(self.qmodel, self.dist),
                   distributed.synchronize_batch_statistics(self.qmodel, self.dist)]
        self._release_sync = lambda: [undo() for undo in release]
        return distributed.data_parallel(self.qmodel, self.dist, self.device)

    def _end_phase(self) -> None:
        self._release_sync()
        self._release_sync = lambda: None

    def train_epoch(self, model, phase: str, optimizers, **kwargs) -> dict[str, float]:
        """One epoch of ``phase`` on this epoch's batches (this rank's share of each under torchrun)."""
        loader = self.train_loader(phase)
        return train_epoch(model, loader, optimizers, self.device, loss_scale=distributed.loss_scale_of(loader),
                           **kwargs)

    def calibration_batch(self) -> torch.Tensor:
        return fixed_sample(self.train_data, CALIBRATION_IMAGES, self.config.seed)[0].to(self.device)

    def make_weight_optimizer(self, params, lr: float, epochs: int):
        """AdamW with weight decay on the model's weights and PACT ranges, none on quantizer step sizes
        (a per-bitwidth LSQ step that is not in use would otherwise decay towards zero)."""
        no_decay = {id(p) for name, p in self.qmodel.named_parameters()
                    if ".candidates." in name and not name.endswith(".alpha")}
        groups = [{"params": [p for p in params if id(p) not in no_decay], "weight_decay": self.config.weight_decay},
                  {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0}]
        opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
        return opt, sched

    def restore(self, optimizers, schedulers) -> None:
        """Load the optimizer and scheduler states of a resumed phase (once)."""
        if self.optimizer_state:
            for opt, st in zip(optimizers, self.optimizer_state):
                opt.load_state_dict(st)
            for sched, st in zip(schedulers, self.scheduler_state or []):
                sched.load_state_dict(st)
        self.optimizer_state = self.scheduler_state = None

    def step_hook(self, phase: str) -> Callable[[], None] | None:
        if self.on_step is None:
            return None
        counter = {"n": 0}

        def hook():
            counter["n"] += 1
            self.on_step(phase, counter["n"])

        return hook

    def end_epoch(self, phase: str, stats: dict, optimizers=None, schedulers=None) -> None:
        """Count the epoch, record its stats in the history and checkpoint (the resume point)."""
        self.epoch += 1
        if "images" in stats:  # a rank's share: the loss and accuracy of the whole global batch instead
            stats = dict(stats)
            images = stats.pop("images")
            keys = [k for k in ("loss", "train_accuracy") if k in stats]
            *sums, total = distributed.all_reduce_sums(self.dist, [*(stats[k] * images for k in keys), images])
            stats.update({k: v / max(total, 1) for k, v in zip(keys, sums)})
        self.history.append({"phase": phase, "epoch": self.epoch, **stats})
        if self.writes:
            from .report import write_history

            write_history(self.run_dir / "history.csv", self.history)
        self.checkpoint(optimizers, schedulers)

    # --- checkpoints ---------------------------------------------------------------------------
    def arch_digest(self) -> str:
        """SHA-256 of the scheme logits, the bitwidths and the strategy's state (the multipliers), bit for bit."""
        params = self.space.logit_parameters() + self.space.bit_parameters()
        return distributed.state_digest(params, self.strategy.state_dict())

    def checkpoint(self, optimizers: list | None = None, schedulers: list | None = None) -> None:
        digest = self.arch_digest()
        distributed.check_identical(self.dist, "architecture parameters and multipliers", digest)
        self.arch_digests.append(digest)
        if not self.writes:
            return
        state = {
            "phase": self.phase, "epoch": self.epoch,
            "model": self.qmodel.state_dict(),
            "optimizers": [o.state_dict() for o in optimizers] if optimizers else None,
            "schedulers": [s.state_dict() for s in schedulers] if schedulers else None,
            "strategy": self.strategy.state_dict(),
            "history": self.history,
            "rng": torch.get_rng_state(),
            "policy": self.policy.to_dict() if self.policy else None,
            "float_accuracy": self.float_accuracy,
            "config": self.config.to_dict(),
            "meta": self.meta,
            "times": self.times,
            "world_size": self.dist.world_size,
        }
        atomic_torch_save(state, self.run_dir / "checkpoint.pt")

    def load_checkpoint(self, path: Path) -> None:
        """Rank 0 reads the checkpoint and sends it to the other ranks (they need no copy of the run directory)."""
        state = read_checkpoint(path, map_location="cpu") if self.dist.is_main else None
        state = distributed.broadcast_from_main(self.dist, state)
        state = _to_device(state, self.device)
        saved_world = int(state.get("world_size", 1)) if isinstance(state, dict) else 1
        if saved_world != self.dist.world_size:
            log.info("resuming a run of %d process(es) with %d", saved_world, self.dist.world_size)
        try:
            self._load_state(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise RunDirError(f"checkpoint {path} does not fit this run ({type(exc).__name__}: {exc}); "
                              f"start the run again with --overwrite") from None
        log.info("resuming at phase %s, epoch %d", self.phase, self.epoch)

    def _load_state(self, state: dict) -> None:
        self.phase, self.epoch = state["phase"], int(state["epoch"])
        self.history = list(state["history"])
        self.strategy.load_state_dict(state["strategy"])
        self.float_accuracy = state["float_accuracy"]
        self.times = dict(state.get("times") or {})
        self.policy = Policy.from_dict(state["policy"]) if state["policy"] else None
        if self.policy is not None:
            self.qmodel.set_policy(self.policy)
        self.qmodel.load_state_dict(state["model"])
        self.optimizer_state = state["optimizers"]
        self.scheduler_state = state.get("schedulers")
        torch.set_rng_state(state["rng"])

    # --- phases --------------------------------------------------------------------------------
    def _run_training_phase(self, phase: str, epochs: int, lr: float) -> None:
        """Pretraining (float bypass) and fine-tuning (fixed policy) share this loop."""
        params = [p for p in self.qmodel.parameters() if p.requires_grad]
        if phase == "finetune":
            arch = {id(p) for p in self.space.logit_parameters() + self.space.bit_parameters()}
            params = [p for p in params if id(p) not in arch]
        opt, sched = self.make_weight_optimizer(params, lr, epochs)
        self.restore([opt], [sched])
        self.checkpoint([opt], [sched])
        model = self.training_model()
        bar = tqdm(total=epochs, initial=self.epoch, desc=phase, unit="epoch", disable=not self.dist.is_main)
        while self.epoch < epochs:
            with distributed.autocast_for(phase, self.device):
                stats = self.train_epoch(model, phase, [opt], desc=f"{phase} {self.epoch + 1}/{epochs}",
                                         after_step=self.step_hook(phase))
            sched.step()
            stats.update({f"val_{k}": v for k, v in self.evaluate().items()})
            self.end_epoch(phase, stats, [opt], [sched])
            bar.update(1)
            bar.set_postfix(acc=f"{stats['val_accuracy']:.1f}%")
        bar.close()

    def _finalize(self) -> None:
        policy = self.strategy.finalize(self)
        # every rank solves the same MILP on identical replicas; rank 0's answer is the one all ranks keep
        self.policy = Policy.from_dict(distributed.broadcast_from_main(self.dist, policy.to_dict()))
        self.policy.meta.update({"method": self.strategy.name, "target": self.problem.target,
                                 "model": self.meta.get("model", "custom")})
        self.qmodel.set_policy(self.policy)
        if self.writes:
            self.policy.save(self.run_dir / "policy.yaml")

    # --- driver --------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> SearchResult:
        start = time.perf_counter()
        distributed.check_agreement(self.dist, "run settings", self._settings(resume))
        if self.writes:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume and self.run_dir is not None:
            self.load_checkpoint(self.run_dir / "checkpoint.pt")
        try:
            self._advance(self.config)
        except KeyboardInterrupt:
            if self.writes:
                log.warning("interrupted during %s; the last checkpoint is in %s — continue with --resume %s",
                            self.phase, self.run_dir, self.run_dir)
            raise
        self.times["total_s"] = self.times.get("total_s", 0.0) + time.perf_counter() - start
        return self._result()

    def _settings(self, resume: bool) -> dict:
        """What every rank must agree on: the config, the data's sizes, the run directory and whether it resumes."""
        return {**self.config.to_dict(), "train_images": len(self.train_data), "eval_images": len(self.val_data),
                "run_dir": str(self.run_dir), "resume": resume, "model": self.meta.get("model"),
                "world_size": self.dist.world_size}

    def _timed(self, phase: str, fn) -> None:
        t0 = time.perf_counter()
        fn()
        self.times[f"{phase}_s"] = self.times.get(f"{phase}_s", 0.0) + time.perf_counter() - t0

    def _next_phase(self, phase: str) -> None:
        self._end_phase()
        self.phase, self.epoch = phase, 0
        self.checkpoint()

    def _advance(self, cfg: SearchConfig) -> None:
        if self.phase == "pretrain":
            self.qmodel.set_float()
            self._timed("pretrain", lambda: self._run_training_phase("pretrain", cfg.pretrain_epochs, cfg.lr))
            self.float_accuracy = self.evaluate()["accuracy"]
            self._next_phase("search" if self.strategy.searches else "finalize")
        if self.phase == "search":
            self._timed("search", lambda: self.strategy.search(self))
            self.search_state = {k: v.detach().clone() for k, v in self.qmodel.state_dict().items()}
            self._next_phase("finalize")
        if self.phase == "finalize":
            self._timed("finalize", self._finalize)
            self._next_phase("finetune")
        if self.phase == "finetune":
            self._timed("finetune", lambda: self._run_training_phase("finetune", cfg.finetune_epochs, cfg.finetune_lr))
            self._end_phase()
            self.phase = "done"

    def _result(self) -> SearchResult:
        from .. import __version__

        quantized = self.evaluate()
        report = self.problem.report_of(self.policy)
        costs = totals_of(report)
        metrics = {
            **self.meta,
            "method": self.strategy.name,
            "target": self.problem.target,
            "num_layers": len(self.problem.layer_names),
            "float_accuracy": self.float_accuracy,
            "quantized_accuracy": quantized["accuracy"],
            "finalize_check": self.policy.meta.get("finalize_check") if self.policy else None,
            "costs": costs,
            "reference_w8a8": dict(self.problem.reference),
            "budgets": {b.key: {"spec": str(b), "bound": self.problem.bounds[b.key]} for b in self.problem.budgets},
            "within_budget": self.problem.within_budget(costs),
            "layer_costs": report.layers.to_dict(orient="list"),
            "seed": self.config.seed,
            "config": self.config.to_dict(),
            "versions": {"hwqnn": __version__, "torch": torch.__version__, "python": platform.python_version()},
            "wall_time_s": self.times,
            "units": COST_UNITS,
            "world_size": self.dist.world_size,
            "costs_readable": {k: format_cost(k, v) for k, v in costs.items()},
        }
        metrics = tidy_for_json(metrics)
        if self.writes:
            from .report import write_summary_png

            atomic_torch_save(self.qmodel.state_dict(), self.run_dir / "model.pt")
            metrics = write_finished_run(self.run_dir, metrics)  # last: binds policy, weights and metrics
            write_summary_png(self.run_dir / "summary.png", self.history, self.policy, self.problem.layer_names,
                              metrics=metrics)
            checkpoint = self.run_dir / "checkpoint.pt"
            if checkpoint.exists():
                checkpoint.unlink()
        distributed.barrier(self.dist)  # no rank leaves before rank 0 has written the finished run
        return SearchResult(self.policy, self.qmodel, metrics, self.history, self.run_dir,
                            arch_digests=self.arch_digests, search_state=self.search_state)


def _to_device(state, device: torch.device):
    """``state`` with every tensor moved to ``device`` (a checkpoint is read on the CPU, then sent)."""
    if isinstance(state, torch.Tensor):
        return state if state.device == device or state.dtype == torch.uint8 else state.to(device)
    if isinstance(state, dict):
        return {k: _to_device(v, device) for k, v in state.items()}
    if isinstance(state, list):
        return [_to_device(v, device) for v in state]
    return state
