"""The fx graph rewrite: each quantizable call becomes a call of a QuantOp (or of an attention core).

Handlers are registered per fx target (a function, or a method name) with :func:`handles`. A handler
gets the node and returns the module to call and its arguments, or None to leave the call as it is
(then, if it is a GEMM, the float-op check lists it with its reason).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import Tensor, nn

from cost_models import is_einsum_contraction, op_layer_name

from ..errors import ConversionError
from .attention import QuantAttentionCore, SlotFactory
from .ops import QuantEinsumOp, QuantFunctionOp, add_matmul, is_plain_layer
from .region import QuantRegion, is_wrapped_function

OPS_ROOT = "hwqnn_ops"


@dataclass
class RewriteContext:
    gm: fx.GraphModule
    make_slots: SlotFactory
    source: nn.Module  # the traced module: it still holds the modules the graph traced through
    counters: dict = field(default_factory=dict)

    def name(self, node: fx.Node, op_type: str, by_module: bool = False) -> str:
        """The layer name rule of ``extract_workload``; with ``by_module``, a call traced inside a Conv/Linear
        subclass's own forward is named by that module's path, as a module call would be."""
        owner = owner_path(node)
        module = None
        if by_module:
            try:
                module = self.source.get_submodule(owner) if owner else None
            except AttributeError:
                module = None
        return op_layer_name(owner, module, op_type, self.counters)

    def parameter(self, node) -> Tensor | None:
        """The nn.Parameter a get_attr node reads, else None. Buffers and traced constants are not weights,
        as in ``extract_workload`` (weight_is_param must agree between QAG and the cost models)."""
        if isinstance(node, fx.Node) and node.op == "get_attr":
            obj = self.gm
            for part in node.target.split("."):
                obj = getattr(obj, part)
            return obj if isinstance(obj, nn.Parameter) else None
        return None

    def operand_slots(self, weight_node, op_type: str):
        """(weight slot, activation slot, weight_is_param) for a call whose second operand is ``weight_node``."""
        weight = self.parameter(weight_node)
        if weight is not None and op_type not in ("matmul",):
            axis = 1 if op_type.startswith("conv_transpose") else 0
            return (*self.make_slots("weight", weight.shape[axis], axis), True)
        role = "weight" if weight is not None else "activation"
        return (*self.make_slots(role, None, 0), weight is not None)


#: A handler returns (module, call args, call kwargs), or None to keep the node.
Handler = Callable[[RewriteContext, fx.Node], "tuple[nn.Module, tuple, dict] | None"]
FUNCTION_HANDLERS: dict[object, Handler] = {}
METHOD_HANDLERS: dict[str, Handler] = {}


def handles(*targets) -> Callable[[Handler], Handler]:
    """Register a handler for fx call_function targets (callables) and call_method names (strings)."""
    def wrap(fn: Handler) -> Handler:
        for target in targets:
            (METHOD_HANDLERS if isinstance(target, str) else FUNCTION_HANDLERS)[target] = fn
        return fn
    return wrap


def owner_path(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    value = list(stack.values())[-1]
    return value[0] if isinstance(value, tuple) else str(value)


# --- handlers --------------------------------------------------------------------------------------

_GEMM_FUNCTIONS: dict[object, tuple[str, Callable]] = {
    F.conv1d: ("conv1d", F.conv1d), F.conv2d: ("conv2d", F.conv2d), F.conv3d: ("conv3d", F.conv3d),
    F.conv_transpose1d: ("conv_transpose1d", F.conv_transpose1d),
    F.conv_transpose2d: ("conv_transpose2d", F.conv_transpose2d),
    F.conv_transpose3d: ("conv_transpose3d", F.conv_transpose3d), F.linear: ("linear", F.linear),
    torch.matmul: ("matmul", torch.matmul), operator.matmul: ("matmul", torch.matmul),
    torch.bmm: ("matmul", torch.bmm), torch.mm: ("matmul", torch.mm),
    "matmul": ("matmul", torch.matmul), "__matmul__": ("matmul", torch.matmul), "bmm": ("matmul", torch.bmm),
    "mm": ("matmul", torch.mm),
}


@handles(*_GEMM_FUNCTIONS)
def _gemm(ctx: RewriteContext, node: fx.Node):
    """conv/linear/matmul: ``fn(x, w, *rest)`` -> ``QuantFunctionOp(x, w, *rest)``."""
    op_type, fn = _GEMM_FUNCTIONS[node.target]
    args, kwargs = list(node.args), dict(node.kwargs)
    if not args and "input" in kwargs:  # every operand passed by keyword: F.linear(input=x, weight=w)
        args.append(kwargs.pop("input"))
    if len(args) < 2:
        for key in ("weight", "other", "mat2"):
            if key in kwargs:
                args.append(kwargs.pop(key))
                break
    if len(args) < 2:
        raise ConversionError(f"cannot find the second operand of '{node.format_node()}'")
    w_slot, a_slot, is_param = ctx.operand_slots(args[1], op_type)
    return QuantFunctionOp(ctx.name(node, op_type, by_module=True), op_type, fn, w_slot, a_slot, weight_is_param=is_param), \
        tuple(args), kwargs


_ADD_MATMUL = {torch.addmm: torch.addmm, torch.baddbmm: torch.baddbmm, "addmm": torch.addmm,
               "baddbmm": torch.baddbmm}


@handles(*_ADD_MATMUL)
def _add_matmul(ctx: RewriteContext, node: fx.Node):
    """``addmm(input, mat1, mat2, beta=, alpha=)`` -> a matmul QuantOp on (mat1, mat2) that adds input."""
    args, kwargs = list(node.args), dict(node.kwargs)
    for key in ("input", "mat1", "batch1", "mat2", "batch2"):
        if key in kwargs:
            args.append(kwargs.pop(key))
    if len(args) != 3:
        return None
    fn = _ADD_MATMUL[node.target]
    w_slot, a_slot, is_param = ctx.operand_slots(args[2], "matmul")
    op = QuantFunctionOp(ctx.name(node, "matmul"), "matmul", add_matmul(fn), w_slot, a_slot, weight_is_param=is_param)
    return op, (args[1], args[2], args[0]), kwargs


@handles(torch.einsum)
def _einsum(ctx: RewriteContext, node: fx.Node):
    """A two-operand einsum contraction -> one batched matmul; other einsums stay as they are."""
    equation, operands = node.args[0] if node.args else node.kwargs.get("equation"), list(node.args[1:])
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = list(operands[0])
    if not isinstance(equation, str) or not is_einsum_contraction(equation, operands):
        return None
    w_slot, a_slot, is_param = ctx.operand_slots(operands[1], "matmul")
    return QuantEinsumOp(ctx.name(node, "matmul"), equation, w_slot, a_slot, is_param), tuple(operands), {}


@handles(F.scaled_dot_product_attention)
def _sdpa(ctx: RewriteContext, node: fx.Node):
    """SDPA -> q @ k^T, softmax, @ v with slots on all four operands."""
    return QuantAttentionCore(ctx.name(node, "sdpa"), ctx.make_slots), tuple(node.args), dict(node.kwargs)


def _wrapped_function(ctx: RewriteContext, node: fx.Node):
    """A function fx kept whole (torch.fx.wrap): run it as a region whose GEMM calls get QuantOps."""
    region = QuantRegion(node.target, owner_path(node), ctx.make_slots)
    region.base_name = f"{owner_path(node)}.{node.target.__name__}".lstrip(".")
    return region, tuple(node.args), dict(node.kwargs)


# --- the rewrite ----------------------------------------------------------------------------------

def _handler(node: fx.Node) -> Handler | None:
    if node.op == "call_function":
        try:
            return FUNCTION_HANDLERS.get(node.target)
        except TypeError:  # an unhashable target
            return None
    if node.op == "call_method":
        return METHOD_HANDLERS.get(node.target)
    return None


def rewrite_graph(gm: fx.GraphModule, source: nn.Module, make_slots: SlotFactory,
                  module_op: Callable[[str, nn.Module], nn.Module]) -> None:
    """Replace supported modules by ``module_op(path, module)`` and handled calls by their QuantOps
    (``source`` is the module ``gm`` was traced from)."""
    ctx = RewriteContext(gm, make_slots, source)
    for node in list(gm.graph.nodes):
        if node.op == "call_module":
            module = gm.get_submodule(node.target)
            if is_plain_layer(module):
                _set_submodule(gm, node.target, module_op(node.target, module))
            continue
        handler = _handler(node)
        if handler is None and node.op == "call_function" and is_wrapped_function(node.target):
            handler = _wrapped_function
        built = handler(ctx, node) if handler is not None else None
        if built is None:
            continue
        module, args, kwargs = built
        name = getattr(module, "layer_name", None) or module.base_name
        path = f"{OPS_ROOT}.{re.sub(r'[^0-9a-zA-Z_]', '_', name)}"
        if not hasattr(gm, OPS_ROOT):
            gm.add_module(OPS_ROOT, nn.Module())
        gm.get_submodule(OPS_ROOT).add_module(path.split(".", 1)[1], module)
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(path, args, kwargs)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)
