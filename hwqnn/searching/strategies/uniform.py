"""The uniform baseline: every layer at the same scheme and W/A bits; no search."""

from __future__ import annotations

import logging

from ...deployment import deployable_bits
from ...policy import LayerPolicy, Policy
from .base import Strategy, register_strategy

log = logging.getLogger(__name__)


@register_strategy
class UniformStrategy(Strategy):
    """``config.uniform_bits`` with ``config.uniform_scheme`` on every layer (the baseline to beat).

    On a target whose runtime cannot hold those bits natively, each side takes the widest native bits
    below them unless ``allow_emulated``: "w8a8" on TensorRT (symmetric int8) keeps 8-bit weights and
    7-bit unsigned activations, which is what its int8 holds for a ReLU output. The policy says so.
    """

    name = "uniform"

    def finalize(self, run) -> Policy:
        w_bits, a_bits = run.config.uniform_bits
        scheme = run.config.uniform_scheme
        spec = run.problem.profile.deployment
        meta = {"uniform": f"w{w_bits}a{a_bits}"}
        if spec is not None and not run.config.allow_emulated:
            w_native = [b for b in deployable_bits(scheme, "weight", (1, w_bits), spec)]
            a_native = [b for b in deployable_bits(scheme, "activation", (1, a_bits), spec)]
            if w_native and a_native and (w_native[-1], a_native[-1]) != (w_bits, a_bits):
                note = (f"w{w_bits}a{a_bits} {scheme} is not native on {run.problem.target}; the widest native "
                        f"uniform is w{w_native[-1]}a{a_native[-1]}")
                log.info(note)
                meta["deployment_note"] = note
                w_bits, a_bits = w_native[-1], a_native[-1]
        policy = Policy({"default": LayerPolicy(scheme, w_bits, scheme, a_bits)}, meta)
        return policy.expand(run.problem.layer_names)
