"""GEMMs that run outside any QuantSlot: found, given their owner module and the reason, never silent.

``convert`` runs the example input under :class:`FloatOpFinder`; calls the traced graph makes itself get
their owner from the graph (:func:`graph_float_ops`, :func:`merge_owners`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from cost_models import (
    ADD_MATMUL_FUNCTIONS,
    QUANTIZABLE_FUNCTIONS,
    RECURRENT_FUNCTIONS,
    einsum_operands,
    is_einsum_contraction,
)

from .attention import QuantCompound
from .ops import QuantOp
from .rewrite import owner_path

#: GEMM-like calls QAG has a quantized form for: found outside a QuantOp, they ran in an untraced module.
_CONVERTIBLE: dict[object, str] = {
    **QUANTIZABLE_FUNCTIONS, **ADD_MATMUL_FUNCTIONS, F.embedding: "embedding", torch.einsum: "einsum",
    F.scaled_dot_product_attention: "scaled_dot_product_attention",
    F.multi_head_attention_forward: "multi_head_attention", **{f: m.lower() for f, m in RECURRENT_FUNCTIONS.items()},
}
#: GEMM-like calls without a quantized form in QAG.
_NO_QUANTIZED_FORM: dict[object, str] = {
    F.bilinear: "bilinear", torch.tensordot: "tensordot", torch.addbmm: "addbmm", torch.addmv: "addmv",
    torch.mv: "mv", Tensor.mv: "mv", torch.chain_matmul: "chain_matmul",
    torch._native_multi_head_attention: "native_multi_head_attention",
    torch._transformer_encoder_layer_fwd: "transformer_encoder_layer_fwd",
}


@dataclass(frozen=True)
class FloatOp:
    """A GEMM-like call that ran outside any QuantSlot: what, where, and why."""

    op: str
    owner: str
    reason: str

    def __str__(self) -> str:
        return f"{self.op} in '{self.owner or '<root>'}' ({self.reason})"


def _float_reason(func, args, kwargs) -> str | None:
    """Why this call stays float, or None when it is not a GEMM to report."""
    if func is torch.einsum:
        equation, operands = einsum_operands(args, kwargs)
        if len(operands) < 2 or (len(operands) == 2 and not is_einsum_contraction(equation, operands)):
            return None  # a transpose, a reduction or an elementwise product: not a GEMM
        if len(operands) > 2:
            return (f"einsum '{equation}' with {len(operands)} operands is not a two-operand contraction "
                    "QAG can run as one matmul")
    if func in RECURRENT_FUNCTIONS and len(args) > 3 and not isinstance(args[3], bool):
        return "a PackedSequence input runs the float layer; pass a padded tensor"
    if func in _NO_QUANTIZED_FORM:
        return f"QAG has no quantized form of {_NO_QUANTIZED_FORM[func]}"
    if func in RECURRENT_FUNCTIONS or func is F.multi_head_attention_forward:
        return ("a functional call, or a subclass of a torch.nn layer with its own forward: QAG converts "
                "nn.MultiheadAttention and nn.RNN/GRU/LSTM modules of those exact types")
    if func in _CONVERTIBLE:
        return "called from code fx did not trace: an untraceable or leaf module's forward"
    return None


def _is_gemm_like(func) -> bool:
    try:
        return func in _CONVERTIBLE or func in _NO_QUANTIZED_FORM
    except TypeError:  # an unhashable target
        return False


def graph_float_ops(gm: fx.GraphModule) -> list[FloatOp]:
    """GEMM-like calls the rewrite left in the graph, with the module that owns them in the source."""
    found = []
    for node in gm.graph.nodes:
        if node.op == "call_function" and _is_gemm_like(node.target):
            reason = _float_reason(node.target, node.args, node.kwargs)
            if reason is not None:
                name = _CONVERTIBLE.get(node.target) or _NO_QUANTIZED_FORM[node.target]
                found.append(FloatOp(name, owner_path(node), reason))
    return found


class FloatOpFinder(TorchFunctionMode):
    """Lists GEMM-like calls that run outside any QuantOp (they would silently stay float).

    Calls made by a traced graph itself (the stack holds only the root) get their owner from the graph
    (see ``merge_owners``).
    """

    def __init__(self, stack: list[tuple[str, nn.Module]]):
        super().__init__()
        self.stack = stack
        self.found: list[FloatOp] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if _is_gemm_like(func) and not any(isinstance(m, QuantOp) for _, m in self.stack):
            reason = _float_reason(func, args, kwargs or {})
            if reason is not None:
                name = _CONVERTIBLE.get(func) or _NO_QUANTIZED_FORM[func]
                self.found.append(FloatOp(name, self._owner(), reason))
        return out

    def _owner(self) -> str:
        """The innermost module's path, or its QAG wrapper's (``rnn``, not ``rnn.module``)."""
        if not self.stack:
            return ""
        if len(self.stack) > 1 and isinstance(self.stack[-2][1], (QuantOp, QuantCompound)):
            return self.stack[-2][0]
        return self.stack[-1][0]


def merge_owners(graph_ops: list[FloatOp], found: list[FloatOp]) -> list[FloatOp]:
    """Calls the traced graph makes itself run with only the root on the module stack: give them the owner
    the graph knows. Root-level calls the graph does not list ran inside a function fx kept whole."""
    pending = list(graph_ops)
    out = list(graph_ops)
    for op in found:
        if op.owner:
            out.append(op)
            continue
        match = next((g for g in pending if g.op == op.op), None)
        if match is not None:
            pending.remove(match)
        else:
            out.append(op)
    return out
