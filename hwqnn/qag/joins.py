"""Joins: the inputs of additions, concatenations, average pools and means that convolutions feed are quantized too.

Why: an integer runtime runs a convolution in integers only when its output is quantized again. ONNX
Runtime fuses ``DQ -> Conv -> Q`` into QLinearConv, and TensorRT keeps a layer in int8 only with int8
output. A conv whose output flows (through BatchNorm, ReLU or max pooling) into a residual addition or a
global average pool would hand a float tensor to that op: the runtime then runs the conv in float, and
the export is slower than the runtime's own quantizer makes it. So QAG quantizes those inputs in the
model itself, which keeps the export exact:

* an operand that a quantized layer also reads as its input activation goes through that layer's
  activation slot, when the slot holds a uniform grid at least as wide as the join's. One quantizer
  per tensor: the runtime sees a single Q/DQ pair there, and fuses the addition as well;
* any other operand goes through the join's own quantizer: uniform 8 bits, zero point 0, signed (codes
  ``[-128, 127]``; non-negative data uses half of them, as TensorRT does with every post-ReLU tensor),
  the int8 every runtime runs. On a target whose activations may be unsigned or asymmetric (ONNX
  Runtime, TFLite, Bit Fusion) non-negative data gets the unsigned grid instead, which also lets the
  runtime drop a ReLU in front of it (:func:`hwqnn.deployment.restrict_to_target`).

A join is active while a convolution that feeds it is quantized, and is never searched. The cost
models price the joined op as an 8-bit integer kernel: their recorder applies the same rule to the float
model (``cost_models.float_ops.JOINED_OP_TYPES``), and ``convert`` keeps that mark only on the ops it
really joined (an add inside code fx cannot trace stays float, and is priced so).
Additions in transformers (fed by linear layers and normalizations, not convolutions) stay float:
their runtimes fuse DQ -> MatMul without an output Q.
"""

from __future__ import annotations

import operator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import Tensor, nn

from cost_models import op_layer_name
from cost_models.float_ops import (  # the cost models' own rule: what is joined, what a conv passes through
    CONV_PASS_OP_TYPES,
    FLOAT_OP_FUNCTIONS,
    FREE_FUNCTIONS,
    JOIN_BITS,
    JOINED_OP_TYPES,
)

from .ops import QuantOp
from .slot import QuantSlot

JOIN_SCHEME = "uniform"



def _fx_targets(op_types) -> dict[object, str]:
    """The fx call_function targets and call_method names of the cost models' functions of ``op_types``
    (``FLOAT_OP_FUNCTIONS``): one table decides both what the recorder prices as joined and what QAG joins.
    ``Tensor.__add__`` is traced as ``operator.add``, ``Tensor.add`` as the method name ``"add"``."""
    targets: dict[object, str] = {}
    for fn, op_type in FLOAT_OP_FUNCTIONS.items():
        if op_type not in op_types:
            continue
        targets[fn] = op_type
        name = getattr(fn, "__name__", "")
        if getattr(torch.Tensor, name, None) is fn:
            targets[name] = op_type
            operator_fn = getattr(operator, name.strip("_"), None) if name.startswith("__") else None
            if operator_fn is not None:
                targets[operator_fn] = op_type
    return targets


#: Joined call_function / call_method targets -> the float op type the cost model records them as.
_JOIN_FUNCTIONS = _fx_targets(JOINED_OP_TYPES)
_JOIN_MODULES: dict[type, str] = {
    nn.AvgPool1d: "avg_pool", nn.AvgPool2d: "avg_pool", nn.AvgPool3d: "avg_pool",
    nn.AdaptiveAvgPool1d: "adaptive_avg_pool", nn.AdaptiveAvgPool2d: "adaptive_avg_pool",
    nn.AdaptiveAvgPool3d: "adaptive_avg_pool",
}
#: Ops a quantized conv output passes through unchanged in kind: folded (BatchNorm), fused as the conv's
#: epilogue (ReLU, ReLU6), or commuting with quantization (max pooling, dropout at inference).
_PASS_FUNCTIONS = set(_fx_targets(CONV_PASS_OP_TYPES)) | set(FREE_FUNCTIONS)
_PASS_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.MaxPool1d,
                 nn.MaxPool2d, nn.MaxPool3d, nn.Identity, nn.Dropout, nn.Dropout2d)
_IDENTITIES = (nn.Identity, nn.Dropout, nn.Dropout2d)


class QuantJoin(nn.Module):
    """Quantizes one operand of a joined op (see the module docstring).

    ``op_name`` is the joined op's name in the workload's float ops (``<owner>.<op type>``);
    ``producers`` the quantized convolutions that feed it, and ``sibling`` the QuantOp that reads the
    same tensor as its input activation, or None. Neither is a submodule: they belong to the model.
    """

    def __init__(self, op_name: str, op_type: str, producers: tuple[QuantOp, ...], sibling: QuantOp | None,
                 input_index: int = 0):
        super().__init__()
        self.op_name = op_name
        self.op_type = op_type
        self.input_index = input_index
        self.act_slot = QuantSlot("activation", schemes=[JOIN_SCHEME], bits_range=(JOIN_BITS, JOIN_BITS))
        self.act_slot.freeze_search_parameters()
        self.act_slot.set_fixed(JOIN_SCHEME, JOIN_BITS)  # never searched; the model's mode switches skip it
        self.set_signed_only(True)
        object.__setattr__(self, "_producers", tuple(producers))
        object.__setattr__(self, "_sibling", sibling)
        #: Set by the exporter only: the marker this join's tensor goes through while the graph is traced.
        self.route: nn.Module | None = None

    @property
    def name(self) -> str:
        """``<op name>.in<k>``: the joined op and which of its inputs this is."""
        return f"{self.op_name}.in{self.input_index}"

    @property
    def bits(self) -> int:
        return self.act_slot.bits_range[1]

    @property
    def active(self) -> bool:
        """Whether a convolution feeding this op is quantized now (else the join is the identity)."""
        return any(s.mode != "float" for p in self._producers for s in p.slots)

    def shared_slot(self) -> QuantSlot | None:
        """The sibling's activation slot when it quantizes this tensor on a uniform grid at least as wide."""
        slot = getattr(self._sibling, "act_slot", None)
        if (isinstance(slot, QuantSlot) and slot.mode == "fixed" and slot.fixed_scheme == JOIN_SCHEME
                and slot.fixed_bits >= self.bits):
            return slot
        return None

    def quantizer(self) -> QuantSlot | None:
        """The slot this operand goes through now: the shared one, the join's own, or None (inactive)."""
        if not self.active:
            return None
        shared = self.shared_slot()
        return shared if shared is not None else self.act_slot

    def forward(self, x: Tensor) -> Tensor:
        if self.route is not None:
            return self.route(x)
        slot = self.quantizer()
        return x if slot is None else slot(x)

    def set_signed_only(self, signed_only: bool) -> None:
        """Signed codes even for non-negative data (a runtime whose int8 activations are symmetric only)."""
        self.act_slot.candidates[JOIN_SCHEME].signed_only.fill_(bool(signed_only))

    def extra_repr(self) -> str:
        return f"op={self.op_name}, bits={self.bits}, sibling={getattr(self._sibling, 'layer_name', None)}"


def ignore_missing_join_state(model: nn.Module, incompatible) -> None:
    """``load_state_dict`` post-hook: a model saved before joins existed has no state for them; they then
    start uncalibrated (their first batch sets the step) instead of failing the load."""
    prefixes = tuple(f"{name}." for name, m in model.named_modules() if isinstance(m, QuantJoin))
    if prefixes:
        incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not k.startswith(prefixes)]


def _join_type(gm: fx.GraphModule, node: fx.Node) -> str | None:
    if node.op == "call_module":
        return _JOIN_MODULES.get(type(gm.get_submodule(node.target)))
    if node.op in ("call_function", "call_method"):
        try:
            return _JOIN_FUNCTIONS.get(node.target)
        except TypeError:
            return None
    return None


def _passes(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), (*_PASS_MODULES, QuantJoin))
    if node.op in ("call_function", "call_method"):
        try:
            return node.target in _PASS_FUNCTIONS
        except TypeError:
            return False
    return False


def _quant_op(gm: fx.GraphModule, node: fx.Node) -> QuantOp | None:
    if node.op != "call_module":
        return None
    module = gm.get_submodule(node.target)
    return module if isinstance(module, QuantOp) else None


def _is_activation(arg) -> bool:
    return isinstance(arg, fx.Node) and arg.op != "get_attr"


def _operands(node: fx.Node, op_type: str) -> list[fx.Node]:
    """The activation operands a join quantizes: both summands of an add, every input of a concat (none
    if one is a constant), the input of a pool or mean."""
    if op_type == "add":
        args = [a for a in node.args[:2] if _is_activation(a)]
        return args if len(args) == 2 else []
    if op_type == "cat":
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        if not isinstance(tensors, (list, tuple)) or not all(_is_activation(t) for t in tensors):
            return []
        return list(dict.fromkeys(tensors))
    first = node.args[0] if node.args else node.kwargs.get("input")
    return [first] if isinstance(first, fx.Node) and first.op != "get_attr" else []


def insert_joins(gm: fx.GraphModule, owner_of, root: str) -> list[QuantJoin]:
    """Put a :class:`QuantJoin` on each operand of every joined op that a quantized conv feeds; return them.

    ``owner_of(node)`` is the module path that owns a call (the rule the cost models name ops by);
    the joins are added as submodules of ``gm.<root>``.
    """
    producers: dict[fx.Node, tuple[QuantOp, ...]] = {}
    counters: dict = {}
    joins: list[QuantJoin] = []

    def convs_feeding(node) -> tuple[QuantOp, ...]:
        if not isinstance(node, fx.Node):
            return ()
        if node in producers:
            return producers[node]
        op = _quant_op(gm, node)
        if op is not None:
            found = (op,) if op.op_type.startswith("conv") else ()
        elif _passes(gm, node):
            found = convs_feeding(node.args[0] if node.args else None)
        elif _join_type(gm, node) is not None:
            kind = _join_type(gm, node)
            found = tuple(dict.fromkeys(p for a in _operands(node, kind) for p in convs_feeding(a)))
        else:
            found = ()
        producers[node] = found
        return found

    for node in list(gm.graph.nodes):
        op_type = _join_type(gm, node)
        if op_type is None:
            continue
        owner = node.target if node.op == "call_module" else owner_of(node)
        operands = _operands(node, op_type)
        inputs: list = []
        fx.node.map_arg((node.args, node.kwargs), inputs.append)
        if any(_is_activation(a) for a in inputs):  # counted as the float recorder counts (activations only)
            name = op_layer_name(owner, None, op_type, counters)
        if not operands:
            continue
        feeding = convs_feeding(node)
        if not feeding:
            continue
        if not hasattr(gm, root):
            gm.add_module(root, nn.Module())
        for i, operand in enumerate(operands):
            source, reader = _before_moves(gm, operand, node)
            join = QuantJoin(name, op_type, feeding, _sibling(gm, source), i)
            path = f"{root}.{_safe(name)}_in{i}"
            gm.get_submodule(root).add_module(path.split(".", 1)[1], join)
            with gm.graph.inserting_before(reader):
                quantized = gm.graph.call_module(path, (source,))
            if reader is node and len(operands) == 2 and operands[0] is operands[1]:
                _replace_arg(node, i, quantized)
            else:
                reader.replace_input_with(source, quantized)
            joins.append(join)
    if joins:
        gm.graph.lint()
        gm.recompile()
    return joins


def _moves_elements(node: fx.Node) -> bool:
    """Slicing, or zero padding: ops that commute with a per-tensor quantizer whose grid holds zero."""
    if node.op == "call_function" and node.target is operator.getitem:
        return isinstance(node.args[0], fx.Node) and not isinstance(node.args[1], fx.Node)
    if node.op == "call_function" and node.target is F.pad:
        mode = node.kwargs.get("mode", node.args[2] if len(node.args) > 2 else "constant")
        value = node.kwargs.get("value", node.args[3] if len(node.args) > 3 else None)
        return mode == "constant" and not value
    return False


def _before_moves(gm: fx.GraphModule, operand: fx.Node, user: fx.Node) -> tuple[fx.Node, fx.Node]:
    """(the tensor to quantize, the node that reads it): for an operand that only slices or zero-pads
    another tensor (a ResNet option-A shortcut), that tensor, read by the first such op. Quantizing it
    there gives the same values, and lets it share the Q/DQ of the conv that reads it too."""
    reader, node = user, operand
    while _moves_elements(node) and len(node.users) == 1:
        reader, node = node, node.args[0]
    return node, reader


def _sibling(gm: fx.GraphModule, operand: fx.Node) -> QuantOp | None:
    """A QuantOp that reads ``operand``'s tensor (through identities such as an identity shortcut) as its
    input activation."""
    base = operand
    while base.op == "call_module" and isinstance(gm.get_submodule(base.target), _IDENTITIES) and base.args:
        base = base.args[0]
    same, frontier = {base}, [base]
    while frontier:  # every identity of the tensor: its users read the same values
        node = frontier.pop()
        for user in node.users:
            if user.op == "call_module" and isinstance(gm.get_submodule(user.target), _IDENTITIES) and user not in same:
                same.add(user)
                frontier.append(user)
    for node in same:
        for user in node.users:
            op = _quant_op(gm, user)
            if op is not None and not op.weight_only and user.args and user.args[0] is node:
                return op
    return None


def _replace_arg(node: fx.Node, index: int, new: fx.Node) -> None:
    """``x + x``: both operands are the same node; replace the one at ``index`` only."""
    args = list(node.args)
    args[index] = new
    node.args = tuple(args)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)
