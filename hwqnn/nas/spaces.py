"""The registered HQNAS spaces. Sizes (``hwqnn nas --list-spaces`` prints them) are exact counts.

- ``tiny-digits`` (8x8 digits): plain conv stages of 16 and 32 channels, 1-2 blocks each, output width
  ratio {0.5, 0.75, 1}: 144 architectures; with {2,3,4,6,8} W/A bits per layer about 10^10.3 subnets.
- ``resnet-cifar`` (32x32): ResNet-20's macro-structure (stages of 16/32/64 channels, 1x1 projection
  where the shape changes), depth {1,2,3} per stage, inner width ratio {0.5, 0.75, 1} per block: the largest
  subnet is ResNet-20 (option-B shortcuts). 59,319 architectures; about 10^35.0 with bits.
- ``mbv2-cifar`` (32x32): MobileNetV2 inverted residuals (stages of 24/32/64 channels, strides 1/2/2),
  depth {1,2,3}, expansion {3,4,6} and depthwise kernel {3,5} per block, a 1x1 head of 128 channels:
  17,173,512 architectures; about 10^48.9 with bits.
"""

from __future__ import annotations

from .space import SpaceSpec, StageSpec, register_space


@register_space
def tiny_digits() -> SpaceSpec:
    return SpaceSpec(
        name="tiny-digits", family="plain", input_shape=(1, 8, 8), default_data="digits", stem_channels=16,
        stages=(StageSpec(16, 1, 2), StageSpec(32, 2, 2)), depths=(1, 2), widths=(0.5, 0.75, 1.0),
        description="plain conv net for 8x8 digits")


@register_space
def resnet_cifar() -> SpaceSpec:
    return SpaceSpec(
        name="resnet-cifar", family="resnet", input_shape=(3, 32, 32), default_data="cifar10", stem_channels=16,
        stages=(StageSpec(16, 1, 3), StageSpec(32, 2, 3), StageSpec(64, 2, 3)), depths=(1, 2, 3),
        widths=(0.5, 0.75, 1.0), description="CIFAR ResNet (largest subnet: ResNet-20)")


@register_space
def mbv2_cifar() -> SpaceSpec:
    return SpaceSpec(
        name="mbv2-cifar", family="mbv2", input_shape=(3, 32, 32), default_data="cifar10", stem_channels=16,
        stages=(StageSpec(24, 1, 3), StageSpec(32, 2, 3), StageSpec(64, 2, 3)), depths=(1, 2, 3),
        widths=(3.0, 4.0, 6.0), kernels=(3, 5), head_channels=128,
        description="MobileNetV2-style inverted residuals for 32x32")
