"""Markers: how a quantized tensor is found again in the exported ONNX graph.

During export each quantized slot is swapped for a marker module. The marker passes its tensor through
an autograd Function whose ONNX symbolic is a node ``hwqnn.marker::Tag`` carrying an integer tag. The
TorchScript exporter keeps custom-domain nodes as they are (it cannot constant-fold through them), so
after export every Tag node sits exactly where the slot was, whatever the exporter did around it
(Gemm or MatMul, fused or renamed initializers). The graph editor then replaces each Tag by the
DequantizeLinear or Q/DQ pair planned for that tag and removes the marker domain.

A constant weight marker ignores the live weight and emits the fake-quantized weight, computed once
in eval mode, so a Tag that stays float already holds the exact quantized values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..qag import QuantOp

MARKER_DOMAIN = "hwqnn.marker"
MARKER_OP = "Tag"


class _Tag(torch.autograd.Function):
    """``value(x)`` in PyTorch (identity when None); a ``hwqnn.marker::Tag`` node on ``x`` in ONNX."""

    @staticmethod
    def forward(ctx, x: Tensor, tag: int, value: Callable[[Tensor], Tensor] | None) -> Tensor:  # noqa: ARG004
        return value(x) if value is not None else x.clone()

    @staticmethod
    def symbolic(g, x, tag: int, value):  # noqa: ARG004 - the marker is replaced after export
        out = g.op(f"{MARKER_DOMAIN}::{MARKER_OP}", x, tag_i=tag)
        out.setType(x.type())
        return out


class DynamicMarker(nn.Module):
    """Marks a tensor computed at run time (an input activation, or a matmul's second activation).

    While the model is traced it passes on the output the slot really produced on the example input
    (replayed in call order), so data-dependent branches are taken as the quantized model takes them,
    without running the quantizer's own ops under the tracer.
    """

    def __init__(self, tag: int, outputs: list[Tensor]):
        super().__init__()
        self.tag = tag
        self.outputs = outputs
        self.calls = 0

    def _replay(self, x: Tensor) -> Tensor:
        # The trace runs the example input again, so the calls come in the captured order and shapes.
        out = self.outputs[self.calls % len(self.outputs)] if self.outputs else x
        self.calls += 1
        return out.clone()

    def forward(self, x: Tensor) -> Tensor:
        return _Tag.apply(x, self.tag, self._replay)


class ConstantMarker(nn.Module):
    """Marks a weight: emits the stored fake-quantized value and ignores the live (float) weight."""

    def __init__(self, tag: int, value: Tensor):
        super().__init__()
        self.tag = tag
        self.register_buffer("value", value.detach().clone())

    def forward(self, x: Tensor) -> Tensor:  # noqa: ARG002 - the live weight is replaced by design
        return _Tag.apply(self.value, self.tag, None)


@contextmanager
def swapped_slots(replacements: dict[tuple[QuantOp, str], nn.Module]) -> Iterator[None]:
    """Temporarily replace ``op.weight_slot`` / ``op.act_slot`` attributes; always restore them."""
    originals = {(op, attr): getattr(op, attr) for op, attr in replacements}
    try:
        for (op, attr), module in replacements.items():
            setattr(op, attr, module)
        yield
    finally:
        for (op, attr), module in originals.items():
            setattr(op, attr, module)
