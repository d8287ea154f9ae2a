"""What the search measures of one subnet: its accuracy inherited from the supernet (after BN recalibration,
on data held out from training) and its costs on the target (cost_models on the subnet's real workload)."""

from __future__ import annotations

import torch
from torch import Tensor

import cost_models
from cost_models import COST_KEYS, CostModel, HardwareProfile

from ..data import fixed_indices
from ..deployment import deployable_bits
from ..errors import HwqnnError
from .elastic import recalibrate_bn
from .nets import build_subnet
from .space import Arch, SpaceSpec
from .supernet import Subnet, Supernet


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    model.eval()
    correct = sum(int((model(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum())
                  for i in range(0, len(images), batch_size))
    return correct / max(len(images), 1)


def calibration_batches(images: Tensor, batches: int, batch_size: int, seed: int = 0) -> list[Tensor]:
    """``batches`` batches of a fixed random sample of the training images (the same on every call, so every
    evaluation is repeatable; random, because a class-sorted split's first images are all one class)."""
    sample = images[fixed_indices(len(images), batches * batch_size, seed)]
    return [sample[i:i + batch_size] for i in range(0, len(sample), batch_size)]


class AccuracyEvaluator:
    """Inherited accuracy of subnets of one supernet, memoised per subnet."""

    def __init__(self, supernet: Supernet, calib: list[Tensor], images: Tensor, labels: Tensor,
                 known: dict[Subnet, float] | None = None):
        self.supernet, self.calib, self.images, self.labels = supernet, calib, images, labels
        self.cache: dict[Subnet, float] = dict(known or {})
        self.reused, self.evaluated = 0, 0

    def __call__(self, subnet: Subnet) -> float:
        if subnet in self.cache:
            self.reused += 1
        else:
            self.supernet.activate(subnet)
            recalibrate_bn(self.supernet, self.calib)
            self.cache[subnet] = accuracy(self.supernet, self.images, self.labels)
            self.evaluated += 1
        return self.cache[subnet]


class SubnetCoster:
    """Costs of subnets on one target: the workload of each architecture is extracted once, then every bit
    assignment is priced by the target's cost model."""

    def __init__(self, space: SpaceSpec, profile: HardwareProfile, num_classes: int, batch_size: int = 1):
        self.space, self.profile, self.num_classes, self.batch_size = space, profile, num_classes, batch_size
        self._models: dict[Arch, CostModel] = {}

    def cost_model(self, arch: Arch) -> CostModel:
        if arch not in self._models:
            net = build_subnet(self.space, arch, self.num_classes).eval()
            workload = cost_models.extract_workload(net, torch.zeros(1, *self.space.input_shape))
            self._models[arch] = CostModel(workload, self.profile, batch_size=self.batch_size)
        return self._models[arch]

    def report(self, subnet: Subnet):
        model = self.cost_model(subnet.arch)
        policy = subnet.policy(self.space)
        return model.evaluate(cost_models.resolve_precisions(policy, list(model.workload.names), self.profile))

    def __call__(self, subnet: Subnet) -> dict[str, float]:
        report = self.report(subnet)
        return {key: float(getattr(report, key)) for key in COST_KEYS}


def searchable_bits(space: SpaceSpec, profile: HardwareProfile, all_bits: bool = False) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (weight, activation) bits of the space that the target runs natively (all of them with ``all_bits``)."""
    if all_bits:
        return space.bits, space.bits
    span = (min(space.bits), max(space.bits))
    spec = profile.deployment
    w = tuple(b for b in deployable_bits(space.w_scheme, "weight", span, spec) if b in space.bits)
    a = tuple(b for b in deployable_bits(space.a_scheme, "activation", span, spec) if b in space.bits)
    if not w or not a:
        raise HwqnnError(f"target '{profile.name}' runs none of space '{space.name}' bits {list(space.bits)} natively "
                         f"with schemes {space.w_scheme}/{space.a_scheme} (weights: {list(w)}, activations: {list(a)}); "
                         f"pass --all-bits to search them anyway")
    return w, a


