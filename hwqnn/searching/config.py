"""SearchConfig: every knob of one search run, as a plain dataclass (validated, serialisable)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..errors import ConfigError


@dataclass
class SearchConfig:
    target: str = "jetson"
    budgets: list[str] | None = None  # None -> DEFAULT_BUDGETS
    method: str = "search"  # a registered strategy (hwqnn.searching.list_strategies()): "search", "uniform", ...
    uniform_bits: tuple[int, int] = (4, 4)
    uniform_scheme: str = "uniform"
    schemes: list[str] | None = None  # None -> every registered scheme
    scheme_sharing: str = "layer"
    strict: bool = False  # an op QAG cannot quantize is an error (ConversionError), not float with a warning
    threads: int | None = None  # torch CPU threads the CLI chose (kept on resume); None: the caller's setting
    allow_emulated: bool = False  # search (scheme, bits) pairs the target does not run natively, at their fallback cost
    bits_range: tuple[int, int] = (2, 8)
    pretrain_epochs: int = 15
    search_epochs: int = 8
    finetune_epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    finetune_lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_logits: float = 0.05
    lr_bits: float = 0.05
    t_start: float = 2.0
    t_end: float = 0.2
    gumbel: bool = False
    single_path: bool = True  # sampled mode: one quantization per slot and step (False: the mixture of every scheme)
    warm_start_bits: str | None = "hawq"  # start the learned bits at the Hessian-aware baseline's policy; None: at the top
    bilevel: bool = False  # DNAS-style: scheme logits and bits step on a held-out 20% of the training data, weights on the rest
    rho: float = 1.0
    dual_lr: float = 0.05
    curvature_weight: float = 0.5  # weight of the Hessian-weighted quantization loss in the search's loss (0: off)
    budget_fill: float | None = 0.97  # the search keeps its tightest budget at least this full (None: upper bounds only)
    sensitivity_weight: float = 10.0
    finalize_sensitivity: str = "hessian"  # finalize MILP's sensitivity: Hessian-trace-weighted error, or "mse"
    prior_weight: float = 1.0  # weight of -log p(scheme) in the finalize MILP
    bits_weight: float = 0.25  # weight of (bits - learned b~)^2 in the finalize MILP
    device_cost_weight: float = 10.0  # weight of latency + energy (fractions of w8a8) in the finalize MILP
    cost_batch_size: int = 1
    augment: bool = False
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        from .strategies import get_strategy

        get_strategy(self.method)  # StrategyError naming the registered methods
        if self.scheme_sharing not in ("layer", "model"):
            raise ConfigError(f"scheme_sharing must be 'layer' or 'model', got {self.scheme_sharing!r}")
        lo, hi = self.bits_range
        if not 1 <= lo <= hi <= 16:
            raise ConfigError(f"bits_range must satisfy 1 <= min <= max <= 16, got {self.bits_range}")
        for name in ("pretrain_epochs", "search_epochs", "finetune_epochs"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.finalize_sensitivity not in ("hessian", "mse"):
            raise ConfigError(f"finalize_sensitivity must be 'hessian' or 'mse', got {self.finalize_sensitivity!r}")
        if self.warm_start_bits not in (None, "hawq"):
            raise ConfigError(f"warm_start_bits must be None or 'hawq', got {self.warm_start_bits!r}")
        if not (self.curvature_weight >= 0 and math.isfinite(self.curvature_weight)):
            raise ConfigError(f"curvature_weight must be a finite number >= 0 (0: off), got {self.curvature_weight!r}")
        if self.budget_fill is not None and not 0.0 < self.budget_fill <= 1.0:
            raise ConfigError(f"budget_fill must be in (0, 1] (a share of the tightest budget) or None, "
                              f"got {self.budget_fill!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        self.bits_range = tuple(self.bits_range)
        self.uniform_bits = tuple(self.uniform_bits)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["bits_range"] = list(self.bits_range)
        data["uniform_bits"] = list(self.uniform_bits)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SearchConfig:
        """Rebuild from ``to_dict``; keys of fields since removed (e.g. ``extra``) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
