"""QAG: turn any float model into a quantizable one with a QuantSlot on every conv/linear/matmul.

``convert(model, example_input)`` traces the model with torch.fx, replaces Conv*/ConvTranspose*/Linear
modules with :class:`QuantModuleOp` and functional ``F.conv*``/``F.linear``/``matmul``/``bmm``/``@``
calls with :class:`QuantFunctionOp`, then runs the example input once to record each layer's workload
row, in execution order. Submodules fx cannot trace are kept as leaves and converted by module swap.
"""

from __future__ import annotations

import copy
import operator
import re
import warnings
from collections.abc import Callable, Iterable, Sequence

import pandas as pd
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from cost_models.workload import QUANTIZABLE_FUNCTIONS, Workload, op_layer_name

from ..errors import ConversionError, PolicyError
from ..policy import FLOAT, LayerPolicy, Policy
from .ops import SUPPORTED_MODULES, QuantFunctionOp, QuantModuleOp, QuantOp
from .slot import QuantSlot, SchemeLogits
from .trace import trace_with_fallback

# fx call_function targets and call_method names that QAG quantizes, with their op type.
_FX_FUNCTIONS: dict[object, str] = {
    F.conv1d: "conv1d", F.conv2d: "conv2d", F.conv3d: "conv3d",
    F.conv_transpose1d: "conv_transpose1d", F.conv_transpose2d: "conv_transpose2d",
    F.conv_transpose3d: "conv_transpose3d", F.linear: "linear",
    torch.matmul: "matmul", operator.matmul: "matmul", torch.bmm: "matmul", torch.mm: "matmul",
}
_FX_METHODS = {"matmul": "matmul", "bmm": "matmul", "mm": "matmul", "__matmul__": "matmul"}
_FN_FOR_METHOD = {"matmul": torch.matmul, "bmm": torch.bmm, "mm": torch.mm, "__matmul__": torch.matmul}
OPS_ROOT = "hwqnn_ops"


class QuantizedModel(nn.Module):
    """A converted model: runs like the float model, and exposes its quantized layers and slots."""

    def __init__(self, net: nn.Module, batch_size: int):
        super().__init__()
        self.net = net
        self.example_batch_size = batch_size
        self._op_paths: list[str] = []
        self.workload: Workload | None = None
        self.fallback_modules: list[str] = []
        self.float_ops: list[str] = []

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)

    # --- introspection -------------------------------------------------------------------------
    def quant_ops(self) -> list[QuantOp]:
        """Quantized layers in execution order."""
        return [self.net.get_submodule(p) for p in self._op_paths]

    @property
    def layer_names(self) -> list[str]:
        return [op.layer_name for op in self.quant_ops()]

    def layer(self, name: str) -> QuantOp:
        for op in self.quant_ops():
            if op.layer_name == name:
                return op
        raise PolicyError(f"model has no quantized layer '{name}'; layers: {self.layer_names}")

    def slots(self) -> list[tuple[str, str, QuantSlot]]:
        """(layer name, "weight" | "activation", slot) for every slot, in execution order."""
        out = []
        for op in self.quant_ops():
            out.append((op.layer_name, "weight", op.weight_slot))
            out.append((op.layer_name, "activation", op.act_slot))
        return out

    def layer_table(self) -> pd.DataFrame:
        """Per-layer metadata (op type, shapes, MACs, weight count, activation sizes) and slot state."""
        frame = self.workload.to_frame()
        ops = {op.layer_name: op for op in self.quant_ops()}
        frame["w_mode"] = [ops[n].weight_slot.extra_repr() for n in frame["name"]]
        frame["a_mode"] = [ops[n].act_slot.extra_repr() for n in frame["name"]]
        return frame

    # --- mode switches -------------------------------------------------------------------------
    def set_float(self) -> QuantizedModel:
        """Every slot in float bypass: the model computes exactly what the float model does."""
        for _, _, slot in self.slots():
            slot.set_float()
        return self

    def set_search(self) -> QuantizedModel:
        for _, _, slot in self.slots():
            slot.set_search()
        return self

    def share_scheme_logits(self) -> None:
        """Model-wide scheme sharing: one alpha for all weight slots, one for all activation slots."""
        shared = {}
        for _, role, slot in self.slots():
            key = (role, tuple(slot.scheme_names))
            if key not in shared:
                shared[key] = SchemeLogits(len(slot.scheme_names))
            slot.share_logits(shared[key])

    def apply(self, policy: Policy) -> QuantizedModel:
        """Fix every slot to the policy's scheme and integer bits (``float`` -> bypass)."""
        policy.check_layers(self.layer_names)
        for op in self.quant_ops():
            choice = policy.resolve(op.layer_name)
            for slot, scheme, bits in ((op.weight_slot, choice.w_scheme, choice.w_bits),
                                       (op.act_slot, choice.a_scheme, choice.a_bits)):
                if scheme == FLOAT:
                    slot.set_float()
                else:
                    slot.set_fixed(scheme, bits)
        return self

    def current_policy(self) -> Policy:
        """The policy the slots hold now: fixed slots as fixed, search slots as what the search would
        pick now (argmax scheme at the rounded continuous bitwidth), float slots as float 32."""
        layers = {}
        for op in self.quant_ops():
            sides = []
            for slot in op.slots:
                if slot.mode == "fixed":
                    sides += [slot.fixed_scheme, slot.fixed_bits]
                elif slot.mode == "search":
                    scheme = slot.argmax_scheme()
                    sides += [scheme, slot.candidates[scheme].effective_bits(round(float(slot.continuous_bits())))]
                else:
                    sides += [FLOAT, 32]
            layers[op.layer_name] = LayerPolicy(*sides)
        return Policy(layers)

    @torch.no_grad()
    def calibrate(self, batches: Iterable) -> None:
        """Initialise quantizer statistics on a few batches without touching BatchNorm or weights."""
        was_training = self.training
        self.eval()
        for _, _, slot in self.slots():
            slot.train()
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            self(x.to(next(self.parameters()).device))
        self.train(was_training)


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def _make_slots(role_w: str, w_channels: int | None, w_axis: int, schemes, bits_range) -> tuple[QuantSlot, QuantSlot]:
    weight_slot = QuantSlot(role_w, channels=w_channels, channel_axis=w_axis, schemes=schemes, bits_range=bits_range)
    act_slot = QuantSlot("activation", schemes=schemes, bits_range=bits_range)
    return weight_slot, act_slot


def _module_op(name: str, module: nn.Module, schemes, bits_range) -> QuantModuleOp:
    transpose = isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    axis = 1 if transpose else 0
    w_slot, a_slot = _make_slots("weight", module.weight.shape[axis], axis, schemes, bits_range)
    return QuantModuleOp(name, module, w_slot, a_slot)


def _swap_modules(root: nn.Module, prefix: str, schemes, bits_range, skip: Callable[[nn.Module], bool]) -> None:
    """Module swap (for leaves fx cannot trace): replace every supported child module in place."""
    for child_name, child in list(root.named_children()):
        path = f"{prefix}.{child_name}" if prefix else child_name
        if skip(child):
            continue
        if isinstance(child, SUPPORTED_MODULES):
            setattr(root, child_name, _module_op(path, child, schemes, bits_range))
        else:
            _swap_modules(child, path, schemes, bits_range, skip)


def _owner_path(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    value = list(stack.values())[-1]
    return value[0] if isinstance(value, tuple) else str(value)


def _attr_parameter(gm: fx.GraphModule, node) -> Tensor | None:
    """The nn.Parameter a get_attr node reads, else None. Buffers and traced constants are not weights,
    as in ``extract_workload`` (weight_is_param must agree between QAG and the cost models)."""
    if isinstance(node, fx.Node) and node.op == "get_attr":
        obj = gm
        for part in node.target.split("."):
            obj = getattr(obj, part)
        return obj if isinstance(obj, nn.Parameter) else None
    return None


def _rewrite_graph(gm: fx.GraphModule, schemes, bits_range) -> None:
    counters: dict = {}
    for node in list(gm.graph.nodes):
        if node.op == "call_module":
            module = gm.get_submodule(node.target)
            if isinstance(module, SUPPORTED_MODULES):
                _set_submodule(gm, node.target, _module_op(node.target, module, schemes, bits_range))
            continue
        if node.op == "call_function" and node.target in _FX_FUNCTIONS:
            op_type, fn = _FX_FUNCTIONS[node.target], node.target
            if fn is operator.matmul:
                fn = torch.matmul
        elif node.op == "call_method" and node.target in _FX_METHODS:
            op_type, fn = _FX_METHODS[node.target], _FN_FOR_METHOD[node.target]
        else:
            continue
        args = list(node.args)
        kwargs = dict(node.kwargs)
        if not args and "input" in kwargs:  # every operand passed by keyword: F.linear(input=x, weight=w)
            args.append(kwargs.pop("input"))
        if len(args) < 2:
            for key in ("weight", "other", "mat2"):
                if key in kwargs:
                    args.append(kwargs.pop(key))
                    break
        if len(args) < 2:
            raise ConversionError(f"cannot find the second operand of '{node.format_node()}'")
        weight = _attr_parameter(gm, args[1])
        is_param = weight is not None
        name = op_layer_name(_owner_path(node), None, op_type, counters)
        if is_param and op_type != "matmul":
            axis = 1 if op_type.startswith("conv_transpose") else 0
            w_slot, a_slot = _make_slots("weight", weight.shape[axis], axis, schemes, bits_range)
        else:
            w_slot, a_slot = _make_slots("weight" if is_param else "activation", None, 0, schemes, bits_range)
        qop = QuantFunctionOp(name, op_type, fn, w_slot, a_slot, weight_is_param=is_param)
        path = f"{OPS_ROOT}.{re.sub(r'[^0-9a-zA-Z_]', '_', name)}"
        if not hasattr(gm, OPS_ROOT):
            gm.add_module(OPS_ROOT, nn.Module())
        gm.get_submodule(OPS_ROOT).add_module(path.split(".", 1)[1], qop)
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(path, tuple(args), kwargs)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()


#: Calls that do conv/linear/matmul work inside one fused kernel QAG cannot put slots on (attention,
#: recurrent layers, einsum, add-matmuls); they are reported as float ops so that none stays float silently.
OPAQUE_FUNCTIONS: dict[object, str] = {
    F.multi_head_attention_forward: "multi_head_attention", F.scaled_dot_product_attention: "scaled_dot_product_attention",
    F.bilinear: "bilinear", torch.einsum: "einsum", torch.tensordot: "tensordot",
    torch.addmm: "addmm", Tensor.addmm: "addmm", torch.baddbmm: "baddbmm", Tensor.baddbmm: "baddbmm",
    torch.addbmm: "addbmm", torch.addmv: "addmv", torch.mv: "mv", Tensor.mv: "mv",
    torch.lstm: "lstm", torch.gru: "gru", torch.rnn_tanh: "rnn_tanh", torch.rnn_relu: "rnn_relu",
}
_FOUND_FUNCTIONS = {**QUANTIZABLE_FUNCTIONS, **OPAQUE_FUNCTIONS}


class _FloatOpFinder(TorchFunctionMode):
    """Lists quantizable op calls that run outside any QuantOp (they would silently stay float)."""

    def __init__(self, stack: list[tuple[str, nn.Module]]):
        super().__init__()
        self.stack = stack
        self.found: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in _FOUND_FUNCTIONS and not any(isinstance(m, QuantOp) for _, m in self.stack):
            owner = self.stack[-1][0] if self.stack else ""
            self.found.append(f"{_FOUND_FUNCTIONS[func]} in '{owner or '<root>'}'")
        return out


def _as_args(example_input) -> tuple:
    return example_input if isinstance(example_input, tuple) else (example_input,)


@torch.no_grad()
def _record(qmodel: QuantizedModel, example_input) -> None:
    ops = {p: m for p, m in qmodel.net.named_modules() if isinstance(m, QuantOp)}
    rows: list = []
    order: list[str] = []
    for path, op in ops.items():
        op.recorder = rows
        op.record_batch_size = qmodel.example_batch_size
        op.register_forward_pre_hook(lambda m, a, p=path: order.append(p) if p not in order else None)
    stack: list[tuple[str, nn.Module]] = []
    hooks = []
    for path, module in qmodel.net.named_modules():
        hooks.append(module.register_forward_pre_hook(lambda m, a, p=path: stack.append((p, m)) and None))
        hooks.append(module.register_forward_hook(lambda m, a, o: stack.pop() and None))
    finder = _FloatOpFinder(stack)
    was_training = qmodel.training
    qmodel.eval()
    try:
        with finder:
            qmodel(*_as_args(example_input))
    except Exception as exc:
        raise ConversionError(f"the converted model failed on the example input: {type(exc).__name__}: {exc}") from exc
    finally:
        for op in ops.values():
            op.recorder = None
            op._forward_pre_hooks.clear()
        for h in hooks:
            h.remove()
        qmodel.train(was_training)
    qmodel._op_paths = order
    qmodel.workload = Workload.from_layers(rows)
    # A quantized layer the example never ran (a branch inside a leaf) would run with float slots that no
    # policy reaches: report it with the ops that ran outside any QuantSlot.
    not_run = [f"{op.op_type} in '{path}' (not run by the example input)" for path, op in ops.items() if path not in order]
    qmodel.float_ops = sorted(set(finder.found)) + not_run


def convert(
    model: nn.Module,
    example_input,
    *,
    schemes: Sequence[str] | None = None,
    bits_range: tuple[int, int] = (2, 8),
    scheme_sharing: str = "layer",
    leaf_modules: Iterable[type] = (),
    autowrap_functions: Iterable[Callable] = (),
) -> QuantizedModel:
    """Convert a float model into a :class:`QuantizedModel` with every slot in float bypass.

    The input model is not modified. ``schemes`` are the candidates of every slot (default: all
    registered); ``scheme_sharing`` is ``"layer"`` (own logits per slot) or ``"model"``.
    """
    if not isinstance(model, nn.Module):
        raise ConversionError(f"convert expects an nn.Module, got {type(model).__name__}")
    if scheme_sharing not in ("layer", "model"):
        raise ConversionError(f"scheme_sharing must be 'layer' or 'model', got {scheme_sharing!r}")
    args = _as_args(example_input)
    if not args or not torch.is_tensor(args[0]) or args[0].dim() == 0:
        raise ConversionError("example_input must be a batched tensor (or a tuple whose first item is one)")
    modes = {module: module.training for module in model.modules()}  # restored: convert leaves `model` as it was
    try:
        with torch.no_grad():
            model.eval()(*args)
    except Exception as exc:
        raise ConversionError(
            f"the float model fails on the example input ({type(exc).__name__}: {exc}); "
            f"pass an input of the shape the model expects") from exc
    finally:
        for module, training in modes.items():
            module.training = training
    # Traced in eval mode, as the float check ran: code that branches on self.training (aux heads, functional
    # dropout) is baked into the graph with its inference path, not its training path.
    net = copy.deepcopy(model).eval()
    gm, fallbacks, root_error = trace_with_fallback(net, leaf_modules, autowrap_functions)
    if gm is None:
        warnings.warn(
            f"QAG: the forward of {type(model).__name__} itself cannot be traced by torch.fx ({root_error}); "
            f"falling back to module swap: Conv/Linear modules are quantized, functional ops in its "
            f"forward stay float", stacklevel=2)
        _swap_modules(net, "", schemes, bits_range, skip=lambda m: False)
        converted = net
        fallbacks = [""]
    else:
        for path in fallbacks:
            _swap_modules(gm.get_submodule(path), path, schemes, bits_range, skip=lambda m: False)
        _rewrite_graph(gm, schemes, bits_range)
        converted = gm
    qmodel = QuantizedModel(converted, int(args[0].shape[0]))
    qmodel.train(model.training)
    qmodel.fallback_modules = fallbacks
    _record(qmodel, example_input)
    if not qmodel._op_paths:
        reason = f" (tracing failed: {root_error})" if root_error else ""
        if qmodel.float_ops:
            reason += f"; it has ops QAG cannot put slots on: {', '.join(qmodel.float_ops)}"
        raise ConversionError(f"{type(model).__name__} has no conv, linear or matmul op that QAG can quantize{reason}")
    if qmodel.float_ops:
        warnings.warn(f"QAG: these quantizable ops run outside any QuantSlot and stay float: "
                      f"{', '.join(qmodel.float_ops)}", stacklevel=2)
    if scheme_sharing == "model":
        qmodel.share_scheme_logits()
    return qmodel.set_float()


def apply_policy(model: nn.Module, policy: Policy | str, example_input, **convert_kwargs) -> QuantizedModel:
    """Build the fixed quantized model of ``policy`` (a Policy, a YAML path or a uniform string like 'w4a8')."""
    if isinstance(policy, str):
        policy = Policy.load(policy) if policy.endswith((".yaml", ".yml")) else Policy.uniform(policy)
    if isinstance(model, QuantizedModel):
        return model.apply(policy)
    qmodel = convert(model, example_input, **convert_kwargs)
    return qmodel.apply(policy)
