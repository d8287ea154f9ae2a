"""Workloads of well-known ImageNet CNNs, built from small local definitions (no torchvision, no weights).

Models are instantiated on the ``meta`` device, so building even VGG-19 costs no memory and no time:
only shapes matter to a cost model. Used by the measured validation and the benchmarks. Layer shapes
follow the torchvision definitions (ResNet v1.5 stride placement; MobileNet v1 from its paper).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from .errors import WorkloadError
from .workload import Workload, extract_workload


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class _Basic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, width, 3, stride), nn.Conv2d(width, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width))
        self.down = (nn.Sequential(nn.Conv2d(cin, width, 1, stride, bias=False), nn.BatchNorm2d(width))
                     if stride != 1 or cin != width else None)

    def forward(self, x):
        return torch.relu(self.body(x) + (x if self.down is None else self.down(x)))


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * 4
        self.body = nn.Sequential(*_conv_bn(cin, width, 1), *_conv_bn(width, width, 3, stride),
                                  nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else None)

    def forward(self, x):
        return torch.relu(self.body(x) + (x if self.down is None else self.down(x)))


class _ResNet(nn.Module):
    def __init__(self, block, depths: tuple[int, ...], num_classes: int):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], 64
        for i, depth in enumerate(depths):
            width = 64 * 2**i
            for j in range(depth):
                stages.append(block(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * block.expansion
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.stages(self.stem(x)), 1), 1))


class _MobileNetV1(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
        layers, cin = _conv_bn(3, 32, 3, 2), 32
        for cout, stride in plan:
            layers += _conv_bn(cin, cin, 3, stride, groups=cin) + _conv_bn(cin, cout, 1)
            cin = cout
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class _SSDMobileNetV1(nn.Module):
    """SSD-MobileNet v1 as MLPerf Inference runs it (TF object detection API ``ssd_mobilenet_v1_coco``, 300x300):
    the MobileNet v1 backbone, four extra stride-2 stages (1x1 then 3x3 convolutions), and a 1x1 class (91
    COCO classes with background) and box convolution on each of the six feature maps (19x19 after block 11,
    10x10 after block 13, then 5, 3, 2, 1), with 3 anchors per location on the first map and 6 on the
    others. Anchor decoding and non-maximum suppression are not layers here (the measured runs include them)."""

    classes = 91

    def __init__(self, num_classes: int = 91):
        super().__init__()
        backbone = _MobileNetV1(1).features
        self.stage11, self.stage13 = backbone[:69], backbone[69:]  # stem (3 modules) + 11 blocks of 6
        extras, cin = [], 1024
        for squeeze, cout in ((256, 512), (128, 256), (128, 256), (64, 128)):
            extras.append(nn.Sequential(*_conv_bn(cin, squeeze, 1), *_conv_bn(squeeze, cout, 3, 2)))
            cin = cout
        self.extras = nn.ModuleList(extras)
        maps = ((512, 3), (1024, 6), (512, 6), (256, 6), (256, 6), (128, 6))
        self.class_heads = nn.ModuleList(nn.Conv2d(c, a * self.classes, 1) for c, a in maps)
        self.box_heads = nn.ModuleList(nn.Conv2d(c, a * 4, 1) for c, a in maps)

    def forward(self, x):
        features = [self.stage11(x)]
        features.append(self.stage13(features[-1]))
        for extra in self.extras:
            features.append(extra(features[-1]))
        outputs = [head(f).flatten(1) for f, heads in zip(features, zip(self.class_heads, self.box_heads))
                   for head in heads]
        return torch.cat(outputs, 1)


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = _conv_bn(cin, hidden, 1) if expand != 1 else []
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class _MobileNetV2(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        plan = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]
        layers, cin = _conv_bn(3, 32, 3, 2), 32
        for expand, cout, repeats, stride in plan:
            for i in range(repeats):
                layers.append(_InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        layers += _conv_bn(cin, 1280, 1)
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def _divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to a multiple of ``divisor``, never more than 10% below it (MobileNet's channel rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class _SqueezeExcite(nn.Module):
    """Channel attention: global average, a 1x1 bottleneck (a quarter of the channels), hard sigmoid, rescale."""

    def __init__(self, channels: int):
        super().__init__()
        squeeze = _divisible(channels / 4)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeeze, 1), nn.ReLU(),
                                  nn.Conv2d(squeeze, channels, 1), nn.Hardsigmoid())

    def forward(self, x):
        return x * self.gate(x)


class _MobileNetV3Block(nn.Module):
    def __init__(self, cin: int, k: int, hidden: int, cout: int, se: bool, act: type[nn.Module], stride: int):
        super().__init__()
        layers: list[nn.Module] = []
        if hidden != cin:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), act()]
        layers += [nn.Conv2d(hidden, hidden, k, stride, k // 2, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   act()]
        layers += [_SqueezeExcite(hidden)] if se else []
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


#: MobileNetV3 (Howard et al. 2019, Tables 1-2): per block (kernel, expanded channels, output channels,
#: squeeze-excite, hard-swish, stride); then the last 1x1 convolution's channels and the classifier's hidden width.
_MOBILENET_V3_PLANS = {
    "large": ([(3, 16, 16, 0, 0, 1), (3, 64, 24, 0, 0, 2), (3, 72, 24, 0, 0, 1), (5, 72, 40, 1, 0, 2),
               (5, 120, 40, 1, 0, 1), (5, 120, 40, 1, 0, 1), (3, 240, 80, 0, 1, 2), (3, 200, 80, 0, 1, 1),
               (3, 184, 80, 0, 1, 1), (3, 184, 80, 0, 1, 1), (3, 480, 112, 1, 1, 1), (3, 672, 112, 1, 1, 1),
               (5, 672, 160, 1, 1, 2), (5, 960, 160, 1, 1, 1), (5, 960, 160, 1, 1, 1)], 960, 1280),
    "small": ([(3, 16, 16, 1, 0, 2), (3, 72, 24, 0, 0, 2), (3, 88, 24, 0, 0, 1), (5, 96, 40, 1, 1, 2),
               (5, 240, 40, 1, 1, 1), (5, 240, 40, 1, 1, 1), (5, 120, 48, 1, 1, 1), (5, 144, 48, 1, 1, 1),
               (5, 288, 96, 1, 1, 2), (5, 576, 96, 1, 1, 1), (5, 576, 96, 1, 1, 1)], 576, 1024),
}


class _MobileNetV3(nn.Module):
    """MobileNetV3-Large or -Small as torchvision defines them (width 1.0): hard-swish, squeeze-excite blocks."""

    def __init__(self, size: str, num_classes: int):
        super().__init__()
        plan, last, hidden_fc = _MOBILENET_V3_PLANS[size]
        layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish()]
        cin = 16
        for k, hidden, cout, se, hswish, stride in plan:
            layers.append(_MobileNetV3Block(cin, k, hidden, cout, bool(se), nn.Hardswish if hswish else nn.ReLU,
                                            stride))
            cin = cout
        layers += [nn.Conv2d(cin, last, 1, bias=False), nn.BatchNorm2d(last), nn.Hardswish()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(last, hidden_fc), nn.Hardswish(), nn.Linear(hidden_fc, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


_VGG_PLANS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def _vgg(depth: int, num_classes: int) -> nn.Module:
    layers, cin = [], 3
    for item in _VGG_PLANS[depth]:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU()]
            cin = item
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(512 * 49, 4096), nn.ReLU(),
                         nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, num_classes))


class _Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        s = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1(s)), torch.relu(self.expand3(s))], 1)


def _squeezenet(version: str, num_classes: int) -> nn.Module:
    pool = nn.MaxPool2d(3, 2, ceil_mode=True)
    if version == "1_0":
        layers = [nn.Conv2d(3, 96, 7, 2), nn.ReLU(), pool, _Fire(96, 16, 64), _Fire(128, 16, 64),
                  _Fire(128, 32, 128), pool, _Fire(256, 32, 128), _Fire(256, 48, 192), _Fire(384, 48, 192),
                  _Fire(384, 64, 256), pool, _Fire(512, 64, 256)]
    else:
        layers = [nn.Conv2d(3, 64, 3, 2), nn.ReLU(), pool, _Fire(64, 16, 64), _Fire(128, 16, 64), pool,
                  _Fire(128, 32, 128), _Fire(256, 32, 128), pool, _Fire(256, 48, 192), _Fire(384, 48, 192),
                  _Fire(384, 64, 256), _Fire(512, 64, 256)]
    return nn.Sequential(*layers, nn.Conv2d(512, num_classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, 4 * growth, 1, bias=False),
                                  nn.BatchNorm2d(4 * growth), nn.ReLU(), nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False))

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


def _densenet121(num_classes: int) -> nn.Module:
    layers, cin = [*_conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)], 64
    for i, depth in enumerate((6, 12, 24, 16)):
        for _ in range(depth):
            layers.append(_DenseLayer(cin, 32))
            cin += 32
        if i < 3:
            layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cin // 2, 1, bias=False), nn.AvgPool2d(2)]
            cin //= 2
    return nn.Sequential(*layers, nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(cin, num_classes))


def _alexnet(num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(),
        nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.AdaptiveAvgPool2d(6),
        nn.Flatten(), nn.Linear(256 * 36, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, num_classes))


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj(torch.matmul(attn, v).transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _DeiT(nn.Module):
    """DeiT-Tiny / ViT-Ti/16 (Touvron et al. 2021): 16x16 patches, width 192, 12 blocks of 3 heads, MLP 768;
    no positional embedding or class token (they cost nothing measurable), mean-pooled tokens."""

    def __init__(self, num_classes: int, dim: int = 192, depth: int = 12, heads: int = 3, mlp: int = 768):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 16, 16)
        self.blocks = nn.Sequential(*[_Block(dim, heads, mlp) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, num_classes)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.blocks(tokens)).mean(1))


REFERENCE_MODELS: dict[str, Callable[[int], nn.Module]] = {
    "resnet18": lambda n: _ResNet(_Basic, (2, 2, 2, 2), n),
    "resnet34": lambda n: _ResNet(_Basic, (3, 4, 6, 3), n),
    "resnet50": lambda n: _ResNet(_Bottleneck, (3, 4, 6, 3), n),
    "resnet101": lambda n: _ResNet(_Bottleneck, (3, 4, 23, 3), n),
    "resnet152": lambda n: _ResNet(_Bottleneck, (3, 8, 36, 3), n),
    "mobilenet_v1": _MobileNetV1,
    "mobilenet_v2": _MobileNetV2,
    "mobilenet_v3_large": lambda n: _MobileNetV3("large", n),
    "mobilenet_v3_small": lambda n: _MobileNetV3("small", n),
    "ssd_mobilenet_v1": _SSDMobileNetV1,
    "vgg11": lambda n: _vgg(11, n),
    "vgg13": lambda n: _vgg(13, n),
    "vgg16": lambda n: _vgg(16, n),
    "vgg19": lambda n: _vgg(19, n),
    "squeezenet1_0": lambda n: _squeezenet("1_0", n),
    "squeezenet1_1": lambda n: _squeezenet("1_1", n),
    "densenet121": _densenet121,
    "alexnet": _alexnet,
    "deit_tiny": _DeiT,
}


class _Attend(nn.Module):
    """Scores ``q @ k^T`` then ``scores @ v`` of one head of width ``dim`` (q, k, v: thirds of each token)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        q, k, v = x.split(self.dim, dim=-1)
        return torch.matmul(torch.matmul(q, k.transpose(-2, -1)), v)


def _stack(make: Callable[[], nn.Module], relu: bool = True) -> nn.Module:
    """``MICRO_DEPTH`` copies of one layer (ReLU between: fused), so the inner ones run as the runtime runs a
    layer inside a model: an integer export quantizes a layer's output only where another layer reads it."""
    layers: list[nn.Module] = []
    for i in range(MICRO_DEPTH):
        layers += [make()] + ([nn.ReLU()] if relu and i < MICRO_DEPTH - 1 else [])
    return nn.Sequential(*layers)


MICRO_DEPTH = 3
#: Per-layer microbenchmarks: one conv, depthwise conv or linear shape ``MICRO_DEPTH`` times in a row (matmul:
#: attention's two), each as a "model" whose input is ``channels x input_size x input_size`` (convs) or
#: ``input_size tokens x width`` (linear, matmul). Timed at a tiny, a small and a large ``input_size``
#: (:data:`MICROBENCHMARK_SIZES`) they show a calibration what whole models cannot: the fixed cost of one operator and of one inference
#: call beside little work, and the depthwise and integer kernels on their own. name -> (builder, input
#: shape of one sample at a size).
MICROBENCHMARKS: dict[str, tuple[Callable[[], nn.Module], Callable[[int], tuple[int, ...]]]] = {
    "conv3x3_c32": (lambda: _stack(lambda: nn.Conv2d(32, 32, 3, padding=1)), lambda s: (32, s, s)),
    "conv3x3_c128": (lambda: _stack(lambda: nn.Conv2d(128, 128, 3, padding=1)), lambda s: (128, s, s)),
    "conv1x1_c128": (lambda: _stack(lambda: nn.Conv2d(128, 128, 1)), lambda s: (128, s, s)),
    "dwconv3x3_c96": (lambda: _stack(lambda: nn.Conv2d(96, 96, 3, padding=1, groups=96)), lambda s: (96, s, s)),
    "dwconv3x3_c384": (lambda: _stack(lambda: nn.Conv2d(384, 384, 3, padding=1, groups=384)),
                       lambda s: (384, s, s)),
    "linear_d192": (lambda: _stack(lambda: nn.Linear(192, 192)), lambda s: (s, 192)),
    "matmul_d64": (lambda: _Attend(64), lambda s: (s, 192)),
}
#: (microbenchmark, input_size) pairs a profiler times by default: each op with almost no work (where the fixed
#: costs of an operator and of an inference call are most of the time), with little and with much work.
MICROBENCHMARK_SIZES: tuple[tuple[str, int], ...] = tuple(
    (name, size) for name in MICROBENCHMARKS
    for size in ((4, 16, 64) if name.startswith(("linear", "matmul")) else (4, 8, 32)))


def list_reference_models() -> list[str]:
    return sorted(REFERENCE_MODELS)


def list_microbenchmarks() -> list[str]:
    return sorted(MICROBENCHMARKS)


def reference_input_shape(name: str, input_size: int) -> tuple[int, ...]:
    """Shape of one input sample of reference model or microbenchmark ``name`` at ``input_size``."""
    if name in MICROBENCHMARKS:
        return tuple(MICROBENCHMARKS[name][1](input_size))
    if name not in REFERENCE_MODELS:
        raise WorkloadError(f"unknown reference model {name!r}; known: {list_reference_models()} and the "
                            f"microbenchmarks {list_microbenchmarks()}")
    return (3, input_size, input_size)


def build_reference_model(name: str, num_classes: int = 1000, device: str | torch.device = "meta") -> nn.Module:
    """A randomly initialised (or, on ``meta``, shape-only) model of that architecture (or microbenchmark:
    ``num_classes`` does not apply to those)."""
    if name in MICROBENCHMARKS:
        with torch.device(device):
            return nn.Sequential(MICROBENCHMARKS[name][0]()).eval()
    if name not in REFERENCE_MODELS:
        raise WorkloadError(f"unknown reference model {name!r}; known: {list_reference_models()} and the "
                            f"microbenchmarks {list_microbenchmarks()}")
    with torch.device(device):
        return REFERENCE_MODELS[name](num_classes).eval()


@functools.lru_cache(maxsize=256)
def reference_workload(name: str, input_size: int = 224, num_classes: int = 1000) -> Workload:
    """The workload of ``name`` on one ``3 x input_size x input_size`` image (a microbenchmark: on one input of
    :func:`reference_input_shape`) (cached)."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise WorkloadError(f"input_size must be an integer >= 1 (pixels per side), got {input_size!r}")
    model = build_reference_model(name, num_classes)
    try:
        return extract_workload(model, torch.empty(1, *reference_input_shape(name, input_size), device="meta"))
    except RuntimeError as exc:  # e.g. a kernel larger than the feature map of a tiny image
        problem = " ".join(str(exc).split())[:200]
        raise WorkloadError(f"reference model {name!r} cannot run on a {input_size}x{input_size} image ({problem}); "
                            "use a larger input size such as 224") from None
