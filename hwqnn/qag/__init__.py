"""QAG: quantized architecture generation (fx conversion of arbitrary models)."""

from .attention import QuantAttentionCore, QuantCompound, QuantMultiheadAttention
from .convert import QuantizedModel, apply_policy, convert
from .joins import QuantJoin
from .ops import QuantEinsumOp, QuantEmbeddingOp, QuantFunctionOp, QuantModuleOp, QuantOp
from .recurrent import QuantRNN
from .region import QuantRegion
from .slot import QuantSlot, SchemeLogits

__all__ = ["convert", "apply_policy", "QuantizedModel", "QuantOp", "QuantModuleOp", "QuantFunctionOp",
           "QuantEinsumOp", "QuantEmbeddingOp", "QuantCompound", "QuantAttentionCore", "QuantMultiheadAttention",
           "QuantRNN", "QuantJoin", "QuantRegion", "QuantSlot", "SchemeLogits"]
