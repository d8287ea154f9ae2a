"""The uniform baseline: every layer at the same scheme and W/A bits; no search."""

from __future__ import annotations

from ...policy import Policy
from .base import Strategy, register_strategy


@register_strategy
class UniformStrategy(Strategy):
    """``config.uniform_bits`` with ``config.uniform_scheme`` on every layer (the baseline to beat)."""

    name = "uniform"

    def finalize(self, run) -> Policy:
        w_bits, a_bits = run.config.uniform_bits
        policy = Policy.uniform(f"w{w_bits}a{a_bits}", scheme=run.config.uniform_scheme)
        return policy.expand(run.problem.layer_names)
