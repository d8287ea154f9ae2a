"""One error hierarchy for hwqnn. The CLI turns any of these into one clean line and exit code 2."""

from cost_models.errors import CostModelError, PolicyFormatError, ProfileError, WorkloadError


class HwqnnError(Exception):
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


class DataError(HwqnnError):
    """A data set could not be found or read."""


class RunDirError(HwqnnError):
    """A run or sweep directory is missing, empty or malformed."""


class ExportError(HwqnnError):
    """A model or policy cannot be exported as asked."""


#: What the CLI catches and prints as one line.
USER_ERRORS = (HwqnnError, CostModelError)

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
    "CostModelError",
    "ProfileError",
    "WorkloadError",
    "PolicyFormatError",
    "USER_ERRORS",
]
