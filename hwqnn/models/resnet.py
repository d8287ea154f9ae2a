"""CIFAR ResNets of He et al. (2016), section 4.2: 6n+2 layers in three stages of 16, 32 and 64 channels.

Shortcuts default to option A, as in the paper's CIFAR experiments: when a stage halves the resolution
and doubles the channels, the identity is subsampled by 2 and zero-padded with new channels, so
ResNet-20 has no extra 1x1 convolutions and about 0.27M parameters. Option B (a 1x1 convolution and
batch norm projection) is available with ``shortcut="B"``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._builder import build_model
from ._registry import ModelError, register_model

SHORTCUTS = ("A", "B")


class PadShortcut(nn.Module):
    """Option A: take every second pixel and pad the new channels with zeros (parameter-free)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        extra = out_channels - in_channels
        self.pad_front, self.pad_back = extra // 2, extra - extra // 2

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_front, self.pad_back))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """conv(16) -> 3 stages of n BasicBlocks (16, 32, 64 channels) -> global average pool -> linear."""

    def __init__(self, depth: int = 20, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A"):
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ModelError(f"CifarResNet got depth={depth!r}; expected 6n + 2, n >= 1 (8, 14, 20, 32, ...)")
        if shortcut not in SHORTCUTS:
            raise ModelError(f"CifarResNet got shortcut={shortcut!r}; expected one of {SHORTCUTS}")
        blocks_per_stage = (depth - 2) // 6
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True)
        )
        stages, in_channels = [], 16
        for stage_index, channels in enumerate((16, 32, 64)):
            blocks = []
            for block_index in range(blocks_per_stage):
                stride = 2 if stage_index > 0 and block_index == 0 else 1
                blocks.append(BasicBlock(in_channels, channels, stride, shortcut))
                in_channels = channels
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.head(self.pool(x).flatten(1))


@register_model(input_shape=(3, 32, 32), default_data="cifar10")
def resnet20(num_classes: int = 10, **kwargs) -> CifarResNet:
    """ResNet-20 for CIFAR-10 (option-A shortcuts, 0.27M parameters)."""
    if "depth" in kwargs:
        raise ModelError(
            f"resnet20 has a fixed depth of 20, got depth={kwargs['depth']!r}; "
            "build hwqnn.models.resnet.CifarResNet(depth=...) for another depth"
        )
    return build_model(CifarResNet, "resnet20", depth=20, num_classes=num_classes, **kwargs)
