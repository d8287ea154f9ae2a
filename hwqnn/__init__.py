"""hwqnn: hardware-aware automatic mixed-precision quantization for PyTorch.

The public API: convert a model (QAG), search or apply a policy for a device, export it, sweep budgets and
report. The ``hwqnn`` command uses nothing else. Errors share one root, ``cost_models.UserError``.
"""

from .data import fixed_sample, load_dataset
from .deployment import place_layer, runs_as
from .distributed import DistributedError, StudyError, default_storage_url
from .errors import (
    BudgetError,
    BudgetInfeasibleError,
    CalibrationError,
    ConfigError,
    ConversionError,
    CostModelError,
    DataError,
    DeviceError,
    ExportError,
    HwqnnError,
    ModelError,
    PolicyError,
    PolicyFormatError,
    ProfileError,
    RunDirError,
    SchemeError,
    UnknownModelError,
    UserError,
    WorkloadError,
)
from .export import export_onnx
from .inputs import ModelAndData, check_device, default_run_dir, load_model_and_data
from .measure import measure_latencies, write_measurements
from .models import create_model, list_models, model_spec, register_model
from .nas import NasConfig, NasResult, list_spaces, nas, read_nas_config
from .nas import get_space as get_nas_space
from .pareto import SweepResult, is_auto_sweep, parse_baselines, parse_sweep, run_sweep
from .policy import LayerPolicy, Policy
from .qag import QuantizedModel, QuantSlot, apply_policy, convert
from .quantizers import Scheme, create_scheme, get_scheme, list_schemes, register_scheme
from .report import build_report, readable_table, run_report
from .run_dir import LoadedRun, load_run, read_checkpoint, read_metrics
from .searching import (
    DEFAULT_BUDGETS,
    Budget,
    Problem,
    SearchConfig,
    SearchResult,
    Strategy,
    StrategyError,
    default_budgets,
    format_cost,
    get_strategy,
    list_strategies,
    parse_budget,
    parse_budgets,
    register_strategy,
    search,
)
from .threads import choose_threads

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # what a target runs natively
    "place_layer", "runs_as",
    "choose_threads",
    # QAG and policies
    "convert", "apply_policy", "QuantizedModel", "QuantSlot", "Policy", "LayerPolicy",
    # schemes
    "Scheme", "register_scheme", "get_scheme", "create_scheme", "list_schemes",
    # search
    "search", "SearchConfig", "SearchResult", "Problem", "Budget", "parse_budget", "parse_budgets",
    "DEFAULT_BUDGETS", "default_budgets", "format_cost", "Strategy", "register_strategy", "get_strategy", "list_strategies",
    # inputs, models, data, run directories
    "load_model_and_data", "ModelAndData", "check_device", "default_run_dir", "create_model", "model_spec",
    "list_models", "register_model", "load_dataset", "fixed_sample", "load_run", "LoadedRun", "read_checkpoint", "read_metrics",
    # measuring this machine
    "measure_latencies", "write_measurements",
    # export, sweeps, reports
    "export_onnx", "run_sweep", "SweepResult", "parse_sweep", "is_auto_sweep", "parse_baselines", "run_report",
    "build_report", "readable_table",
    # scale-out
    "default_storage_url",
    # errors
    "UserError", "HwqnnError", "CostModelError", "ProfileError", "WorkloadError", "PolicyFormatError",
    "CalibrationError", "SchemeError", "ConversionError", "PolicyError", "BudgetError", "BudgetInfeasibleError",
    "DataError", "RunDirError", "ExportError", "ModelError", "UnknownModelError", "ConfigError", "DeviceError",
    "StrategyError", "DistributedError", "StudyError",
    # HQNAS
    "nas", "NasConfig", "NasResult", "list_spaces", "get_nas_space", "read_nas_config",
]
