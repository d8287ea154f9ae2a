"""Quantized ops: each quantizes its input activation and its weight operand, then runs the op once.

``QuantModuleOp`` wraps a Conv*/ConvTranspose*/Linear module (its parameters stay in that module);
``QuantFunctionOp`` replaces a functional call (``F.conv*``, ``F.linear``, ``matmul``/``bmm``/``@``) found
in the fx graph. Both record their workload row (``cost_models.layer_info``) when asked, so QAG's layer
metadata and the cost models' workload come from one formula.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from cost_models.workload import LayerInfo, layer_info

from .slot import QuantSlot

_CONV_TRANSPOSE = {
    nn.ConvTranspose1d: (F.conv_transpose1d, "conv_transpose1d"),
    nn.ConvTranspose2d: (F.conv_transpose2d, "conv_transpose2d"),
    nn.ConvTranspose3d: (F.conv_transpose3d, "conv_transpose3d"),
}
_CONV = {nn.Conv1d: "conv1d", nn.Conv2d: "conv2d", nn.Conv3d: "conv3d"}
SUPPORTED_MODULES = (*_CONV, *_CONV_TRANSPOSE, nn.Linear)


class QuantOp(nn.Module):
    """Common part: the two slots, the layer name, and workload recording."""

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


class QuantModuleOp(QuantOp):
    """A Conv*, ConvTranspose* or Linear module with quantized weight and input."""

    def __init__(self, layer_name: str, module: nn.Module, weight_slot: QuantSlot, act_slot: QuantSlot):
        op_type = (_CONV.get(type(module)) or _CONV_TRANSPOSE.get(type(module), (None, None))[1]
                   or ("linear" if isinstance(module, nn.Linear) else None))
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
        xq = self.act_slot(x)
        wq = self.weight_slot(m.weight)
        if isinstance(m, nn.Linear):
            out = F.linear(xq, wq, m.bias)
        elif type(m) in _CONV_TRANSPOSE:
            fn = _CONV_TRANSPOSE[type(m)][0]
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
