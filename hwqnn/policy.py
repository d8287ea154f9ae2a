"""Policies: per layer, the scheme and bits of the weight and of the input activation (or float).

A policy is an ordered map from a layer name, a ``re:<regex>`` pattern, or ``default`` to a
:class:`LayerPolicy`. Lookup precedence: exact name, then the first matching pattern in order, then
``default``. It round-trips through YAML and applies to a fresh copy of the float model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cost_models import LayerPrecision, YamlFileError, parse_uniform, read_yaml_file

from ._io import atomic_write_text
from .errors import PolicyError, SchemeError
from .quantizers import get_scheme

POLICY_VERSION = 1
FLOAT = "float"
MAX_POLICY_BYTES = 4 << 20  # ~40k layers written out one by one; a larger file is not a policy


@dataclass(frozen=True)
class LayerPolicy:
    """One layer's choice. ``w_scheme``/``a_scheme`` may be ``"float"`` (then bits are 32)."""

    w_scheme: str
    w_bits: int
    a_scheme: str
    a_bits: int

    def __post_init__(self) -> None:
        for side in ("w", "a"):
            scheme, bits = getattr(self, f"{side}_scheme"), getattr(self, f"{side}_bits")
            if scheme == FLOAT:
                if bits not in (16, 32):
                    raise PolicyError(f"{side}_scheme 'float' needs {side}_bits 16 or 32, got {bits!r}")
                continue
            try:
                get_scheme(scheme)
            except SchemeError as exc:
                raise PolicyError(f"{side}_scheme: {exc}") from None
            if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
                raise PolicyError(f"{side}_bits must be an integer in [1, 16] for scheme '{scheme}', got {bits!r}")

    @property
    def is_float(self) -> bool:
        return self.w_scheme == FLOAT and self.a_scheme == FLOAT

    def to_precision(self, deployment=None, op_type: str | None = None) -> LayerPrecision:
        """Hardware view of this layer: from each scheme's declared facts, or, given a profile's
        ``deployment`` spec, as that device's runtime really runs it for an ``op_type`` layer (see
        :mod:`hwqnn.deployment`)."""
        from .deployment import place_layer

        return place_layer(self, deployment, op_type).precision

    def to_dict(self) -> dict:
        return {"w_scheme": self.w_scheme, "w_bits": self.w_bits, "a_scheme": self.a_scheme, "a_bits": self.a_bits}

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "layer") -> LayerPolicy:
        if not isinstance(data, Mapping):
            raise PolicyError(f"{where}: expected a mapping with w_scheme, w_bits, a_scheme, a_bits, got {data!r}")
        keys = {"w_scheme", "w_bits", "a_scheme", "a_bits"}
        missing, extra = keys - set(data), set(data) - keys
        if missing or extra:
            raise PolicyError(f"{where}: missing fields {sorted(missing)}, unknown fields {sorted(extra)}")
        try:
            return cls(str(data["w_scheme"]), data["w_bits"], str(data["a_scheme"]), data["a_bits"])
        except PolicyError as exc:
            raise PolicyError(f"{where}: {exc}") from None


FLOAT_LAYER = LayerPolicy(FLOAT, 32, FLOAT, 32)


@dataclass
class Policy:
    """Ordered map of layer name / ``re:`` pattern / ``default`` to a LayerPolicy, plus free metadata."""

    layers: dict[str, LayerPolicy] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, value in self.layers.items():
            if not isinstance(value, LayerPolicy):
                raise PolicyError(f"policy entry '{key}' must be a LayerPolicy, got {type(value).__name__}")
            if key.startswith("re:"):
                try:
                    re.compile(key[3:])
                except re.error as exc:
                    raise PolicyError(f"policy pattern '{key}' is not a valid regex: {exc}") from None

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def uniform(cls, spec: str | LayerPolicy, scheme: str = "uniform", a_scheme: str | None = None) -> Policy:
        """A one-entry policy for every layer: ``"w4a8"``, ``"fp32"`` or a LayerPolicy."""
        if isinstance(spec, LayerPolicy):
            return cls({"default": spec})
        prec = parse_uniform(spec)
        if prec.w_kind == "float":
            return cls({"default": LayerPolicy(FLOAT, prec.w_bits, FLOAT, prec.a_bits)}, {"uniform": spec})
        return cls({"default": LayerPolicy(scheme, prec.w_bits, a_scheme or scheme, prec.a_bits)},
                   {"uniform": spec})

    # --- lookup --------------------------------------------------------------------------------
    def resolve(self, layer_name: str) -> LayerPolicy:
        if layer_name in self.layers:
            return self.layers[layer_name]
        for key, value in self.layers.items():
            if key.startswith("re:") and re.fullmatch(key[3:], layer_name):
                return value
        if "default" in self.layers:
            return self.layers["default"]
        raise PolicyError(f"policy has no entry for layer '{layer_name}' and no 'default'")

    def check_layers(self, layer_names: Sequence[str]) -> None:
        """Every exact (non-pattern) key must name a real layer, and every layer must resolve."""
        names = set(layer_names)
        unknown = [k for k in self.layers if k != "default" and not k.startswith("re:") and k not in names]
        if unknown:
            raise PolicyError(
                f"policy names layers the model does not have: {unknown}; the model's layers are {list(layer_names)}")
        for name in layer_names:
            self.resolve(name)

    def expand(self, layer_names: Iterable[str]) -> Policy:
        """The same policy with one explicit entry per layer (patterns and default resolved)."""
        names = list(layer_names)
        self.check_layers(names)
        return Policy({n: self.resolve(n) for n in names}, dict(self.meta))

    def to_precisions(self, layer_names: Sequence[str], profile=None,
                      op_types: Sequence[str] | None = None) -> dict[str, LayerPrecision]:
        """The hardware view consumed by ``cost_models`` (see ``resolve_precisions``); with a ``profile``,
        each layer priced as that device's runtime runs it (for its workload ``op_types``, when given)."""
        self.check_layers(layer_names)
        spec = getattr(profile, "deployment", None)
        ops = list(op_types) if op_types is not None else [None] * len(layer_names)
        return {n: self.resolve(n).to_precision(spec, op) for n, op in zip(layer_names, ops)}

    # --- I/O -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"version": POLICY_VERSION, "meta": dict(self.meta),
                "layers": {k: v.to_dict() for k, v in self.layers.items()}}

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "policy") -> Policy:
        if not isinstance(data, Mapping) or "layers" not in data:
            raise PolicyError(f"{source}: expected a mapping with a 'layers' key")
        version = data.get("version", POLICY_VERSION)
        if version != POLICY_VERSION:
            raise PolicyError(f"{source}: policy version {version!r} is not supported (expected {POLICY_VERSION})")
        layers = data["layers"]
        if not isinstance(layers, Mapping) or not layers:
            raise PolicyError(f"{source}: 'layers' must be a non-empty mapping")
        meta = data.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise PolicyError(f"{source}: 'meta' must be a mapping, got {type(meta).__name__}")
        return cls({str(k): LayerPolicy.from_dict(v, f"{source}: layer '{k}'") for k, v in layers.items()}, dict(meta))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | os.PathLike) -> Path:
        """Write YAML atomically (temporary file, then ``os.replace``)."""
        return atomic_write_text(path, self.to_yaml())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Policy:
        """Read a policy file with the strict YAML reader (UTF-8, no aliases, no duplicate keys, size-capped)."""
        path = Path(path)
        try:
            exists = path.is_file()
        except (OSError, ValueError):  # a name too long for this system
            exists = False
        if not exists:
            raise PolicyError(f"policy file {path} does not exist")
        try:
            data = read_yaml_file(path, max_bytes=MAX_POLICY_BYTES)
        except YamlFileError as exc:
            raise PolicyError(f"policy file {path}: {exc.problem}") from None
        return cls.from_dict(data, source=str(path))

    def summary_rows(self, layer_names: Sequence[str]) -> list[dict]:
        return [{"layer": n, **self.resolve(n).to_dict()} for n in layer_names]
