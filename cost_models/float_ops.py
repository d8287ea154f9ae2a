"""Ops that stay float: which torch functions they are, how each is priced, and at what precision.

Every call that computes a new tensor from activations and is not a GEMM is one :class:`FloatOpInfo`,
priced one of three ways (its ``pricing``):

* ``"kernel"``: a known float op (softmax, norms, pooling, ``mean``/``sum``, elementwise arithmetic and
  comparisons, concat, pad, layout copies, activations that do not fuse, a BatchNorm that cannot be
  folded): a memory-bound kernel that reads its inputs and writes its output, plus one layer overhead.
* ``"fused"``: free, because it runs inside the kernel that produced its input. A BatchNorm whose input
  is a conv/linear/matmul output is folded into that layer's weights and bias at deployment; ReLU and
  ReLU6 (``relu``, ``hardtanh``) run as the epilogue of whatever kernel produced their input (TFLite's
  ``fused_activation_function`` on conv, FC, add, mul, pooling and concat; TensorRT/cuDNN epilogues).
  GELU, SiLU, sigmoid, tanh, hardswish... are not assumed to fuse: they are kernels.
* ``"unpriced"``: a function not in these tables: estimated like a kernel at 32 bits and flagged, so
  the report says so (see ``CostReport.warnings``) instead of silently leaving it out.

Not recorded at all: views and identities (an output that aliases an input: ``reshape`` of a contiguous
tensor, eval-mode dropout), property reads, and constants (every tensor input a parameter, a buffer or
another constant: folded at deployment).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

PRICINGS = ("kernel", "fused", "unpriced")
#: Ops whose accuracy needs 32-bit float even on a device with native fp16 (variance sums overflow fp16;
#: TensorRT keeps normalization layers in FP32 for this reason). Unpriced ops are also costed at 32 bits.
FP32_OP_TYPES = frozenset({"layer_norm", "group_norm", "rms_norm", "instance_norm"})
#: Folded into the conv/linear/matmul that produced its input.
FOLDED_INTO_GEMM = frozenset({"batch_norm"})
#: Run as the epilogue of the kernel (GEMM or float kernel) that produced their input.
FUSED_ACTIVATIONS = frozenset({"relu", "hardtanh"})
#: Ops whose inputs hwqnn quantizes (its "joins", ``hwqnn.qag.joins``) when a conv feeds them, through
#: ``CONV_PASS_OP_TYPES``: the conv before them then runs as an integer kernel, and so do they.
JOINED_OP_TYPES = frozenset({"add", "cat", "mean", "avg_pool", "adaptive_avg_pool"})
CONV_PASS_OP_TYPES = frozenset({"relu", "hardtanh", "batch_norm", "max_pool"})
#: The integer width of a joined op.
JOIN_BITS = 8
#: May return a view or its input unchanged; only a real copy is recorded.
COPY_OP_TYPE = "copy"


def _table(op_type: str, *functions) -> dict[object, str]:
    """``function -> op_type`` for the functions this torch version has (a missing one is None)."""
    return {f: op_type for f in functions if f is not None}


def _methods(name: str) -> tuple:
    """``torch.<name>``, ``Tensor.<name>``, its in-place form and its operator forms, where they exist."""
    holders = ((torch, name), (Tensor, name), (Tensor, f"{name}_"), (Tensor, f"__{name}__"),
               (Tensor, f"__r{name}__"), (Tensor, f"__i{name}__"))
    return tuple(getattr(holder, attr, None) for holder, attr in holders)


_ARITHMETIC = {
    "add": ("add",), "sub": ("sub", "subtract", "rsub"), "mul": ("mul", "multiply"),
    "div": ("div", "divide", "true_divide", "truediv"),
    "compare": ("gt", "lt", "ge", "le", "eq", "ne", "greater", "less"),
}

#: Known float ops: called function -> op type (the row's ``op_type``; a row is named ``<owner>.<op type>``).
FLOAT_OP_FUNCTIONS: dict[object, str] = {
    **_table("softmax", F.softmax, torch.softmax, Tensor.softmax),
    **_table("log_softmax", F.log_softmax, torch.log_softmax, Tensor.log_softmax),
    **_table("layer_norm", F.layer_norm, torch.layer_norm),
    **_table("group_norm", F.group_norm, torch.group_norm),
    **_table("rms_norm", getattr(F, "rms_norm", None)),
    **_table("instance_norm", F.instance_norm),
    **_table("batch_norm", F.batch_norm, torch.batch_norm),
    **_table("relu", F.relu, F.relu_, torch.relu, torch.relu_, Tensor.relu, Tensor.relu_),
    **_table("hardtanh", F.hardtanh, F.hardtanh_, F.relu6),
    **_table("leaky_relu", F.leaky_relu),
    **_table("gelu", F.gelu),
    **_table("silu", F.silu),
    **_table("sigmoid", F.sigmoid, torch.sigmoid, Tensor.sigmoid),
    **_table("tanh", F.tanh, torch.tanh, Tensor.tanh),
    **_table("hardswish", F.hardswish),
    **_table("hardsigmoid", F.hardsigmoid),
    **_table("elu", F.elu),
    **_table("mish", F.mish),
    **_table("softplus", F.softplus),
    **_table("max_pool", F.max_pool1d, F.max_pool2d, F.max_pool3d),
    **_table("avg_pool", F.avg_pool1d, F.avg_pool2d, F.avg_pool3d),
    **_table("adaptive_max_pool", F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d),
    **_table("adaptive_avg_pool", F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d),
    **_table("mean", torch.mean, Tensor.mean),
    **_table("sum", torch.sum, Tensor.sum),
    **{f: op for op, names in _ARITHMETIC.items() for name in names for f in _methods(name) if f is not None},
    **_table("cat", torch.cat, getattr(torch, "concat", None), getattr(torch, "concatenate", None), torch.stack),
    **_table("pad", F.pad),
    **_table(COPY_OP_TYPE, torch.reshape, Tensor.reshape, torch.flatten, Tensor.flatten, Tensor.contiguous,
             torch.clone, Tensor.clone, Tensor.to, Tensor.float, Tensor.half, Tensor.repeat,
             torch.repeat_interleave, Tensor.repeat_interleave),
}

#: Calls that never cost anything at inference: dropout is the identity, detach only drops autograd.
FREE_FUNCTIONS = frozenset({F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout,
                            F.feature_alpha_dropout, torch.dropout, Tensor.detach, torch.detach})


@dataclass(frozen=True)
class FloatOpInfo:
    """An op that stays float: per-sample elements read (every tensor input) and written.

    ``pricing`` is ``"kernel"``, ``"fused"`` (cost 0, see the module doc) or ``"unpriced"`` (estimated as
    a 32-bit kernel and flagged). Its costs are charged to the quantizable row ``after_layer`` (the last
    one run before it; None: before any, charged to the first row), which is where the search sees them.
    ``int_bits`` is set for an op whose inputs hwqnn quantizes (a residual add, an average pool or a mean
    that a conv feeds, see ``JOINED_OP_TYPES``): it runs as an integer kernel moving elements that wide.
    """

    name: str
    op_type: str
    in_elems: float
    out_elems: float
    after_layer: str | None = None
    pricing: str = "kernel"
    int_bits: int | None = None

    @property
    def costed(self) -> bool:
        return self.pricing != "fused"


def float_op_bits(op_type: str, pricing: str, device_float_bits: int, int_bits: int | None = None) -> int:
    """The precision a float op runs at on a device whose runtime runs float layers at ``device_float_bits``.

    The device's float width (fp16 on TensorRT builds with FP16 enabled), except normalization (see
    FP32_OP_TYPES) and unpriced ops (an unknown op is assumed to need fp32), which run at 32 bits. An op
    whose inputs are quantized (``int_bits``) moves integers of that width.
    """
    if int_bits is not None and pricing == "kernel":
        return int(int_bits)
    if pricing == "kernel" and op_type not in FP32_OP_TYPES:
        return min(int(device_float_bits), 32)
    return 32


def function_name(func) -> str:
    """A readable op type for a function outside the tables (``__getitem__`` -> ``getitem``)."""
    return str(getattr(func, "__name__", None) or type(func).__name__).strip("_") or "op"


def is_in_place(func) -> bool:
    """``add_``, ``__iadd__``: the output is the input, written over (a real computation)."""
    name = getattr(func, "__name__", "") or ""
    if name.startswith("__"):  # __iadd__ is in place, __iter__ and __invert__ are not
        return name.startswith("__i") and name.endswith("__") and hasattr(Tensor, f"__{name[3:]}")
    return name.endswith("_")
