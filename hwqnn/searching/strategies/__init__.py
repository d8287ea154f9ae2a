"""Search strategies, registered by name: ``search`` (QSS + QPL + MILP), the ``uniform`` baseline and the
Hessian-aware ``hawq`` baseline.

A new method is one module: subclass :class:`Strategy`, decorate it with :func:`register_strategy`.
"""

from . import dnas, hawq, uniform  # noqa: F401 - registers the built-in strategies
from .base import STRATEGIES, Strategy, StrategyError, get_strategy, list_strategies, register_strategy

__all__ = ["Strategy", "StrategyError", "register_strategy", "get_strategy", "list_strategies", "STRATEGIES"]
