"""A trained-or-not supernet of one space, and the subnets it holds (architecture + per-layer W/A bits)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from ..policy import LayerPolicy, Policy
from .elastic import elastic_layers
from .nets import SpaceNet, active_layer_names, build_supernet, set_active
from .space import Arch, SpaceError, SpaceSpec, get_space


@dataclass(frozen=True)
class Subnet:
    """An architecture and the (weight bits, activation bits) of each of its quantized layers, in forward order."""

    arch: Arch
    bits: tuple[tuple[int, int], ...]

    def layer_bits(self, space: SpaceSpec) -> dict[str, tuple[int, int]]:
        return dict(zip(active_layer_names(None, space, self.arch), self.bits))

    def policy(self, space: SpaceSpec) -> Policy:
        """The hwqnn Policy of this subnet: one explicit entry per layer."""
        return Policy({name: LayerPolicy(space.w_scheme, w, space.a_scheme, a)
                       for name, (w, a) in self.layer_bits(space).items()},
                      {"space": space.name, "architecture": space.encode(self.arch)})

    def mean_bits(self) -> tuple[float, float]:
        return (sum(w for w, _ in self.bits) / len(self.bits), sum(a for _, a in self.bits) / len(self.bits))

    def to_dict(self, space: SpaceSpec) -> dict:
        return {"space": space.name, "architecture": space.encode(self.arch), **self.arch.to_dict(),
                "bits": [list(b) for b in self.bits]}

    @classmethod
    def from_dict(cls, data: dict, space: SpaceSpec) -> Subnet:
        if data.get("space") != space.name:
            raise SpaceError(f"subnet of space '{data.get('space')}' given to space '{space.name}'")
        return cls(space.decode(data["architecture"]), tuple(tuple(int(v) for v in b) for b in data["bits"]))


def uniform_subnet(space: SpaceSpec, arch: Arch, w_bits: int, a_bits: int) -> Subnet:
    n = len(active_layer_names(None, space, arch))
    return Subnet(arch, ((w_bits, a_bits),) * n)


def random_subnet(space: SpaceSpec, rng: random.Random, w_bits: Sequence[int] | None = None,
                  a_bits: Sequence[int] | None = None) -> Subnet:
    arch = space.sample(rng)
    w_bits, a_bits = tuple(w_bits or space.bits), tuple(a_bits or space.bits)
    n = len(active_layer_names(None, space, arch))
    return Subnet(arch, tuple((rng.choice(w_bits), rng.choice(a_bits)) for _ in range(n)))


class Supernet(nn.Module):
    """The elastic network of ``space`` plus :meth:`activate`, which makes it compute one subnet."""

    def __init__(self, space: str | SpaceSpec, num_classes: int = 10):
        super().__init__()
        self.space = get_space(space)
        self.num_classes = num_classes
        self.net: SpaceNet = build_supernet(self.space, num_classes)
        self.active: Subnet | None = None

    def activate(self, subnet: Subnet | None) -> Supernet:
        """Compute ``subnet`` from now on (None: the largest architecture in float)."""
        arch = self.space.largest() if subnet is None else self.space.check(subnet.arch)
        set_active(self.net, self.space, arch)
        bits = subnet.layer_bits(self.space) if subnet is not None else {}
        for name, layer in elastic_layers(self.net):
            layer.bits = bits.get(name)
        self.active = subnet
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
