"""hwqnn: hardware-aware automatic mixed-precision quantization for PyTorch.

The public API is small: convert a model (QAG), apply or search a policy for a device, export it.
"""

from .errors import (
    BudgetError,
    BudgetInfeasibleError,
    ConversionError,
    DataError,
    ExportError,
    HwqnnError,
    PolicyError,
    RunDirError,
    SchemeError,
)
from .export import export_onnx
from .policy import LayerPolicy, Policy
from .qag import QuantizedModel, QuantSlot, apply_policy, convert
from .quantizers import Scheme, create_scheme, get_scheme, list_schemes, register_scheme
from .searching import SearchConfig, SearchResult, search

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "convert",
    "apply_policy",
    "search",
    "export_onnx",
    "SearchConfig",
    "SearchResult",
    "QuantizedModel",
    "QuantSlot",
    "Policy",
    "LayerPolicy",
    "Scheme",
    "register_scheme",
    "get_scheme",
    "create_scheme",
    "list_schemes",
    "HwqnnError",
    "SchemeError",
    "ConversionError",
    "PolicyError",
    "BudgetError",
    "BudgetInfeasibleError",
    "DataError",
    "RunDirError",
    "ExportError",
]
