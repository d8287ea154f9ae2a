"""The recorder behind :func:`cost_models.workload.extract_workload`: a ``TorchFunctionMode`` with one
handler per GEMM-like function (plain GEMMs, addmm/baddbmm, einsum, embedding, attention, recurrent
layers), each turning a call into workload rows named after the innermost running module. Every other
call that computes a tensor from activations is a float op, priced as :mod:`cost_models.float_ops` says.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from . import compound
from .errors import WorkloadError
from .float_ops import (
    CONV_PASS_OP_TYPES,
    COPY_OP_TYPE,
    FLOAT_OP_FUNCTIONS,
    FOLDED_INTO_GEMM,
    FREE_FUNCTIONS,
    FUSED_ACTIVATIONS,
    JOIN_BITS,
    JOINED_OP_TYPES,
    FloatOpInfo,
    function_name,
    is_in_place,
)
from .workload import (
    ADD_MATMUL_FUNCTIONS,
    QUANTIZABLE_FUNCTIONS,
    RECURRENT_FUNCTIONS,
    LayerInfo,
    einsum_operands,
    gemm_row,
    layer_info,
    op_layer_name,
)


class TensorMarks:
    """A set of live tensors by identity (an id alone could be reused by a later tensor)."""

    def __init__(self, tensors: Iterable[Tensor] = ()):
        self._refs: dict[int, weakref.ref] = {}
        self.add(tensors)

    def add(self, tensors: Iterable[Tensor]) -> None:
        for t in tensors:
            self._refs[id(t)] = weakref.ref(t)

    def __contains__(self, t: Tensor) -> bool:
        ref = self._refs.get(id(t))
        return ref is not None and ref() is t


def tensors_of(value) -> list[Tensor]:
    """The tensors in a call's arguments or output (nested tuples, lists and dict values)."""
    if torch.is_tensor(value):
        return [value]
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (tuple, list)):
        return []
    return [t for item in value for t in tensors_of(item)]


def _aliases(out: Tensor, inputs: Sequence[Tensor]) -> bool:
    """True when ``out`` is an input or a view of one's storage (no data computed)."""
    base = out._base if out._is_view() else out
    return any(out is t or base is (t._base if t._is_view() else t) for t in inputs)


class Recorder(TorchFunctionMode):
    """Records every quantizable op call (one row per GEMM) and every float op, named after the innermost
    module running it. GEMM handlers are found by the called function (see ``_HANDLERS``); any other call
    goes to :func:`_record_float_call`.

    It follows three sets of tensors: constants (parameters, buffers, and what is computed from them
    only), GEMM outputs (a BatchNorm on one is folded) and kernel outputs (a ReLU on one is fused).
    """

    def __init__(self, batch_size: int, module_stack: list[tuple[str, nn.Module]], param_ids: set[int],
                 constants: Iterable[Tensor] = ()):
        super().__init__()
        self.batch_size = batch_size
        self.module_stack = module_stack
        self.param_ids = param_ids
        self.rows: list[LayerInfo] = []
        self.float_ops: list[FloatOpInfo] = []
        self.constants = TensorMarks(constants)
        self.gemm_outputs = TensorMarks()
        self.kernel_outputs = TensorMarks()
        self.conv_fed = TensorMarks()  # a conv's output, through CONV_PASS ops and joined ops
        self._counters: dict[tuple[str, str], int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            handler = _HANDLERS.get(func)
        except TypeError:  # an unhashable callable
            return out
        if self.module_stack:
            try:
                if handler is None:
                    _record_float_call(self, func, args, kwargs, out)
                else:
                    handler(self, func, args, kwargs, out)
                    outputs = tensors_of(out)
                    self.gemm_outputs.add(outputs)
                    self.kernel_outputs.add(outputs)
            except WorkloadError:
                raise
            except Exception as exc:
                name = getattr(func, "__name__", str(func))
                raise WorkloadError(f"cannot describe the {name} call in '{self.owner[0] or '<root>'}' as workload "
                                    f"rows: {type(exc).__name__}: {exc}") from exc
        return out

    # --- helpers for the handlers ---------------------------------------------------------------
    @property
    def owner(self) -> tuple[str, nn.Module]:
        return self.module_stack[-1]

    def name(self, op_type: str, module: nn.Module | None = None) -> str:
        return op_layer_name(self.owner[0], module, op_type, self._counters)

    def add(self, name: str, op_type: str, x: Tensor, w: Tensor, out: Tensor, **extra) -> None:
        self.rows.append(layer_info(name, op_type, x, w, out, batch_size=self.batch_size,
                                    weight_is_param=id(w) in self.param_ids, **extra))

    def add_gemms(self, base: str, calls: Sequence[compound.GemmCall]) -> None:
        for call in calls:
            self.rows.append(gemm_row(f"{base}.{call.suffix}" if base else call.suffix, call, self.batch_size))

    def add_float(self, op_type: str, in_elems: int, out_elems: int, pricing: str = "kernel",
                  int_bits: int | None = None) -> None:
        per_sample = float(self.batch_size)
        self.float_ops.append(FloatOpInfo(self.name(op_type), op_type, in_elems / per_sample, out_elems / per_sample,
                                          self.rows[-1].name if self.rows else None, pricing, int_bits))


def _record_gemm(rec: Recorder, func, args, kwargs, out) -> None:
    op_type = QUANTIZABLE_FUNCTIONS[func]
    x = args[0] if args else kwargs.get("input")
    w = args[1] if len(args) > 1 else kwargs.get("weight", kwargs.get("other", kwargs.get("mat2")))
    if not (torch.is_tensor(x) and torch.is_tensor(w) and torch.is_tensor(out)):
        return
    stride = args[3] if op_type.startswith("conv") and len(args) > 3 else kwargs.get("stride", 1)
    # conv(input, weight, bias, stride, padding, dilation, groups);
    # conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation)
    groups = (args[6] if len(args) > 6 else kwargs.get("groups", 1)) if op_type.startswith("conv") else 1
    rec.add(rec.name(op_type, rec.owner[1]), op_type, x, w, out, stride=stride, groups=groups)
    if op_type.startswith("conv"):
        rec.conv_fed.add(tensors_of(out))


def _record_add_matmul(rec: Recorder, func, args, kwargs, out) -> None:
    operands = list(args[1:3]) + [kwargs[k] for k in ("mat1", "mat2", "batch1", "batch2") if k in kwargs]
    if len(operands) == 2 and all(torch.is_tensor(t) for t in operands):
        rec.add(rec.name("matmul"), "matmul", operands[0], operands[1], out)


def _record_einsum(rec: Recorder, func, args, kwargs, out) -> None:
    equation, operands = einsum_operands(args, kwargs)
    if compound.is_einsum_contraction(equation, operands):
        plan = compound.plan_einsum(equation, operands[0].shape, operands[1].shape)
        call = compound.einsum_gemm(plan, id(operands[1]) in rec.param_ids)
        rec.rows.append(gemm_row(rec.name("matmul"), call, rec.batch_size))


def _record_embedding(rec: Recorder, func, args, kwargs, out) -> None:
    x = args[0] if args else kwargs.get("input")
    w = args[1] if len(args) > 1 else kwargs.get("weight")
    rec.add(rec.name("embedding", rec.owner[1]), "embedding", x, w, out)


_MHA_SIGNATURE = inspect.signature(F.multi_head_attention_forward)
_SDPA_PARAMETERS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


def _record_mha(rec: Recorder, func, args, kwargs, out) -> None:
    a = _MHA_SIGNATURE.bind(*args, **kwargs).arguments
    q, k, v = a["query"], a["key"], a["value"]
    batched = q.dim() == 3
    L, N = q.shape[0], (q.shape[1] if batched else 1)
    S = k.shape[0]
    add_kv = int(a.get("bias_k") is not None) + int(bool(a.get("add_zero_attn")))
    calls = compound.attention_gemms(L, S, N, int(a["embed_dim_to_check"]), int(a["num_heads"]), k.shape[-1],
                                     v.shape[-1], add_kv)
    scores = compound.attention_scores_elems((N, int(a["num_heads"])), L, S + add_kv)
    rec.add_gemms(rec.owner[0], calls[:-2])  # projections and q @ k^T, then the softmax, then attn @ v
    rec.add_float("softmax", scores, scores)
    rec.add_gemms(rec.owner[0], calls[-2:])


def _record_sdpa(rec: Recorder, func, args, kwargs, out) -> None:
    a = dict(zip(_SDPA_PARAMETERS, args)) | kwargs
    q, k, v = a["query"], a["key"], a["value"]
    gqa = a.get("enable_gqa") and k.dim() >= 3 and k.shape[-3] != q.shape[-3]  # keys repeated to q's heads
    k_batch, v_batch = (q.shape[:-2], q.shape[:-2]) if gqa else (k.shape[:-2], v.shape[:-2])
    calls = compound.attention_core_gemms(q.shape[:-2], q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1],
                                          k_batch, v_batch)
    batch = torch.broadcast_shapes(q.shape[:-2], k_batch)
    base = rec.name("sdpa")
    scores = compound.attention_scores_elems(batch, q.shape[-2], k.shape[-2])
    rec.add_gemms(base, calls[:1])
    rec.add_float("softmax", scores, scores)
    rec.add_gemms(base, calls[1:])


def _record_recurrent(rec: Recorder, func, args, kwargs, out) -> None:
    # data form: fn(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first);
    # the PackedSequence form (batch_sizes second) is not recorded: QAG runs it float and lists it.
    if len(args) < 9 or not isinstance(args[3], bool):
        return
    x, params, has_biases, num_layers, bidirectional, batch_first = args[0], args[2], *args[3:5], args[7], args[8]
    mode = RECURRENT_FUNCTIONS[func]
    dirs = 2 if bidirectional else 1
    per = len(params) // (num_layers * dirs)
    proj_size = params[per - 1].shape[0] if per in (3, 5) and mode == "LSTM" else 0
    hidden = params[0].shape[0] // compound.RNN_GATES[mode]
    if x.dim() == 2:
        seq_len, batch = x.shape[0], 1
    else:
        seq_len, batch = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
    del has_biases
    calls = compound.recurrent_gemms(mode, seq_len, batch, params[0].shape[1], hidden, num_layers, bidirectional,
                                     proj_size)
    rec.add_gemms(rec.owner[0], calls)


def _record_float_call(rec: Recorder, func, args, kwargs, out) -> None:
    """Record a non-GEMM call as a float op, priced as :mod:`cost_models.float_ops` says (or skip it: a
    view, an identity, a property read, a constant, or a call without a tensor output)."""
    outputs = tensors_of(out)
    if not outputs or func in FREE_FUNCTIONS or getattr(func, "__name__", "") == "__get__":
        return
    inputs = tensors_of(args) + tensors_of(kwargs)
    activations = [t for t in inputs if t not in rec.constants]
    if not activations:  # computed from parameters and constants only: folded at deployment
        rec.constants.add(outputs)
        return
    op_type = FLOAT_OP_FUNCTIONS.get(func)
    if op_type in (None, COPY_OP_TYPE) and not is_in_place(func) and all(_aliases(o, inputs) for o in outputs):
        for marks in (rec.gemm_outputs, rec.kernel_outputs):  # a view of a kernel's output is still that output
            if inputs[0] in marks:
                marks.add(outputs)
        return
    if op_type is None:
        op_type, pricing = function_name(func), "unpriced"
    elif op_type in FOLDED_INTO_GEMM:
        pricing = "fused" if inputs[0] in rec.gemm_outputs else "kernel"
    elif op_type in FUSED_ACTIVATIONS:
        pricing = "fused" if inputs[0] in rec.kernel_outputs else "kernel"
    else:
        pricing = "kernel"
    # Joined (as hwqnn.qag.joins decides): an add of two activations, a concat of activations only, a pool.
    operands_ok = op_type not in ("add", "cat") or (len(activations) == len(inputs)
                                                   and (op_type != "add" or len(activations) == 2))
    joined = op_type in JOINED_OP_TYPES and operands_ok and any(t in rec.conv_fed for t in activations)
    if joined or (op_type in CONV_PASS_OP_TYPES and inputs[0] in rec.conv_fed):
        rec.conv_fed.add(outputs)
    rec.add_float(op_type, sum(t.numel() for t in activations), sum(t.numel() for t in outputs), pricing,
                  JOIN_BITS if joined else None)
    rec.kernel_outputs.add(outputs)
    if pricing == "fused" and inputs[0] in rec.gemm_outputs:  # a folded BatchNorm: still the GEMM's output
        rec.gemm_outputs.add(outputs)


_HANDLERS: dict[object, Callable] = {
    **dict.fromkeys(QUANTIZABLE_FUNCTIONS, _record_gemm),
    **dict.fromkeys(ADD_MATMUL_FUNCTIONS, _record_add_matmul),
    torch.einsum: _record_einsum,
    F.embedding: _record_embedding,
    F.multi_head_attention_forward: _record_mha,
    F.scaled_dot_product_attention: _record_sdpa,
    **dict.fromkeys(RECURRENT_FUNCTIONS, _record_recurrent),
}
