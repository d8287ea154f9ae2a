"""One search run: pretrain (float) -> search (QSS + QPL + budgets) -> finalize (MILP) -> fine-tune -> evaluate.

Every phase checkpoints at each epoch boundary (``checkpoint.pt``, written atomically, loadable with
``weights_only=True``), so an interrupted run resumes where it stopped and, with the same seed, ends
with the same policy: data order and random state are functions of (seed, phase, epoch).
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

import cost_models

from ..errors import RunDirError
from ..policy import Policy
from ..qag import QuantizedModel, convert
from ..run_dir import atomic_torch_save, read_checkpoint, tidy_for_json, write_finished_run
from .budgets import METRICS, format_cost, parse_budgets, resolve_budgets
from .config import SearchConfig
from .constraints import AugmentedLagrangian
from .finalize import capture_slot_inputs, finalize_policy
from .space import SearchSpace
from .train import evaluate, train_epoch

log = logging.getLogger(__name__)
PHASES = ("pretrain", "search", "finalize", "finetune", "done")
COST_KEYS = tuple(METRICS.values())
#: The unit of each cost in metrics.json (values are plain SI; ``costs_readable`` has them formatted).
COST_UNITS = {"latency_s": "s", "energy_j": "J", "size_bytes": "B", "peak_memory_bytes": "B"}


@dataclass
class SearchResult:
    """What a search returns: the policy, the fine-tuned quantized model, metrics and history."""

    policy: Policy
    model: QuantizedModel
    metrics: dict
    history: list[dict] = field(default_factory=list)
    run_dir: Path | None = None
    #: The searchable model's state right after the search phase (weights, logits, bits): the warm start
    #: of a neighbouring sweep point. None for uniform runs and for runs resumed after the search.
    search_state: dict | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RunDirError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return torch.device(name)


def _loader(dataset, batch_size: int, train: bool, seed: int, augment: bool = False):
    from ..data import make_loader

    return make_loader(dataset, batch_size, train=train, augment=augment, seed=seed)


class Study:
    """Runs the phases of one search and owns its state; see the module docstring."""

    def __init__(self, model: nn.Module, train_data, val_data, config: SearchConfig,
                 run_dir: str | Path | None = None, meta: dict | None = None,
                 on_step: Callable[[str, int], None] | None = None, warm_start: dict | None = None):
        self.config = config
        self.train_data, self.val_data = train_data, val_data
        self.run_dir = Path(run_dir) if run_dir else None
        self.meta = dict(meta or {})
        self.on_step = on_step
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        x0 = train_data[0][0]
        self.example_input = torch.stack([train_data[i][0] for i in range(min(2, len(train_data)))]).to(x0.dtype)
        self.meta.setdefault("input_shape", list(x0.shape))
        self.qmodel = convert(model, self.example_input, schemes=config.schemes, bits_range=config.bits_range,
                              scheme_sharing=config.scheme_sharing).to(self.device)
        if warm_start is not None:
            self.qmodel.load_state_dict(warm_start)
        self.search_state: dict | None = None
        self.profile = cost_models.load_profile(config.target)
        self.cost_model = cost_models.CostModel(self.qmodel.workload, self.profile, batch_size=config.cost_batch_size)
        self.budgets = parse_budgets(config.budgets)
        self.reference = self._costs_of("w8a8")
        self.bounds = resolve_budgets(self.budgets, lambda: self.reference)
        self.space = SearchSpace(self.qmodel, self.cost_model, config.t_start, config.t_end, config.gumbel,
                                 config.single_path)
        self.lagrangian = AugmentedLagrangian(self.bounds, rho=config.rho, dual_lr=config.dual_lr)
        self.history: list[dict] = []
        self.phase, self.epoch = "pretrain", 0
        self.policy: Policy | None = None
        self.float_accuracy: float | None = None
        self.optimizer_state: list | None = None
        self.scheduler_state: list | None = None
        self.times: dict[str, float] = {}
        self._check_feasible()

    # --- costs ---------------------------------------------------------------------------------
    def _costs_of(self, policy) -> dict[str, float]:
        precisions = cost_models.resolve_precisions(policy, self.qmodel.layer_names)
        report = self.cost_model.evaluate(precisions)
        return {k: float(getattr(report, k)) for k in COST_KEYS}

    def _check_feasible(self) -> None:
        """Fail before training if no integer policy over every scheme and bit can meet the budgets."""
        from .finalize import build_options, option_costs, solve_or_raise

        layers = build_options(self.space, {}, sensitivity_weight=0.0, prior_weight=0.0, bits_weight=0.0)
        tables = option_costs(self.cost_model, self.space.ops, layers)
        solve_or_raise(layers, tables, self.bounds, self.profile.name, "quantized", time_limit=30.0)

    # --- checkpoints ---------------------------------------------------------------------------
    def _checkpoint(self, optimizers: list | None = None, schedulers: list | None = None) -> None:
        if self.run_dir is None:
            return
        state = {
            "phase": self.phase, "epoch": self.epoch,
            "model": self.qmodel.state_dict(),
            "optimizers": [o.state_dict() for o in optimizers] if optimizers else None,
            "schedulers": [s.state_dict() for s in schedulers] if schedulers else None,
            "lagrangian": self.lagrangian.state_dict(),
            "history": self.history,
            "rng": torch.get_rng_state(),
            "policy": self.policy.to_dict() if self.policy else None,
            "float_accuracy": self.float_accuracy,
            "config": self.config.to_dict(),
            "meta": self.meta,
            "times": self.times,
        }
        atomic_torch_save(state, self.run_dir / "checkpoint.pt")

    def load_checkpoint(self, path: Path) -> None:
        state = read_checkpoint(path, map_location=self.device)
        try:
            self._load_state(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise RunDirError(f"checkpoint {path} does not fit this run ({type(exc).__name__}: {exc}); "
                              f"start the run again with --overwrite") from None
        log.info("resuming at phase %s, epoch %d", self.phase, self.epoch)

    def _load_state(self, state: dict) -> None:
        self.phase, self.epoch = state["phase"], int(state["epoch"])
        self.history = list(state["history"])
        self.lagrangian.load_state_dict(state["lagrangian"])
        self.float_accuracy = state["float_accuracy"]
        self.times = dict(state.get("times") or {})
        self.policy = Policy.from_dict(state["policy"]) if state["policy"] else None
        if self.policy is not None:
            self.qmodel.apply(self.policy)
        self.qmodel.load_state_dict(state["model"])
        self.optimizer_state = state["optimizers"]
        self.scheduler_state = state.get("schedulers")
        torch.set_rng_state(state["rng"])

    # --- phases --------------------------------------------------------------------------------
    def _epoch_seed(self, phase: str) -> int:
        return self.config.seed * 100_003 + PHASES.index(phase) * 10_007 + self.epoch

    def _record(self, phase: str, stats: dict) -> None:
        row = {"phase": phase, "epoch": self.epoch, **stats}
        self.history.append(row)
        if self.run_dir is not None:
            from .report import write_history

            write_history(self.run_dir / "history.csv", self.history)

    def _make_weight_optimizer(self, params, lr: float, epochs: int):
        """AdamW with weight decay on the model's weights and PACT ranges, none on quantizer step sizes
        (a per-bitwidth LSQ step that is not in use would otherwise decay towards zero)."""
        no_decay = {id(p) for name, p in self.qmodel.named_parameters()
                    if ".candidates." in name and not name.endswith(".alpha")}
        groups = [{"params": [p for p in params if id(p) not in no_decay], "weight_decay": self.config.weight_decay},
                  {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0}]
        opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
        return opt, sched

    def _restore(self, optimizers, scheds) -> None:
        """Load the optimizer and scheduler states of a resumed phase (once)."""
        if self.optimizer_state:
            for opt, st in zip(optimizers, self.optimizer_state):
                opt.load_state_dict(st)
            for sched, st in zip(scheds, self.scheduler_state or []):
                sched.load_state_dict(st)
        self.optimizer_state = self.scheduler_state = None

    def _run_training_phase(self, phase: str, epochs: int, lr: float) -> None:
        """Pretraining (float bypass) and fine-tuning (fixed policy) share this loop."""
        params = [p for p in self.qmodel.parameters() if p.requires_grad]
        if phase == "finetune":
            arch = {id(p) for p in self.space.logit_parameters() + self.space.bit_parameters()}
            params = [p for p in params if id(p) not in arch]
        opt, sched = self._make_weight_optimizer(params, lr, epochs)
        self._restore([opt], [sched])
        self._checkpoint([opt], [sched])
        bar = tqdm(total=epochs, initial=self.epoch, desc=phase, unit="epoch")
        while self.epoch < epochs:
            loader = _loader(self.train_data, self.config.batch_size, True, self._epoch_seed(phase), self.config.augment)
            stats = train_epoch(self.qmodel, loader, [opt], self.device, desc=f"{phase} {self.epoch + 1}/{epochs}",
                                after_step=self._step_hook(phase))
            sched.step()
            stats.update({f"val_{k}": v for k, v in evaluate(self.qmodel, self._val_loader(), self.device).items()})
            self.epoch += 1
            self._record(phase, stats)
            self._checkpoint([opt], [sched])
            bar.update(1)
            bar.set_postfix(acc=f"{stats['val_accuracy']:.1f}%")
        bar.close()

    def _val_loader(self):
        return _loader(self.val_data, 256, False, 0)

    def _step_hook(self, phase: str):
        if self.on_step is None:
            return None
        counter = {"n": 0}

        def hook():
            counter["n"] += 1
            self.on_step(phase, counter["n"])

        return hook

    def _run_search(self) -> None:
        cfg = self.config
        self.qmodel.set_search()
        w_opt, w_sched = self._make_weight_optimizer(self.space.weight_parameters(), cfg.lr, cfg.search_epochs)
        a_opt = torch.optim.Adam(self.space.logit_parameters(), lr=cfg.lr_logits)
        b_opt = torch.optim.Adam(self.space.bit_parameters(), lr=cfg.lr_bits)
        optimizers = [w_opt, a_opt, b_opt]
        self._restore(optimizers, [w_sched])
        self._checkpoint(optimizers, [w_sched])
        last_costs: dict = {}

        def penalty():
            costs = self.space.expected_costs()
            last_costs.update(costs)
            return self.lagrangian.penalty(costs)

        def after_step():
            self.lagrangian.dual_step(last_costs)
            if hook is not None:
                hook()

        hook = self._step_hook("search")
        bar = tqdm(total=cfg.search_epochs, initial=self.epoch, desc="search", unit="epoch")
        while self.epoch < cfg.search_epochs:
            temperature = self.space.set_progress(self.epoch / max(cfg.search_epochs - 1, 1))
            loader = _loader(self.train_data, cfg.batch_size, True, self._epoch_seed("search"), cfg.augment)
            stats = train_epoch(self.qmodel, loader, optimizers, self.device, extra_loss=penalty,
                                after_step=after_step, desc=f"search {self.epoch + 1}/{cfg.search_epochs}")
            w_sched.step()
            stats.update({f"val_{k}": v for k, v in evaluate(self.qmodel, self._val_loader(), self.device).items()})
            with torch.no_grad():
                costs = self.space.expected_costs()
            w_bits, a_bits = self.space.mean_bits()
            stats.update({k: float(costs[k]) for k in COST_KEYS})
            stats.update({"mean_w_bits": w_bits, "mean_a_bits": a_bits, "temperature": temperature,
                          "scheme_entropy": self.space.scheme_entropy(),
                          **{f"lambda_{k}": v for k, v in self.lagrangian.multipliers.items()}})
            self.epoch += 1
            self._record("search", stats)
            self._checkpoint(optimizers, [w_sched])
            bar.update(1)
            bar.set_postfix(acc=f"{stats['val_accuracy']:.1f}%", wbits=f"{w_bits:.2f}", abits=f"{a_bits:.2f}")
        bar.close()

    def _finalize(self) -> None:
        cfg = self.config
        if cfg.method == "uniform":
            w_bits, a_bits = cfg.uniform_bits
            self.policy = Policy.uniform(f"w{w_bits}a{a_bits}", scheme=cfg.uniform_scheme).expand(self.qmodel.layer_names)
            self.policy.meta.update({"method": "uniform"})
        else:
            batch = torch.stack([self.train_data[i][0] for i in range(min(128, len(self.train_data)))]).to(self.device)
            captured = capture_slot_inputs(self.qmodel, batch)
            policy, totals, info = finalize_policy(self.space, self.bounds, self.profile.name, captured,
                                                   cfg.sensitivity_weight, cfg.prior_weight, cfg.bits_weight,
                                                   cfg.device_cost_weight, self.reference)
            policy.meta.update({"method": "search", "milp_totals": totals, **info})
            self.policy = policy
        self.policy.meta.update({"target": self.profile.name, "model": self.meta.get("model", "custom")})
        self.qmodel.apply(self.policy)
        if self.run_dir is not None:
            self.policy.save(self.run_dir / "policy.yaml")

    # --- driver --------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> SearchResult:
        cfg = self.config
        start = time.perf_counter()
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if resume:
                self.load_checkpoint(self.run_dir / "checkpoint.pt")
        try:
            self._advance(cfg)
        except KeyboardInterrupt:
            if self.run_dir is not None:
                log.warning("interrupted during %s; the last checkpoint is in %s — continue with --resume %s",
                            self.phase, self.run_dir, self.run_dir)
            raise
        self.times["total_s"] = self.times.get("total_s", 0.0) + time.perf_counter() - start
        return self._result()

    def _timed(self, phase: str, fn) -> None:
        t0 = time.perf_counter()
        fn()
        self.times[f"{phase}_s"] = self.times.get(f"{phase}_s", 0.0) + time.perf_counter() - t0

    def _advance(self, cfg: SearchConfig) -> None:
        if self.phase == "pretrain":
            self.qmodel.set_float()
            self._timed("pretrain", lambda: self._run_training_phase("pretrain", cfg.pretrain_epochs, cfg.lr))
            self.float_accuracy = evaluate(self.qmodel, self._val_loader(), self.device)["accuracy"]
            self.phase, self.epoch = ("search" if cfg.method == "search" else "finalize"), 0
            self._checkpoint()
        if self.phase == "search":
            self._timed("search", self._run_search)
            self.search_state = {k: v.detach().clone() for k, v in self.qmodel.state_dict().items()}
            self.phase, self.epoch = "finalize", 0
            self._checkpoint()
        if self.phase == "finalize":
            self._timed("finalize", self._finalize)
            self.phase, self.epoch = "finetune", 0
            self._checkpoint()
        if self.phase == "finetune":
            epochs = cfg.finetune_epochs
            self._timed("finetune", lambda: self._run_training_phase("finetune", epochs, cfg.finetune_lr))
            self.phase = "done"

    def _result(self) -> SearchResult:
        from .. import __version__

        quantized = evaluate(self.qmodel, self._val_loader(), self.device)
        costs = self._costs_of(self.policy)
        report = self.cost_model.evaluate(cost_models.resolve_precisions(self.policy, self.qmodel.layer_names))
        metrics = {
            **self.meta,
            "method": self.config.method,
            "target": self.profile.name,
            "num_layers": len(self.qmodel.layer_names),
            "float_accuracy": self.float_accuracy,
            "quantized_accuracy": quantized["accuracy"],
            "costs": costs,
            "reference_w8a8": self.reference,
            "budgets": {b.key: {"spec": str(b), "bound": self.bounds[b.key]} for b in self.budgets},
            "within_budget": {k: costs[k] <= v * (1 + 1e-9) for k, v in self.bounds.items()},
            "layer_costs": report.layers.to_dict(orient="list"),
            "seed": self.config.seed,
            "config": self.config.to_dict(),
            "versions": {"hwqnn": __version__, "torch": torch.__version__, "python": platform.python_version()},
            "wall_time_s": self.times,
            "units": COST_UNITS,
            "costs_readable": {k: format_cost(k, v) for k, v in costs.items()},
        }
        metrics = tidy_for_json(metrics)
        if self.run_dir is not None:
            from .report import write_summary_png

            atomic_torch_save(self.qmodel.state_dict(), self.run_dir / "model.pt")
            metrics = write_finished_run(self.run_dir, metrics)  # last: binds policy, weights and metrics
            write_summary_png(self.run_dir / "summary.png", self.history, self.policy, self.qmodel.layer_names)
        result = SearchResult(self.policy, self.qmodel, metrics, self.history, self.run_dir, self.search_state)
        if self.run_dir is not None:
            ckpt = self.run_dir / "checkpoint.pt"
            if ckpt.exists():
                ckpt.unlink()
        return result
