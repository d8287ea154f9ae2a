"""The plug-in point of every search method: a small base class and a registry, like optuna's samplers.

A strategy decides what happens between the pretrained float model and the fixed policy: an optional
search phase (resumable, epoch by epoch, through the runner's checkpoints) and ``finalize``, which returns
the policy. The runner owns everything else: pretraining, fine-tuning, evaluation, checkpoints and the
run directory. A new method is one module with one ``@register_strategy`` class.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

from ..._registry import Registry
from ...errors import HwqnnError
from ...policy import Policy

if TYPE_CHECKING:
    from ..config import SearchConfig
    from ..problem import Problem
    from ..runner import Runner


class StrategyError(HwqnnError):
    """An unknown search method, or a strategy that cannot run as configured."""


class Strategy(abc.ABC):
    """One search method. Subclasses set ``name`` and implement ``finalize``; searching ones ``search``."""

    name: ClassVar[str]
    #: Whether the run has a search phase (``config.search_epochs`` epochs of :meth:`search`).
    searches: ClassVar[bool] = False

    def __init__(self, problem: Problem, config: SearchConfig) -> None:
        self.problem, self.config = problem, config

    def search(self, run: Runner) -> None:  # noqa: B027 - optional hook, a no-op by default
        """The search phase. Start at ``run.epoch`` (a resumed run) and call ``run.end_epoch`` after each epoch."""

    @abc.abstractmethod
    def finalize(self, run: Runner) -> Policy:
        """The fixed policy (every layer, integer bits), within ``run.problem``'s budgets."""

    def state_dict(self) -> dict:
        """What a checkpoint must hold for :meth:`search` to resume (e.g. Lagrange multipliers)."""
        return {}

    def load_state_dict(self, state: dict) -> None:  # noqa: B027 - stateless by default
        """Restore :meth:`state_dict`."""


STRATEGIES: Registry[type[Strategy]] = Registry("search method", StrategyError)


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make ``cls`` available as ``hwqnn search --method cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyError(f"register_strategy expects a Strategy subclass, got {cls!r}")
    return STRATEGIES.register(cls.name, cls)


def get_strategy(name: str) -> type[Strategy]:
    return STRATEGIES.get(name)


def list_strategies() -> list[str]:
    return sorted(STRATEGIES)
