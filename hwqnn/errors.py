"""One error hierarchy for hwqnn, extending cost_models' root ``UserError``.

The CLI turns any ``UserError`` (hwqnn's or cost_models') into one clean line and exit code 2.
"""

from cost_models import (
    CalibrationError,
    CostModelError,
    PolicyFormatError,
    ProfileError,
    UserError,
    WorkloadError,
)


class HwqnnError(UserError):
    """Base class of every user-facing error raised by hwqnn."""


class SchemeError(HwqnnError):
    """Unknown scheme name, bad bitwidth, or a tensor a scheme cannot quantize."""


class ConversionError(HwqnnError):
    """QAG could not convert a model; the message names the offending op or module."""


class PolicyError(HwqnnError):
    """A policy is malformed or does not match the model's layers."""


class BudgetError(HwqnnError):
    """A budget string is malformed (e.g. 'latency=2parsecs')."""


class BudgetInfeasibleError(HwqnnError):
    """No integer policy meets the budgets; the message states the smallest achievable cost of each."""


class ModelError(HwqnnError):
    """A model cannot be registered or built with the arguments given."""


class UnknownModelError(ModelError):
    """No model is registered under the requested name; the message lists the known names."""


class ConfigError(HwqnnError):
    """A setting (a config field, a sweep argument, a config file entry) has a value that cannot work."""


class DataError(HwqnnError):
    """A data set could not be found or read."""


class RunDirError(HwqnnError):
    """A run or sweep directory is missing, empty or malformed."""


class DeviceError(HwqnnError):
    """The compute device asked for (``--device``) does not exist or is not available here."""


class ExportError(HwqnnError):
    """A model or policy cannot be exported as asked."""


#: What the CLI catches and prints as one line (kept as a name for callers of the 0.1 API).
USER_ERRORS = (UserError,)

__all__ = [
    "HwqnnError",
    "SchemeError",
    "ConversionError",
    "PolicyError",
    "BudgetError",
    "BudgetInfeasibleError",
    "DataError",
    "RunDirError",
    "ExportError",
    "ModelError",
    "UnknownModelError",
    "ConfigError",
    "UserError",
    "CalibrationError",
    "DeviceError",
    "CostModelError",
    "ProfileError",
    "WorkloadError",
    "PolicyFormatError",
    "USER_ERRORS",
]


class DeploymentError(HwqnnError):
    """The target's runtime cannot run what was asked (no native format for any candidate, or a policy
    layer it cannot execute at all)."""
