"""Hardware profiles and differentiable cost models (latency, energy, memory). Never imports hwqnn."""

from .errors import CostModelError, PolicyFormatError, ProfileError, WorkloadError
from .precision import LayerPrecision, parse_uniform, resolve_precisions
from .workload import LayerInfo, Workload, extract_workload, layer_info

__all__ = [
    "CostModelError",
    "ProfileError",
    "WorkloadError",
    "PolicyFormatError",
    "LayerPrecision",
    "parse_uniform",
    "resolve_precisions",
    "LayerInfo",
    "Workload",
    "extract_workload",
    "layer_info",
]
