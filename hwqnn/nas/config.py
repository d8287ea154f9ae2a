"""The configuration of one HQNAS run: a plain dataclass that validates itself and round-trips through a dict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from cost_models import COST_KEYS

from ..errors import ConfigError

#: Costs NSGA-II minimises besides maximising accuracy.
OBJECTIVES = tuple(COST_KEYS)


@dataclass
class NasConfig:
    """Supernet training (sandwich rule), NSGA-II search, extraction and lifelong continuation.

    Defaults run on the embedded digits in about a minute on two CPU cores.
    """

    space: str = "tiny-digits"
    data: str | None = None  # None: the space's default data set
    data_dir: str | None = None
    target: str = "jetson"
    budgets: tuple[str, ...] = ()
    seed: int = 0
    # supernet training
    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-5
    random_subnets: int = 2  # the sandwich rule's random subnets per step (besides the largest and smallest)
    distill_temperature: float = 1.0
    augment: bool = False
    val_fraction: float = 0.2  # held out from training: what the search's accuracy is measured on
    checkpoint_every: int = 25  # steps between checkpoints
    # search
    trials: int = 64
    population: int = 16
    objectives: tuple[str, ...] = OBJECTIVES
    all_bits: bool = False  # search every bitwidth of the space, not only the target's deployable ones
    recal_batches: int = 4
    cost_batch_size: int = 1
    # extraction
    pick: str = "accuracy"  # front point to extract: 'accuracy' (most accurate within budgets) or a cost key
    finetune_epochs: int = 0
    finetune_lr: float = 0.005
    # lifelong
    replay_size: int = 256  # images of the training data kept in supernet.pt for replay
    replay_fraction: float = 0.25  # share of each batch drawn from the replay sample when continuing
    distill_old: float = 1.0  # weight of the distillation from the old supernet when continuing

    def __post_init__(self) -> None:
        self.budgets = tuple(self.budgets or ())
        self.objectives = tuple(self.objectives)
        positive = ("epochs", "batch_size", "trials", "population", "recal_batches", "cost_batch_size",
                    "checkpoint_every")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "epochs" else 1):
                raise ConfigError(f"NasConfig.{name} must be a positive integer, got {value!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"NasConfig.val_fraction must be in (0, 1), got {self.val_fraction!r}")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown or not self.objectives:
            raise ConfigError(f"NasConfig.objectives got {list(self.objectives)}; expected a non-empty subset of "
                              f"{list(OBJECTIVES)}")
        if self.pick not in ("accuracy", *OBJECTIVES):
            raise ConfigError(f"NasConfig.pick must be 'accuracy' or one of {list(OBJECTIVES)}, got {self.pick!r}")
        if self.population < 2:
            raise ConfigError(f"NasConfig.population must be at least 2 (NSGA-II crosses pairs), got {self.population}")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["budgets"], data["objectives"] = list(self.budgets), list(self.objectives)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> NasConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> NasConfig:
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"unknown NasConfig field(s) {unknown}; known: {[f.name for f in fields(self)]}")
        return NasConfig.from_dict({**self.to_dict(), **changes})
