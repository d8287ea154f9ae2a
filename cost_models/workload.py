"""Workload: one row per quantizable op (conv, transposed conv, linear, matmul, embedding) of a model,
plus every op that stays float (softmax, norms, pooling, residual adds, activations...), each priced as
described in :mod:`cost_models.float_ops` (a memory-bound float kernel, fused for free, or unpriced:
estimated and flagged).

The MAC and size formulas live in :func:`layer_info`, used both by :func:`extract_workload` (any eager
float model, through a ``TorchFunctionMode``) and by hwqnn's QAG (which records the same rows from its
quantized layers), so the two never disagree. GEMMs inside fused calls (multi-head attention,
``scaled_dot_product_attention``, recurrent layers, einsum, addmm/baddbmm) are listed one row per GEMM,
as described in :mod:`cost_models.compound`.

Per-sample numbers: MACs and activation elements are divided by the example input's batch size, so a
cost model scales them by the batch size it is asked about. Parameter counts do not scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import compound
from .errors import WorkloadError
from .float_ops import FLOAT_OP_FUNCTIONS, FloatOpInfo  # noqa: F401  (re-exported: the float ops of a workload)

OP_TYPES = (
    "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "linear", "matmul", "embedding", "recurrent",
)
#: ``recurrent``: a linear GEMM of a recurrent cell (input-to-hidden over the sequence, or hidden-to-hidden
#: once per step); priced as a linear layer, told apart so a runtime can say it does not run it in integers.

#: Functions intercepted by extract_workload (and QAG's float-op check), mapped to their op type.
QUANTIZABLE_FUNCTIONS: dict[object, str] = {
    F.conv1d: "conv1d", F.conv2d: "conv2d", F.conv3d: "conv3d",
    F.conv_transpose1d: "conv_transpose1d", F.conv_transpose2d: "conv_transpose2d",
    F.conv_transpose3d: "conv_transpose3d",
    F.linear: "linear",
    torch.matmul: "matmul", Tensor.matmul: "matmul", Tensor.__matmul__: "matmul",
    torch.bmm: "matmul", Tensor.bmm: "matmul", torch.mm: "matmul", Tensor.mm: "matmul",
}

#: ``fn(input, mat1, mat2, beta=, alpha=)``: a matmul of mat1 and mat2 plus a scaled input.
ADD_MATMUL_FUNCTIONS: dict[object, str] = {
    torch.addmm: "matmul", Tensor.addmm: "matmul", torch.baddbmm: "matmul", Tensor.baddbmm: "matmul",
}

#: Fused calls made of several GEMMs (see cost_models.compound).
ATTENTION_FUNCTIONS = (F.multi_head_attention_forward, F.scaled_dot_product_attention)
RECURRENT_FUNCTIONS: dict[object, str] = {
    torch.gru: "GRU", torch.lstm: "LSTM", torch.rnn_tanh: "RNN_TANH", torch.rnn_relu: "RNN_RELU",
}



def einsum_operands(args, kwargs) -> tuple[str | None, list]:
    """(equation, operands) of a ``torch.einsum`` call, whether operands are varargs or one list."""
    equation = args[0] if args else kwargs.get("equation")
    operands = list(args[1:])
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = list(operands[0])
    return equation, operands


@dataclass(frozen=True)
class LayerInfo:
    """One quantizable op. Element counts are per sample except ``weight_elems`` of a parameter."""

    name: str
    op_type: str
    macs: float
    weight_elems: float
    weight_is_param: bool
    in_elems: float
    out_elems: float
    in_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel_size: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    groups: int = 1
    calls: int = 1

    @property
    def out_channels(self) -> int:
        if self.op_type.startswith("conv_transpose"):
            return self.weight_shape[1] * self.groups
        if self.op_type.startswith("conv") or self.op_type in ("linear", "recurrent"):
            return self.weight_shape[0]
        return self.weight_shape[-1] if self.weight_shape else 1


def _as_tuple(value, n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    return tuple(int(v) for v in value)


def layer_info(
    name: str,
    op_type: str,
    x: Tensor,
    weight: Tensor,
    out: Tensor,
    *,
    batch_size: int,
    weight_is_param: bool = True,
    stride=1,
    groups: int = 1,
) -> LayerInfo:
    """Compute the workload row of one op from its real input, weight (or second operand) and output."""
    if op_type not in OP_TYPES:
        raise WorkloadError(f"layer '{name}': unknown op type {op_type!r}; expected one of {OP_TYPES}")
    if batch_size < 1:
        raise WorkloadError(f"layer '{name}': batch_size must be >= 1, got {batch_size}")
    kernel: tuple[int, ...] = ()
    if op_type.startswith("conv_transpose"):
        kernel = tuple(weight.shape[2:])
        macs = x.numel() * weight.shape[1] * math.prod(kernel)
    elif op_type.startswith("conv"):
        kernel = tuple(weight.shape[2:])
        macs = out.numel() * weight.shape[1] * math.prod(kernel)
    elif op_type in ("linear", "recurrent"):
        macs = out.numel() * weight.shape[-1]
    elif op_type == "embedding":  # a table lookup: no MACs, memory-bound
        macs = 0
    else:  # matmul: out[..., m, n] = sum_k a[..., m, k] b[..., k, n]; 1-D operands broadcast as vectors
        macs = out.numel() * x.shape[-1]
    n_spatial = len(kernel)
    per_sample = float(batch_size)
    return LayerInfo(
        name=name,
        op_type=op_type,
        macs=macs / per_sample,
        weight_elems=float(weight.numel()) if weight_is_param else weight.numel() / per_sample,
        weight_is_param=weight_is_param,
        in_elems=x.numel() / per_sample,
        out_elems=out.numel() / per_sample,
        in_shape=tuple(x.shape),
        weight_shape=tuple(weight.shape),
        out_shape=tuple(out.shape),
        kernel_size=kernel,
        stride=_as_tuple(stride, n_spatial) if n_spatial else (),
        groups=int(groups),
    )


def merge_call(previous: LayerInfo, new: LayerInfo) -> LayerInfo:
    """A layer called again (a shared module): its compute and activations add up, its weights do not."""
    return replace(
        previous,
        macs=previous.macs + new.macs,
        in_elems=previous.in_elems + new.in_elems,
        out_elems=previous.out_elems + new.out_elems,
        weight_elems=previous.weight_elems if previous.weight_is_param
        else previous.weight_elems + new.weight_elems,
        calls=previous.calls + 1,
    )


def gemm_row(name: str, call: compound.GemmCall, batch_size: int) -> LayerInfo:
    """The workload row of one GEMM described by shapes (a part of a fused call)."""
    x, w, out = (torch.empty(shape, device="meta") for shape in (call.x_shape, call.w_shape, call.out_shape))
    return layer_info(name, call.op_type, x, w, out, batch_size=batch_size, weight_is_param=call.weight_is_param)


@dataclass
class Workload:
    """The ordered rows of a model's quantizable ops, with tensor views for the cost models.

    ``float_ops`` lists the ops left float, in execution order (see :class:`FloatOpInfo`), fused ones
    included (they cost nothing, and the list says where they went).
    """

    layers: list[LayerInfo]
    float_ops: list[FloatOpInfo] = field(default_factory=list)
    #: Bytes of the model's other float tensors (biases, norms, float buffers), stored as they are: part
    #: of the model's size whatever the policy (the exporter counts the same tensors, see hwqnn.export).
    float_param_bytes: float = 0.0
    _tensors: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise WorkloadError(f"workload has duplicate layer names: {dup}")

    @classmethod
    def from_layers(cls, layers: Sequence[LayerInfo], float_ops: Sequence[FloatOpInfo] = (),
                    float_param_bytes: float = 0.0) -> Workload:
        """Build a workload from rows in execution order, merging repeated calls of one layer."""
        merged: dict[str, LayerInfo] = {}
        for layer in layers:
            merged[layer.name] = merge_call(merged[layer.name], layer) if layer.name in merged else layer
        return cls(list(merged.values()), list(float_ops), float(float_param_bytes))

    def float_op_rows(self) -> list[int]:
        """For each float op, the index of the row it is charged to (its ``after_layer``, else row 0)."""
        index = {name: i for i, name in enumerate(self.names)}
        return [index.get(op.after_layer, 0) for op in self.float_ops]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[LayerInfo]:
        return iter(self.layers)

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(layer) for layer in self.layers])

    def tensors(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64) -> dict[str, Tensor]:
        """Per-layer columns as 1-D tensors (cached): macs, weight_elems, weight_is_param, in_elems, out_elems."""
        key = (str(device), dtype)
        if key not in self._tensors:
            cols = ("macs", "weight_elems", "in_elems", "out_elems")
            out = {c: torch.tensor([getattr(row, c) for row in self.layers], dtype=dtype, device=device) for c in cols}
            out["weight_is_param"] = torch.tensor(
                [float(row.weight_is_param) for row in self.layers], dtype=dtype, device=device)
            self._tensors[key] = out
        return self._tensors[key]


def _batch_size_of(example_input) -> int:
    first = example_input
    while isinstance(first, (tuple, list)) and first:
        first = first[0]
    if not torch.is_tensor(first) or first.dim() == 0:
        raise WorkloadError("example_input must be a tensor (or a tuple starting with one) with a batch dimension")
    return int(first.shape[0])


#: Module types whose single forward call owns its op (named by the module path alone).
WEIGHTED_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                    nn.ConvTranspose3d, nn.Linear, nn.Embedding)


def op_layer_name(owner: str, module: nn.Module | None, op_type: str, counters: dict) -> str:
    """The layer name rule shared with QAG.

    A weighted module (Conv*/Linear) names its op by its module path. A functional op called inside
    another module's forward is named ``<owner path>.<op type>``, then ``_1``, ``_2``... for later calls
    of the same op type in that owner (counted over one forward pass).
    """
    if isinstance(module, WEIGHTED_MODULES):
        return owner or op_type
    key = (owner, op_type)
    k = counters.get(key, 0)
    counters[key] = k + 1
    base = f"{owner}.{op_type}" if owner else op_type
    return base if k == 0 else f"{base}_{k}"


class mha_fast_path_disabled:
    """Context manager: PyTorch's fused attention fast path off (it hides the GEMMs in one kernel)."""

    def __enter__(self) -> None:
        self._was = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)

    def __exit__(self, *exc) -> None:
        torch.backends.mha.set_fastpath_enabled(self._was)


def record_workload(model: nn.Module, example_input) -> tuple[list[LayerInfo], list[FloatOpInfo]]:
    """Run ``model`` once (eval mode, no grad, attention fast path off); its GEMM rows and float ops.

    QAG takes the float ops of a converted model from this run of the float model, so that both list the
    same ones."""
    batch_size = _batch_size_of(example_input)
    stack: list[tuple[str, nn.Module]] = [("", model)]
    hooks = []
    for path, module in model.named_modules():
        if module is model:
            continue
        hooks.append(module.register_forward_pre_hook(lambda m, a, p=path: stack.append((p, m)) and None))
        hooks.append(module.register_forward_hook(lambda m, a, o: stack.pop() and None))
    from .recorder import Recorder  # the recorder imports this module's row types

    param_ids = {id(p) for p in model.parameters()}
    recorder = Recorder(batch_size, stack, param_ids, constants=[*model.parameters(), *model.buffers()])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), mha_fast_path_disabled(), recorder:
            args = example_input if isinstance(example_input, tuple) else (example_input,)
            model(*args)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return recorder.rows, recorder.float_ops


def extract_workload(model: nn.Module, example_input) -> Workload:
    """Run ``model`` once on ``example_input`` (eval mode, no grad) and record its quantizable ops."""
    if not isinstance(model, nn.Module):
        raise WorkloadError(f"extract_workload expects an nn.Module, got {type(model).__name__}")
    rows, float_ops = record_workload(model, example_input)
    if not rows:
        raise WorkloadError(f"model {type(model).__name__} has no conv, linear or matmul op to quantize")
    workload = Workload.from_layers(rows, float_ops)
    # The eager trace keeps no tensors: the quantized weights are taken out by their size (float32).
    quantized = sum(layer.weight_elems * 4 for layer in workload.layers if layer.weight_is_param)
    workload.float_param_bytes = float(max(0, float_tensor_bytes(model) - quantized))
    return workload


def float_tensor_bytes(module: nn.Module, exclude: Sequence[Tensor] = ()) -> int:
    """Bytes of ``module``'s floating-point parameters and buffers, each storage once, minus ``exclude``.

    Callers exclude the weights their layers quantize (and any quantizer state), which leaves what a
    device stores as float whatever the policy: biases, norm parameters and statistics, embeddings kept float.
    """
    skip = {t.data_ptr() for t in exclude}
    seen, total = set(), 0
    for tensor in list(module.parameters()) + list(module.buffers()):
        if not tensor.is_floating_point() or tensor.data_ptr() in seen or tensor.data_ptr() in skip:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total
