"""BranchyCNN: a digits CNN whose middle block branches on a tensor value.

``torch.fx.symbolic_trace`` cannot trace the Python ``if`` in :class:`GatedBlock`, so the whole model is
untraceable; every other part is traceable. It exists to exercise QAG's fallback, which keeps such a
submodule as a leaf and still quantizes what is inside it.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._builder import build_model
from ._registry import register_model
from .tiny_cnn import ConvBnRelu


class GatedBlock(nn.Module):
    """Adds a residual conv branch when the input's mean is positive; otherwise only the conv branch."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        branch = self.act(self.bn(self.conv(x)))
        if x.mean() > 0:  # data-dependent control flow: fx raises a TraceError here
            return x + branch
        return branch


class BranchyCNN(nn.Module):
    """conv(16) -> GatedBlock(16) -> conv(32, stride 2) -> global average pool -> linear."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),  # no ReLU, so the gate sees inputs of either sign
        )
        self.gate = GatedBlock(width)
        self.down = ConvBnRelu(width, 2 * width, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.down(self.gate(self.stem(x)))
        return self.head(self.pool(x).flatten(1))


@register_model(input_shape=(1, 8, 8), default_data="digits")
def branchy_cnn(num_classes: int = 10, **kwargs) -> BranchyCNN:
    """Untraceable at the top level because of :class:`GatedBlock`; traceable with it as a leaf."""
    return build_model(BranchyCNN, "branchy_cnn", num_classes=num_classes, **kwargs)
