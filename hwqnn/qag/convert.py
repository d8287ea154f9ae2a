"""QAG: turn any float model into a quantizable one with a QuantSlot on every GEMM.

``convert(model, example_input)``:

1. replaces the modules whose GEMMs PyTorch fuses (``nn.MultiheadAttention``, ``nn.RNN``/``GRU``/``LSTM``)
   and ``nn.Embedding`` by QAG modules that run them from sliceable calls with slots, and re-classes
   ``nn.TransformerEncoder``/``EncoderLayer`` so that their fused fast path is never taken;
2. traces the model with torch.fx (optional arguments the example does not pass are traced as their
   defaults) and rewrites the graph (``rewrite.py``): Conv*/ConvTranspose*/Linear modules become
   :class:`QuantModuleOp`, functional conv/linear/matmul/bmm/addmm/baddbmm/einsum/SDPA calls become
   QuantOps; modules fx keeps as calls (torch.nn containers, hooked submodules) are converted inside by
   module swap; code fx cannot trace (an untraceable root or submodule, a ``torch.fx.wrap`` function, a
   Conv/Linear subclass with its own forward) runs as a :class:`~hwqnn.qag.region.QuantRegion`, which
   routes each of its GEMM calls through a QuantOp;
3. runs the example input once to record each layer's workload row in execution order (regions create
   their QuantOps on this run), and lists every GEMM that still runs outside a slot, with its owner and
   the reason. Such ops stay float with a warning, or raise a ConversionError with ``strict=True``.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import warnings
from collections.abc import Callable, Iterable, Sequence

import pandas as pd
import torch
import torch.fx as fx
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from cost_models import Workload, WorkloadError, float_tensor_bytes, record_workload

from ..errors import ConversionError, PolicyError
from ..policy import FLOAT, LayerPolicy, Policy
from .attention import SlotFactory
from .float_ops import FloatOp, FloatOpFinder, graph_float_ops, merge_owners
from .joins import QuantJoin, ignore_missing_join_state, insert_joins
from .ops import QuantOp
from .region import QuantRegion, wrap_forward
from .rewrite import OPS_ROOT, owner_path, rewrite_graph
from .slot import QuantSlot, SchemeLogits
from .swap import (
    QAG_LEAVES,
    convert_leaves,
    copy_hooks,
    is_converted,
    is_library_leaf,
    make_slot_factory,
    module_op,
    replace_compound_modules,
    swap_modules,
)
from .trace import trace_with_fallback

__all__ = ["convert", "apply_policy", "QuantizedModel", "OPS_ROOT"]

class QuantizedModel(nn.Module):
    """A converted model: runs like the float model, and exposes its quantized layers and slots.

    ``float_ops`` lists, as readable strings, every GEMM that runs outside a slot ("op in 'owner' (reason)");
    ``workload.float_ops`` lists the ops that stay float by design (softmax, normalization) for the cost
    models; ``fallback_modules`` the submodules fx could not trace ("" for the root)."""

    def __init__(self, net: nn.Module, batch_size: int):
        super().__init__()
        self.net = net
        #: Regions that run the forward of modules fx could not trace (kept here, not inside those modules).
        self.regions = nn.ModuleDict()
        self.example_batch_size = batch_size
        self._op_paths: list[str] = []
        self.workload: Workload | None = None
        self.fallback_modules: list[str] = []
        self.float_ops: list[str] = []
        self.register_load_state_dict_post_hook(ignore_missing_join_state)

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)

    # --- introspection -------------------------------------------------------------------------
    def quant_ops(self) -> list[QuantOp]:
        """Quantized layers in execution order."""
        return [self.get_submodule(p) for p in self._op_paths]

    @property
    def layer_names(self) -> list[str]:
        return [op.layer_name for op in self.quant_ops()]

    def layer(self, name: str) -> QuantOp:
        for op in self.quant_ops():
            if op.layer_name == name:
                return op
        raise PolicyError(f"model has no quantized layer '{name}'; layers: {self.layer_names}")

    def joins(self) -> list[QuantJoin]:
        """The quantizers on the inputs of residual adds and pools that convs feed (see ``qag.joins``)."""
        return [m for m in self.modules() if isinstance(m, QuantJoin)]

    def slots(self) -> list[tuple[str, str, QuantSlot]]:
        """(layer name, "weight" | "activation", slot) for every slot, in execution order (a weight-only
        op such as an embedding lists its weight slot only)."""
        out = []
        for op in self.quant_ops():
            out.append((op.layer_name, "weight", op.weight_slot))
            if not op.weight_only:
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

    def set_policy(self, policy: Policy) -> QuantizedModel:
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
                    sides += [scheme, slot.candidates[scheme].effective_bits(round(float(slot.continuous_bits().detach())))]
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


def _as_args(example_input) -> tuple:
    return example_input if isinstance(example_input, tuple) else (example_input,)


@torch.no_grad()
def _record(qmodel: QuantizedModel, example_input, float_ops_of_model: list) -> None:
    """Run the example once: every QuantOp records its workload row (regions create theirs on the way), and
    GEMM calls that run outside any QuantOp are collected; then regions are frozen."""
    rows: list = []
    ops = [m for m in qmodel.modules() if isinstance(m, QuantOp)]
    regions = [m for m in qmodel.modules() if isinstance(m, QuantRegion)]
    for op in ops:
        op.recorder, op.record_batch_size = rows, qmodel.example_batch_size
    for region in regions:
        region.recorder, region.record_batch_size = rows, qmodel.example_batch_size
    # Global module hooks (removed below), so that QuantOps the regions create on this run are seen too.
    stack: list[tuple[str, nn.Module]] = []
    paths_by_id: dict[int, str] = {}

    def path_of(module: nn.Module) -> str:
        if id(module) not in paths_by_id:
            paths_by_id.update({id(m): "" if p == "net" else p.removeprefix("net.") for p, m in qmodel.named_modules()})
        return paths_by_id.get(id(module), "")

    weight_inputs: dict[tuple[int, int], int] = {}  # (storage, offset) -> bytes of each quantized weight view

    def note_weight(module: nn.Module, args: tuple) -> None:
        if isinstance(module, QuantSlot) and module.role == "weight" and args and torch.is_tensor(args[0]):
            t = args[0]
            weight_inputs[(t.untyped_storage().data_ptr(), t.storage_offset())] = t.numel() * t.element_size()

    handles = [register_module_forward_pre_hook(lambda m, a: stack.append((path_of(m), m)) and None),
               register_module_forward_hook(lambda m, a, o: stack.pop() and None),
               register_module_forward_pre_hook(note_weight)]
    traced = isinstance(qmodel.net, fx.GraphModule)
    finder = FloatOpFinder(stack)
    was_training = qmodel.training
    qmodel.eval()
    try:
        with finder:
            qmodel(*_as_args(example_input))
    except Exception as exc:
        raise ConversionError(f"the converted model failed on the example input: {type(exc).__name__}: {exc}") from exc
    finally:
        for handle in handles:  # only QAG's own hooks: the user's stay
            handle.remove()
        for op in (m for m in qmodel.modules() if isinstance(m, QuantOp)):
            op.recorder = None
        for region in regions:
            region.recorder, region.frozen = None, True
        qmodel.train(was_training)
    ops_by_path = {path: op for path, op in qmodel.named_modules() if isinstance(op, QuantOp)}
    paths = {op.layer_name: path for path, op in ops_by_path.items()}
    qmodel._op_paths = [paths[name] for name in dict.fromkeys(row.name for row in rows)]
    joined = {join.op_name for join in qmodel.joins()}  # the recorder's marks, kept where QAG really joined
    float_ops_of_model = [op if op.int_bits is None or op.name in joined else dataclasses.replace(op, int_bits=None)
                          for op in float_ops_of_model]
    qmodel.workload = Workload.from_layers(rows, float_ops_of_model, float_param_bytes(qmodel, weight_inputs))
    # A quantized layer the example never ran (a branch inside a leaf) would run with float slots that no
    # policy reaches: report it with the ops that ran outside any QuantSlot.
    ran = set(qmodel._op_paths)
    # A layer whose weight is a layer that ran (tied embeddings: T5's `shared`) is an alias, not a layer.
    ran_weights = {id(getattr(ops_by_path[p], "weight", None)) for p in ran} - {id(None)}
    not_run = [str(FloatOp(op.op_type, op.layer_name, "not run by the example input"))
               for path, op in ops_by_path.items()
               if path not in ran and id(getattr(op, "weight", None)) not in ran_weights]
    found = merge_owners(graph_float_ops(qmodel.net) if traced else [], finder.found)
    qmodel.float_ops = list(dict.fromkeys(str(f) for f in found)) + not_run


def _run_float_model(model: nn.Module, args: tuple) -> list:
    """Run the float model once (eval, no grad) as a check; returns its float ops (softmax, norms) for the
    workload. The caller's train/eval modes are restored."""
    modes = {module: module.training for module in model.modules()}
    try:
        try:
            return record_workload(model, args)[1]
        except WorkloadError:  # the recorder could not describe a call: still check that the model runs
            with torch.no_grad():
                model.eval()(*args)
            return []
    except Exception as exc:
        raise ConversionError(
            f"the float model fails on the example input ({type(exc).__name__}: {exc}); "
            f"pass an input of the shape the model expects") from exc
    finally:
        for module, training in modes.items():
            module.training = training


def _convert_structure(net: nn.Module, make_slots: SlotFactory, regions: dict, leaf_modules, autowrap_functions,
                       n_args: int, joins: bool = True):
    """Trace and rewrite ``net`` (or module-swap it when it cannot be traced); returns (converted module,
    leaf-fallback paths, the root's tracing error or None). Regions it creates go into ``regions``."""
    if is_library_leaf(net):  # a torch.nn container such as nn.Transformer: fx would keep it whole anyway
        swap_modules(net, "", make_slots, regions)
        return net, [], None
    gm, fallbacks, root_error = trace_with_fallback(net, (*QAG_LEAVES, *leaf_modules), autowrap_functions, n_args)
    if gm is None:
        warnings.warn(
            f"QAG: the forward of {type(net).__name__} itself cannot be traced by torch.fx ({root_error}); "
            f"falling back to module swap, and its own GEMM calls run through QuantOps in call order "
            f"(eager: a branch the example input does not take stays float)", stacklevel=3)
        swap_modules(net, "", make_slots, regions)
        wrap_forward(net, "", make_slots, regions)
        return net, [""], root_error
    rewrite_graph(gm, net, make_slots, lambda path, module: module_op(path, module, make_slots))
    if joins:
        insert_joins(gm, owner_path, OPS_ROOT)
    convert_leaves(gm, make_slots, regions)
    for path in fallbacks:  # untraceable submodules: their own GEMM calls get QuantOps too
        leaf = gm.get_submodule(path)
        if not is_converted(leaf) and path not in regions:
            wrap_forward(leaf, path, make_slots, regions)
    copy_hooks(net, gm)
    return gm, fallbacks, None


def convert(
    model: nn.Module,
    example_input,
    *,
    schemes: Sequence[str] | None = None,
    bits_range: tuple[int, int] = (2, 8),
    scheme_sharing: str = "layer",
    leaf_modules: Iterable[type] = (),
    autowrap_functions: Iterable[Callable] = (),
    strict: bool = False,
    joins: bool = True,
) -> QuantizedModel:
    """Convert a float model into a :class:`QuantizedModel` with every slot in float bypass.

    The input model is not modified (its forward hooks are kept in the copy). ``schemes`` are the
    candidates of every slot (default: all registered); ``scheme_sharing`` is ``"layer"`` (own logits per
    slot) or ``"model"``. GEMMs that would stay float are listed in ``float_ops`` with a warning, or, with
    ``strict=True``, raise a ConversionError listing them. ``joins=False`` leaves the inputs of residual adds
    and pools unquantized (see :mod:`hwqnn.qag.joins`; for a model trained that way).
    """
    if not isinstance(model, nn.Module):
        raise ConversionError(f"convert expects an nn.Module, got {type(model).__name__}")
    if scheme_sharing not in ("layer", "model"):
        raise ConversionError(f"scheme_sharing must be 'layer' or 'model', got {scheme_sharing!r}")
    args = _as_args(example_input)
    if not args or not torch.is_tensor(args[0]) or args[0].dim() == 0:
        raise ConversionError("example_input must be a batched tensor (or a tuple whose first item is one)")
    float_ops_of_model = _run_float_model(model, args)
    make_slots = make_slot_factory(schemes, bits_range)
    # Traced in eval mode, as the float check ran: code that branches on self.training (aux heads, functional
    # dropout) is baked into the graph with its inference path, not its training path.
    net = replace_compound_modules(copy.deepcopy(model).eval(), make_slots)
    regions: dict[str, QuantRegion] = {}
    converted, fallbacks, root_error = _convert_structure(net, make_slots, regions, leaf_modules, autowrap_functions,
                                                          len(args), joins)
    qmodel = QuantizedModel(converted, int(args[0].shape[0]))
    qmodel.regions.update({re.sub(r"[^0-9a-zA-Z_]", "_", path) or "root": region for path, region in regions.items()})
    qmodel.train(model.training)
    qmodel.fallback_modules = fallbacks
    _record(qmodel, example_input, float_ops_of_model)
    if not qmodel._op_paths:
        reason = f" (tracing failed: {root_error})" if root_error else ""
        if qmodel.float_ops:
            reason += f"; it has ops QAG cannot put slots on: {', '.join(qmodel.float_ops)}"
        raise ConversionError(f"{type(model).__name__} has no conv, linear or matmul op that QAG can quantize{reason}")
    if qmodel.float_ops:
        listed = "; ".join(qmodel.float_ops)
        if strict:
            raise ConversionError(f"strict conversion of {type(model).__name__}: {len(qmodel.float_ops)} GEMM op(s) "
                                  f"would stay float: {listed}. Make them traceable (or pass leaf_modules / "
                                  f"autowrap_functions), or convert without strict to keep them float")
        warnings.warn(f"QAG: these quantizable ops run outside any QuantSlot and stay float: {listed}", stacklevel=2)
    if scheme_sharing == "model":
        qmodel.share_scheme_logits()
    return qmodel.set_float()


def apply_policy(model: nn.Module, policy: Policy | str, example_input, **convert_kwargs) -> QuantizedModel:
    """Build the fixed quantized model of ``policy`` (a Policy, a YAML path or a uniform string like 'w4a8')."""
    if isinstance(policy, str):
        policy = Policy.load(policy) if policy.endswith((".yaml", ".yml")) else Policy.uniform(policy)
    if isinstance(model, QuantizedModel):
        return model.set_policy(policy)
    qmodel = convert(model, example_input, **convert_kwargs)
    return qmodel.set_policy(policy)


def float_param_bytes(qmodel: QuantizedModel, weight_inputs: dict[tuple[int, int], int]) -> float:
    """Bytes of the float tensors a device stores whatever the policy: every floating parameter and buffer,
    less the quantizers' own state and the parameter views the weight slots quantize (``weight_inputs``,
    keyed by storage and offset, so the q/k/v slices of one fused projection count once each)."""
    slots = [m for m in qmodel.modules() if isinstance(m, QuantSlot)]  # the joins' own slots included
    state = [t for slot in slots for t in list(slot.parameters()) + list(slot.buffers())]
    params = {p.untyped_storage().data_ptr() for p in qmodel.parameters() if p.is_floating_point()}
    quantized = sum(size for (storage, _), size in weight_inputs.items() if storage in params)
    return float(max(0, float_tensor_bytes(qmodel, state) - quantized))
