"""One network definition per space family, built either elastic (the supernet) or static (a subnet).

The same classes and the same module paths serve both: the supernet is the largest architecture built
from elastic layers, and a subnet is its architecture built from plain ``nn.Conv2d``/``nn.BatchNorm2d``/
``nn.Linear``. A layer of a subnet therefore has the module path of the supernet layer it was sliced from,
and a policy written for one applies to the other.
"""

from __future__ import annotations

from torch import Tensor, nn

from .elastic import ElasticBatchNorm2d, ElasticConv2d, ElasticLinear
from .space import Arch, SpaceSpec


def channels(ratio: float, base: int) -> int:
    return max(1, int(round(ratio * base)))


class LayerFactory:
    """Builds the plain layers of a standalone subnet."""

    elastic = False

    def __init__(self, space: SpaceSpec):
        self.space = space

    def conv(self, cin: int, cout: int, k: int, stride: int = 1, depthwise: bool = False) -> nn.Module:
        return nn.Conv2d(cin, cin if depthwise else cout, k, stride, k // 2, groups=cin if depthwise else 1,
                         bias=False)

    def bn(self, c: int) -> nn.Module:
        return nn.BatchNorm2d(c)

    def linear(self, cin: int, cout: int) -> nn.Module:
        return nn.Linear(cin, cout)


class ElasticFactory(LayerFactory):
    """Builds the elastic layers of a supernet."""

    elastic = True

    def conv(self, cin: int, cout: int, k: int, stride: int = 1, depthwise: bool = False) -> nn.Module:
        return ElasticConv2d(cin, cin if depthwise else cout, k, stride, depthwise,
                             self.space.w_scheme, self.space.a_scheme)

    def bn(self, c: int) -> nn.Module:
        return ElasticBatchNorm2d(c)

    def linear(self, cin: int, cout: int) -> nn.Module:
        return ElasticLinear(cin, cout, self.space.w_scheme, self.space.a_scheme)


class ConvBN(nn.Module):
    def __init__(self, conv: nn.Module, bn: nn.Module, act: nn.Module | None = None):
        super().__init__()
        self.conv, self.bn, self.act = conv, bn, act if act is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """ResNet block: 3x3 conv (elastic inner width) - 3x3 conv, projection shortcut where shapes change."""

    def __init__(self, f: LayerFactory, cin: int, mid: int, cout: int, stride: int, project: bool):
        super().__init__()
        self.conv1 = ConvBN(f.conv(cin, mid, 3, stride), f.bn(mid), nn.ReLU())
        self.conv2 = ConvBN(f.conv(mid, cout, 3), f.bn(cout))
        self.shortcut = ConvBN(f.conv(cin, cout, 1, stride), f.bn(cout)) if project else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (elastic ratio) - depthwise kxk (elastic k) - 1x1 project."""

    def __init__(self, f: LayerFactory, cin: int, hidden: int, cout: int, k: int, stride: int):
        super().__init__()
        self.expand = ConvBN(f.conv(cin, hidden, 1), f.bn(hidden), nn.ReLU6())
        self.depthwise = ConvBN(f.conv(hidden, hidden, k, stride, depthwise=True), f.bn(hidden), nn.ReLU6())
        self.project = ConvBN(f.conv(hidden, cout, 1), f.bn(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


class Stage(nn.Module):
    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.depth = len(blocks)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks[: self.depth]:
            x = block(x)
        return x


class SpaceNet(nn.Module):
    """stem -> stages -> (1x1 head) -> global average pool -> classifier, for any family."""

    def __init__(self, space: SpaceSpec, arch: Arch, f: LayerFactory, num_classes: int):
        super().__init__()
        self.space_name = space.name
        cin = space.input_shape[0]
        self.stem = ConvBN(f.conv(cin, space.stem_channels, 3), f.bn(space.stem_channels), nn.ReLU())
        c = space.stem_channels
        stages = []
        for i, spec in enumerate(space.stages):
            blocks = []
            for b in range(arch.depths[i]):
                stride = spec.stride if b == 0 else 1
                width, k = arch.widths[i][b], arch.kernels[i][b]
                if space.family == "plain":
                    out = channels(width, spec.channels)
                    blocks.append(ConvBN(f.conv(c, out, 3, stride), f.bn(out), nn.ReLU()))
                elif space.family == "resnet":
                    out = spec.channels
                    blocks.append(BasicBlock(f, c, channels(width, out), out, stride, project=b == 0 and space._projects(i)))
                else:
                    out = spec.channels
                    blocks.append(InvertedResidual(f, c, channels(width, c), out, k, stride))
                c = out
            stages.append(Stage(blocks))
        self.stages = nn.ModuleList(stages)
        if space.head_channels:
            self.head = ConvBN(f.conv(c, space.head_channels, 1), f.bn(space.head_channels), nn.ReLU6())
            c = space.head_channels
        else:
            self.head = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = f.linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.classifier(self.pool(self.head(x)).flatten(1))


def build_subnet(space: SpaceSpec, arch: Arch, num_classes: int = 10) -> SpaceNet:
    """A standalone float subnet of ``space`` (plain layers, fresh weights)."""
    return SpaceNet(space, space.check(arch), LayerFactory(space), num_classes)


def build_supernet(space: SpaceSpec, num_classes: int = 10) -> SpaceNet:
    """The elastic supernet of ``space``: its largest architecture, built from elastic layers."""
    return SpaceNet(space, space.largest(), ElasticFactory(space), num_classes)


def set_active(net: SpaceNet, space: SpaceSpec, arch: Arch) -> None:
    """Make the supernet compute the subnet ``arch`` (its depths, widths and kernels)."""
    c = space.stem_channels
    for i, (spec, stage) in enumerate(zip(space.stages, net.stages)):
        stage.depth = arch.depths[i]
        for b in range(arch.depths[i]):
            block, width, k = stage.blocks[b], arch.widths[i][b], arch.kernels[i][b]
            if space.family == "plain":
                block.conv.active_out = channels(width, spec.channels)
                c = block.conv.active_out
            elif space.family == "resnet":
                block.conv1.conv.active_out = channels(width, spec.channels)
                c = spec.channels
            else:
                block.expand.conv.active_out = channels(width, c)
                block.depthwise.conv.active_kernel = k
                c = spec.channels


def active_layer_names(net: SpaceNet | None, space: SpaceSpec, arch: Arch) -> list[str]:
    """Module paths of the quantized layers of subnet ``arch``, in forward order."""
    names = ["stem.conv"]
    for i in range(len(space.stages)):
        for b in range(arch.depths[i]):
            p = f"stages.{i}.blocks.{b}"
            if space.family == "plain":
                names.append(f"{p}.conv")
            elif space.family == "resnet":
                names += [f"{p}.conv1.conv", f"{p}.conv2.conv"]
                if b == 0 and space._projects(i):
                    names.append(f"{p}.shortcut.conv")
            else:
                names += [f"{p}.expand.conv", f"{p}.depthwise.conv", f"{p}.project.conv"]
    if space.head_channels:
        names.append("head.conv")
    return names + ["classifier"]
