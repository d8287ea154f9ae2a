"""QAG: quantized architecture generation (fx conversion of arbitrary models)."""

from .convert import QuantizedModel, apply_policy, convert
from .ops import QuantFunctionOp, QuantModuleOp, QuantOp
from .slot import QuantSlot, SchemeLogits

__all__ = ["convert", "apply_policy", "QuantizedModel", "QuantOp", "QuantModuleOp", "QuantFunctionOp",
           "QuantSlot", "SchemeLogits"]
