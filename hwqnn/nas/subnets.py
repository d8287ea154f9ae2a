"""Standalone subnets as model factories: ``hwqnn.nas.subnets:<architecture code>``.

A run directory of an extracted subnet stores this spec as its ``model`` (``metrics.json``), so
``hwqnn.load_run``, ``hwqnn export`` and ``hwqnn report`` rebuild the subnet's float architecture through the
ordinary ``module:factory`` path of the model registry, with no change to them. The code (e.g.
``resnet_cifar__3_2_1_...``) names the space and every depth, width and kernel choice
(:meth:`SpaceSpec.encode`); nothing is executed from the run directory.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .nets import build_subnet
from .space import SpaceError, space_of_code


def model_spec_of(code: str) -> str:
    """The model spec (for ``create_model`` and ``metrics.json``) of an architecture code."""
    return f"{__name__}:{code}"


def factory(code: str) -> Callable[..., nn.Module]:
    space = space_of_code(code)
    arch = space.decode(code)

    def build(num_classes: int = 10) -> nn.Module:
        return build_subnet(space, arch, num_classes)

    build.__name__ = code
    build.input_shape = space.input_shape  # read by the model registry for the example input
    build.default_data = space.default_data
    return build


def __getattr__(name: str) -> Callable[..., nn.Module]:
    if name.startswith("__") or "__" not in name:
        raise AttributeError(name)
    try:
        return factory(name)
    except SpaceError as exc:
        raise AttributeError(f"{name}: {exc}") from None
