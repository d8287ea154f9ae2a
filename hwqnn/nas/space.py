"""Declarative HQNAS search spaces: an elastic supernet family described by plain dataclasses, registered by name.

A space fixes the largest network (stem, stages of blocks, head) and the elastic choices: depth per stage,
width (ResNet/plain: the block's inner width ratio; MobileNetV2: the expansion ratio) and kernel size per
block, and the W/A bits of every quantized layer. An :class:`Arch` picks depth, width and kernel; the bits
of each layer are a policy over the subnet's layer names (see :mod:`hwqnn.nas.subnet`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .._registry import Registry
from ..errors import ConfigError

FAMILIES = ("plain", "resnet", "mbv2")


class SpaceError(ConfigError):
    """An unknown space, an architecture outside its space, or a run directory from another space."""


@dataclass(frozen=True)
class StageSpec:
    """One stage: its output channels, its stride (first block) and how many blocks it may hold."""

    channels: int
    stride: int = 1
    max_depth: int = 3


@dataclass(frozen=True)
class SpaceSpec:
    """An elastic supernet family.

    ``depths`` are the allowed block counts per stage (capped by each stage's ``max_depth``); ``widths``
    the width ratios (``plain``: a block's output channels / the stage's, ``resnet``: a block's inner
    channels / the stage's) or expansion ratios (``mbv2``); ``kernels`` the depthwise kernel sizes (mbv2;
    others use 3). ``bits`` are the bitwidths every layer's weight and input activation may take, with
    quantizers ``w_scheme``/``a_scheme`` from the scheme registry (one learned step per bitwidth).
    """

    name: str
    family: str
    input_shape: tuple[int, int, int]
    default_data: str
    stem_channels: int
    stages: tuple[StageSpec, ...]
    depths: tuple[int, ...]
    widths: tuple[float, ...]
    kernels: tuple[int, ...] = (3,)
    head_channels: int = 0  # mbv2: the final 1x1 conv; 0: none
    bits: tuple[int, ...] = (2, 3, 4, 6, 8)
    w_scheme: str = "uniform"
    a_scheme: str = "uniform"
    description: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise SpaceError(f"space '{self.name}': family must be one of {FAMILIES}, got {self.family!r}")
        for attr in ("depths", "widths", "kernels", "bits", "stages"):
            if not getattr(self, attr):
                raise SpaceError(f"space '{self.name}': {attr} must not be empty")
        if any(k % 2 == 0 for k in self.kernels):
            raise SpaceError(f"space '{self.name}': kernel sizes must be odd, got {self.kernels}")

    # --- what one stage allows -------------------------------------------------------------------------
    def stage_depths(self, stage: int) -> tuple[int, ...]:
        return tuple(d for d in self.depths if d <= self.stages[stage].max_depth)

    @property
    def max_blocks(self) -> int:
        return sum(s.max_depth for s in self.stages)

    def layers_per_block(self) -> int:
        return {"plain": 1, "resnet": 2, "mbv2": 3}[self.family]

    # --- its size ------------------------------------------------------------------------------------
    def num_layers(self, arch: Arch) -> int:
        """Quantized layers of a subnet: stem, blocks (+ resnet projections), head conv, classifier."""
        per = self.layers_per_block()
        projections = sum(1 for i, s in enumerate(self.stages) if self.family == "resnet" and self._projects(i))
        return 1 + per * sum(arch.depths) + projections + (1 if self.head_channels else 0) + 1

    def _projects(self, stage: int) -> bool:
        prev = self.stem_channels if stage == 0 else self.stages[stage - 1].channels
        return self.stages[stage].stride != 1 or prev != self.stages[stage].channels

    def size(self) -> tuple[int, int]:
        """``(architectures, architectures x bit assignments)``: exact counts of distinct subnets."""
        per_block = len(self.widths) * len(self.kernels)
        fixed_layers = 1 + (1 if self.head_channels else 0) + 1 + sum(
            1 for i in range(len(self.stages)) if self.family == "resnet" and self._projects(i))
        bit_choices = len(self.bits) ** 2
        archs, joint = 1, bit_choices ** fixed_layers
        for i in range(len(self.stages)):
            archs *= sum(per_block ** d for d in self.stage_depths(i))
            joint *= sum((per_block * bit_choices ** self.layers_per_block()) ** d for d in self.stage_depths(i))
        return archs, joint

    def describe_size(self) -> str:
        archs, joint = self.size()
        return f"{archs} architectures, 10^{math.log10(joint):.1f} (architecture, W/A bits) subnets"

    # --- architectures ---------------------------------------------------------------------------------
    def largest(self) -> Arch:
        return self._uniform(max, max, max)

    def smallest(self) -> Arch:
        return self._uniform(min, min, min)

    def _uniform(self, pick_d: Callable, pick_w: Callable, pick_k: Callable) -> Arch:
        depths = tuple(pick_d(self.stage_depths(i)) for i in range(len(self.stages)))
        widths = tuple(tuple(pick_w(self.widths) for _ in range(s.max_depth)) for s in self.stages)
        kernels = tuple(tuple(pick_k(self.kernels) for _ in range(s.max_depth)) for s in self.stages)
        return Arch(depths, widths, kernels).canonical(self)

    def sample(self, rng: random.Random) -> Arch:
        depths = tuple(rng.choice(self.stage_depths(i)) for i in range(len(self.stages)))
        widths = tuple(tuple(rng.choice(self.widths) for _ in range(s.max_depth)) for s in self.stages)
        kernels = tuple(tuple(rng.choice(self.kernels) for _ in range(s.max_depth)) for s in self.stages)
        return Arch(depths, widths, kernels).canonical(self)

    def check(self, arch: Arch) -> Arch:
        """``arch`` in canonical form, or SpaceError naming the first value outside this space."""
        if len(arch.depths) != len(self.stages):
            raise SpaceError(f"architecture has {len(arch.depths)} stages; space '{self.name}' has {len(self.stages)}")
        for i, d in enumerate(arch.depths):
            if d not in self.stage_depths(i):
                raise SpaceError(f"stage {i} depth {d} is not in space '{self.name}' (allowed {self.stage_depths(i)})")
            for b in range(d):
                if arch.widths[i][b] not in self.widths:
                    raise SpaceError(f"stage {i} block {b} width {arch.widths[i][b]} is not in {self.widths}")
                if arch.kernels[i][b] not in self.kernels:
                    raise SpaceError(f"stage {i} block {b} kernel {arch.kernels[i][b]} is not in {self.kernels}")
        return arch.canonical(self)

    # --- names: an architecture as a Python identifier (how a run directory rebuilds its subnet) --------
    @property
    def ident(self) -> str:
        return self.name.replace("-", "_")

    def encode(self, arch: Arch) -> str:
        arch = self.check(arch)
        genes = [str(d) for d in arch.depths]
        for i, d in enumerate(arch.depths):
            for b in range(d):
                genes.append(str(self.widths.index(arch.widths[i][b])))
                genes.append(str(self.kernels.index(arch.kernels[i][b])))
        return f"{self.ident}__{'_'.join(genes)}"

    def decode(self, code: str) -> Arch:
        prefix, _, body = code.partition("__")
        if prefix != self.ident or not body:
            raise SpaceError(f"{code!r} is not an architecture of space '{self.name}'")
        try:
            genes = [int(g) for g in body.split("_")]
            n = len(self.stages)
            depths, rest = tuple(genes[:n]), genes[n:]
            widths, kernels = [], []
            for i, s in enumerate(self.stages):
                w, k = [], []
                for _ in range(depths[i]):
                    w.append(self.widths[rest.pop(0)])
                    k.append(self.kernels[rest.pop(0)])
                widths.append(tuple(w) + (self.widths[0],) * (s.max_depth - depths[i]))
                kernels.append(tuple(k) + (self.kernels[0],) * (s.max_depth - depths[i]))
            if rest:
                raise ValueError("trailing genes")
        except (ValueError, IndexError):
            raise SpaceError(f"{code!r} is not a valid architecture code of space '{self.name}'") from None
        return self.check(Arch(depths, tuple(widths), tuple(kernels)))


@dataclass(frozen=True)
class Arch:
    """Depth per stage, and width and kernel per block slot (slots past a stage's depth are unused)."""

    depths: tuple[int, ...]
    widths: tuple[tuple[float, ...], ...]
    kernels: tuple[tuple[int, ...], ...] = field(default=())

    def canonical(self, space: SpaceSpec) -> Arch:
        """Unused slots set to the first choice, so equal subnets compare and hash equal."""
        widths, kernels = [], []
        for i, s in enumerate(space.stages):
            d = self.depths[i]
            w = tuple(self.widths[i][:d]) + (space.widths[0],) * (s.max_depth - d)
            k = tuple(self.kernels[i][:d]) if self.kernels else (space.kernels[0],) * d
            widths.append(w)
            kernels.append(k + (space.kernels[0],) * (s.max_depth - d))
        return Arch(tuple(int(d) for d in self.depths), tuple(widths), tuple(kernels))

    def to_dict(self) -> dict:
        return {"depths": list(self.depths), "widths": [list(w) for w in self.widths],
                "kernels": [list(k) for k in self.kernels]}

    @classmethod
    def from_dict(cls, data: dict) -> Arch:
        return cls(tuple(data["depths"]), tuple(tuple(w) for w in data["widths"]),
                   tuple(tuple(k) for k in data["kernels"]))


_SPACES: Registry[Callable[[], SpaceSpec]] = Registry("search space", SpaceError)


def register_space(fn: Callable[[], SpaceSpec]) -> Callable[[], SpaceSpec]:
    """Decorator: register a function returning a :class:`SpaceSpec` under that spec's name."""
    _SPACES.register(fn().name, fn)
    return fn


def get_space(name: str | SpaceSpec) -> SpaceSpec:
    """The space registered under ``name``; SpaceError listing the known spaces otherwise."""
    if isinstance(name, SpaceSpec):
        return name
    return _SPACES.get(name)()


def list_spaces(filter: str = "*") -> list[str]:
    return _SPACES.list(filter)


def space_of_code(code: str) -> SpaceSpec:
    """The registered space whose identifier prefixes an architecture code."""
    prefix = code.partition("__")[0]
    for name in _SPACES:
        if name.replace("-", "_") == prefix:
            return get_space(name)
    raise SpaceError(f"{code!r} names no registered search space (known: {', '.join(_SPACES)})")
