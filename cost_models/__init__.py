"""Hardware profiles and differentiable cost models (latency, energy, memory). Never imports hwqnn."""

from .calibrate import CalibrationReport, calibrate
from .compound import is_einsum_contraction, plan_einsum
from .cost_model import SCALE_BYTES_PER_CHANNEL, CostModel
from .energy import HOROWITZ_SOURCE, mac_energy
from .errors import (
    CalibrationError,
    CostModelError,
    PolicyFormatError,
    ProfileError,
    UserError,
    WorkloadError,
    YamlFileError,
)
from .estimate import estimate
from .measurements import MEASUREMENTS_CSV
from .metrics import BUDGET_METRICS, COST_KEYS, CostMetric
from .precision import COMPUTE_KINDS, LayerPrecision, parse_uniform, resolve_precisions
from .profile import HardwareProfile
from .profile_loader import list_profiles, load_profile, profile_aliases
from .reference_workloads import (
    MICROBENCHMARK_SIZES,
    MICROBENCHMARKS,
    build_reference_model,
    list_microbenchmarks,
    list_reference_models,
    reference_input_shape,
    reference_workload,
)
from .report import CostReport, policy_layer_names
from .workload import (
    ADD_MATMUL_FUNCTIONS,
    QUANTIZABLE_FUNCTIONS,
    RECURRENT_FUNCTIONS,
    LayerInfo,
    Workload,
    einsum_operands,
    extract_workload,
    float_tensor_bytes,
    layer_info,
    mha_fast_path_disabled,
    op_layer_name,
    record_workload,
)
from .yaml_io import read_yaml_file

__all__ = [
    "UserError",
    "CostModelError",
    "ProfileError",
    "WorkloadError",
    "PolicyFormatError",
    "CalibrationError",
    "YamlFileError",
    "read_yaml_file",
    "LayerPrecision",
    "COMPUTE_KINDS",
    "parse_uniform",
    "resolve_precisions",
    "LayerInfo",
    "ADD_MATMUL_FUNCTIONS",
    "QUANTIZABLE_FUNCTIONS",
    "RECURRENT_FUNCTIONS",
    "einsum_operands",
    "mha_fast_path_disabled",
    "op_layer_name",
    "record_workload",
    "is_einsum_contraction",
    "plan_einsum",
    "Workload",
    "extract_workload",
    "float_tensor_bytes",
    "layer_info",
    "HardwareProfile",
    "load_profile",
    "list_profiles",
    "profile_aliases",
    "CostModel",
    "SCALE_BYTES_PER_CHANNEL",
    "CostReport",
    "policy_layer_names",
    "estimate",
    "HOROWITZ_SOURCE",
    "mac_energy",
    "CostMetric",
    "COST_KEYS",
    "BUDGET_METRICS",
    "MEASUREMENTS_CSV",
    "list_reference_models", "build_reference_model",
    "reference_workload",
    "MICROBENCHMARKS",
    "MICROBENCHMARK_SIZES",
    "list_microbenchmarks",
    "reference_input_shape",
    "calibrate",
    "CalibrationReport",
]
