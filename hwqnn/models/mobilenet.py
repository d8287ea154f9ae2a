"""MobileNetV2-style net (Sandler et al., 2018) shrunk for 32x32 inputs: inverted residual blocks of a
1x1 expansion, a 3x3 depthwise convolution and a linear 1x1 projection. The depthwise layers give the
search a layer type whose cost is bound by memory traffic, not by MACs."""

from __future__ import annotations

from torch import Tensor, nn

from ._builder import build_model
from ._registry import ModelError, register_model

#: (expansion t, output channels c, repeats n, first stride s) per stage, in the format of the paper's
#: Table 2 but with fewer, narrower stages (the paper's net is for 224x224 ImageNet).
TINY_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 2, 2),
    (6, 64, 2, 2),
    (6, 96, 1, 1),
)


def make_divisible(channels: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor``, never losing more than 10%."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


class ConvBnAct(nn.Sequential):
    """Convolution (no bias), batch norm, optional ReLU6."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (3x3) -> project (1x1, linear); a residual when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_ch * expansion
        layers: list[nn.Module] = [] if expansion == 1 else [ConvBnAct(in_ch, hidden)]
        layers += [
            ConvBnAct(hidden, hidden, kernel=3, stride=stride, groups=hidden),
            ConvBnAct(hidden, out_ch, act=False),
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """stem conv -> inverted residual stages -> 1x1 conv -> global average pool -> linear."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width_mult: float = 1.0,
                 stem_channels: int = 16, last_channels: int = 256,
                 stages: tuple[tuple[int, int, int, int], ...] = TINY_STAGES):
        super().__init__()
        if not isinstance(width_mult, (int, float)) or width_mult <= 0:
            raise ModelError(f"MobileNetV2 got width_mult={width_mult!r}; expected a positive number")
        in_ch = make_divisible(stem_channels * width_mult)
        blocks: list[nn.Module] = [ConvBnAct(in_chans, in_ch, kernel=3)]  # stride 1: inputs are 32x32
        for expansion, channels, repeats, first_stride in stages:
            out_ch = make_divisible(channels * width_mult)
            for index in range(repeats):
                blocks.append(InvertedResidual(in_ch, out_ch, first_stride if index == 0 else 1, expansion))
                in_ch = out_ch
        head_ch = make_divisible(last_channels * max(1.0, width_mult))
        blocks.append(ConvBnAct(in_ch, head_ch))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(head_ch, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


@register_model(input_shape=(3, 32, 32), default_data="cifar10")
def mobilenet_v2_tiny(num_classes: int = 10, **kwargs) -> MobileNetV2:
    """Five stages (16 to 96 channels) and a 256-channel head for CIFAR-10."""
    return build_model(MobileNetV2, "mobilenet_v2_tiny", num_classes=num_classes, **kwargs)
