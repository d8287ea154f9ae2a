"""Quantized ops: each quantizes its input activation and its weight operand, then runs the op once.

``QuantModuleOp`` wraps a Conv*/ConvTranspose*/Linear module (its parameters stay in that module);
``QuantFunctionOp`` replaces a functional call (``F.conv*``, ``F.linear``, ``matmul``/``bmm``/``@``,
``addmm``/``baddbmm``) found in the fx graph; ``QuantEinsumOp`` runs a two-operand einsum contraction as
one batched matmul; ``QuantEmbeddingOp`` quantizes an embedding table (weight only). All record their
workload row (``cost_models.layer_info``) when asked, so QAG's layer metadata and the cost models'
workload come from one formula.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cost_models import LayerInfo, layer_info, plan_einsum

from .slot import QuantSlot

_CONV_TRANSPOSE = {
    nn.ConvTranspose1d: (F.conv_transpose1d, "conv_transpose1d"),
    nn.ConvTranspose2d: (F.conv_transpose2d, "conv_transpose2d"),
    nn.ConvTranspose3d: (F.conv_transpose3d, "conv_transpose3d"),
}
_CONV = {nn.Conv1d: "conv1d", nn.Conv2d: "conv2d", nn.Conv3d: "conv3d"}
SUPPORTED_MODULES = (*_CONV, *_CONV_TRANSPOSE, nn.Linear)


def is_plain_layer(module: nn.Module) -> bool:
    """A Conv/ConvTranspose/Linear whose forward is torch's own, so QuantModuleOp computes exactly what it
    does. A subclass with its own forward (padding 'same', weight standardization) is not: QAG traces
    or intercepts its forward instead of replacing it."""
    base = next((b for b in SUPPORTED_MODULES if isinstance(module, b)), None)
    return base is not None and type(module).forward is base.forward


class WrapsModule:
    """Mixin for QAG modules that keep the float layer as ``self.module``: attributes the wrapper does not
    have (``in_features``, ``num_layers``, ``padding_idx``...) are read from that layer, so user code that
    inspects its layers keeps working after conversion."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            module = self.__dict__.get("_modules", {}).get("module")
            if module is None or name == "module":
                raise
            return getattr(module, name)


class QuantOp(nn.Module):
    """Common part: the two slots, the layer name, and workload recording.

    ``weight_only`` ops (embeddings) have no activation slot that a policy or a search can reach;
    ``weight_is_param`` is False when the second operand is an activation (``q @ k^T``).
    """

    weight_only = False
    weight_is_param = True

    def __init__(self, layer_name: str, op_type: str, weight_slot: QuantSlot, act_slot: QuantSlot):
        super().__init__()
        self.layer_name = layer_name
        self.op_type = op_type
        self.weight_slot = weight_slot
        self.act_slot = act_slot
        self.recorder: list[LayerInfo] | None = None
        self.record_batch_size = 1

    def _record(self, x: Tensor, w: Tensor, out: Tensor, weight_is_param: bool, stride=1, groups=1) -> None:
        if self.recorder is not None:
            self.recorder.append(layer_info(self.layer_name, self.op_type, x, w, out,
                                            batch_size=self.record_batch_size,
                                            weight_is_param=weight_is_param, stride=stride, groups=groups))

    @property
    def slots(self) -> tuple[QuantSlot, QuantSlot]:
        return self.weight_slot, self.act_slot


class QuantModuleOp(WrapsModule, QuantOp):
    """A Conv*, ConvTranspose* or Linear module with quantized weight and input."""

    def __init__(self, layer_name: str, module: nn.Module, weight_slot: QuantSlot, act_slot: QuantSlot):
        kind = next((b for b in SUPPORTED_MODULES if isinstance(module, b)), None)
        op_type = _CONV.get(kind) or _CONV_TRANSPOSE.get(kind, (None, None))[1] or ("linear" if kind is nn.Linear else None)
        if op_type is None:
            raise TypeError(f"QuantModuleOp does not support {type(module).__name__}")
        super().__init__(layer_name, op_type, weight_slot, act_slot)
        self.module = module

    @property
    def weight(self) -> Tensor:
        return self.module.weight

    @property
    def bias(self) -> Tensor | None:
        return self.module.bias

    def forward(self, x: Tensor) -> Tensor:
        m = self.module
        if m._forward_pre_hooks or m._forward_hooks:  # the user's hooks on the float layer keep firing
            return _with_module_hooks(m, x, self._compute)
        return self._compute(x)

    def _compute(self, x: Tensor) -> Tensor:
        m = self.module
        xq = self.act_slot(x)
        wq = self.weight_slot(m.weight)
        if isinstance(m, nn.Linear):
            out = F.linear(xq, wq, m.bias)
        elif isinstance(m, tuple(_CONV_TRANSPOSE)):
            fn = next(f for t, (f, _) in _CONV_TRANSPOSE.items() if isinstance(m, t))
            out = fn(xq, wq, m.bias, m.stride, m.padding, m.output_padding, m.groups, m.dilation)
        else:
            out = m._conv_forward(xq, wq, m.bias)
        if self.recorder is not None:
            self._record(x, m.weight, out, True, getattr(m, "stride", 1), getattr(m, "groups", 1))
        return out


class QuantFunctionOp(QuantOp):
    """A functional conv/linear/matmul call: ``fn(act_slot(x), weight_slot(w), *args, **kwargs)``."""

    def __init__(self, layer_name: str, op_type: str, fn: Callable, weight_slot: QuantSlot, act_slot: QuantSlot,
                 weight_is_param: bool):
        super().__init__(layer_name, op_type, weight_slot, act_slot)
        self.fn = fn
        self.weight_is_param = weight_is_param

    def forward(self, x: Tensor, w: Tensor, *args, **kwargs) -> Tensor:
        out = self.fn(self.act_slot(x), self.weight_slot(w), *args, **kwargs)
        if self.recorder is not None:
            stride = args[1] if self.op_type.startswith("conv") and len(args) > 1 else kwargs.get("stride", 1)
            groups = args[4] if self.op_type.startswith("conv") and len(args) > 4 else kwargs.get("groups", 1)
            self._record(x, w, out, self.weight_is_param, stride, groups)
        return out

    def extra_repr(self) -> str:
        return f"layer={self.layer_name}, op={self.op_type}, fn={getattr(self.fn, '__name__', self.fn)}"


def _with_module_hooks(module: nn.Module, x: Tensor, compute: Callable[[Tensor], Tensor]) -> Tensor:
    """Run ``compute(x)`` in place of ``module(x)``, calling the module's own forward (pre-)hooks around it."""
    args: tuple = (x,)
    for hook_id, hook in list(module._forward_pre_hooks.items()):
        if module._forward_pre_hooks_with_kwargs.get(hook_id):
            result = hook(module, args, {})
            if result is not None:
                args = result[0]
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    out = compute(*args)
    for hook_id, hook in list(module._forward_hooks.items()):
        if module._forward_hooks_with_kwargs.get(hook_id):
            result = hook(module, args, {}, out)
        else:
            result = hook(module, args, out)
        if result is not None:
            out = result
    return out


def add_matmul(fn: Callable) -> Callable:
    """``fn(input, mat1, mat2, ...)`` (addmm, baddbmm) as ``g(mat1, mat2, input, ...)``: operands first."""
    def call(mat1: Tensor, mat2: Tensor, input: Tensor, *args, **kwargs) -> Tensor:
        return fn(input, mat1, mat2, *args, **kwargs)
    call.__name__ = fn.__name__
    return call


def _merge_dims(t: Tensor, n_batch: int, groups: tuple[int, int]) -> Tensor:
    """Keep the first ``n_batch`` dimensions; merge the next two groups of dimensions into one each (an
    empty group becomes a size-1 dimension). A no-op when both groups are single dimensions."""
    if groups == (1, 1):
        return t
    sizes, start = [], n_batch
    for count in groups:
        size = 1
        for d in range(start, start + count):
            size = size * t.shape[d]
        sizes.append(size)
        start += count
    return t.reshape(*t.shape[:n_batch], *sizes)


class QuantEinsumOp(QuantOp):
    """A two-operand einsum contraction run as one matmul ``[*batch, M, K] @ [*batch, K, N]``
    (see cost_models.compound)."""

    def __init__(self, layer_name: str, equation: str, weight_slot: QuantSlot, act_slot: QuantSlot,
                 weight_is_param: bool):
        super().__init__(layer_name, "matmul", weight_slot, act_slot)
        self.equation = equation
        self.weight_is_param = weight_is_param

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        plan = plan_einsum(self.equation, a.shape, b.shape)
        if plan.a_sum:
            a = a.sum(plan.a_sum)
        if plan.b_sum:
            b = b.sum(plan.b_sum)
        a, b = a.permute(plan.a_perm), b.permute(plan.b_perm)
        n_batch, n_a, n_k, n_b = plan.groups
        # Sizes read from the tensors (not the plan's ints), so an exported graph keeps a dynamic batch.
        free = [*a.shape[n_batch: n_batch + n_a], *b.shape[n_batch + n_k:]]
        a = _merge_dims(a, n_batch, (n_a, n_k))
        b = _merge_dims(b, n_batch, (n_k, n_b))
        product = torch.matmul(self.act_slot(a), self.weight_slot(b))  # batch indices broadcast
        self._record(a, b, product, self.weight_is_param)
        if (n_a, n_b) != (1, 1):
            product = product.reshape(*product.shape[:n_batch], *free)
        return product.permute(plan.out_perm)

    def extra_repr(self) -> str:
        return f"layer={self.layer_name}, einsum='{self.equation}' as matmul"


class QuantEmbeddingOp(WrapsModule, QuantOp):
    """An embedding table with a weight slot (per row). Its input is integer indices: the activation
    slot is pinned to float and listed nowhere (the op is weight-only)."""

    weight_only = True

    def __init__(self, layer_name: str, module: nn.Embedding, weight_slot: QuantSlot, act_slot: QuantSlot):
        super().__init__(layer_name, "embedding", weight_slot, act_slot)
        act_slot.pin_float()
        self.module = module

    @property
    def weight(self) -> Tensor:
        return self.module.weight

    def forward(self, x: Tensor) -> Tensor:
        m = self.module
        out = F.embedding(x, self.weight_slot(m.weight), m.padding_idx, m.max_norm, m.norm_type,
                          m.scale_grad_by_freq, m.sparse)
        self._record(x, m.weight, out, True)
        return out

