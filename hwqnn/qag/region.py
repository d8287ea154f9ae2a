"""Regions: code fx could not trace, run eagerly with each GEMM call routed through its own QuantOp.

Some code cannot be traced (data-dependent control flow in a model's forward, functions registered with
``torch.fx.wrap`` such as torchvision's ``shifted_window_attention``). A :class:`QuantRegion` runs such
a callable under a ``TorchFunctionMode`` that sends every conv/linear/matmul/addmm/baddbmm/einsum/SDPA
call to a QuantOp. The QuantOps are created on the recording run of ``convert`` (in call order, named
like ``extract_workload`` names them: owner module path, op type, a counter per forward pass); after it
the region is frozen, so the model's slots are fixed before any optimizer sees them.

A region that runs a module's forward is held by the QuantizedModel (``qmodel.regions``), not by that
module; one that runs a wrapped function is called from the traced graph like any QuantOp.
"""

from __future__ import annotations

import re
import types
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.overrides import TorchFunctionMode

from cost_models import (
    ADD_MATMUL_FUNCTIONS,
    QUANTIZABLE_FUNCTIONS,
    einsum_operands,
    is_einsum_contraction,
    op_layer_name,
)

from .attention import QuantAttentionCore, QuantCompound, SlotFactory
from .ops import QuantEinsumOp, QuantFunctionOp, QuantOp, add_matmul

#: The plain function each intercepted GEMM call runs as (methods and aliases normalized).
_GEMM_FN: dict[object, Callable] = {
    F.conv1d: F.conv1d, F.conv2d: F.conv2d, F.conv3d: F.conv3d, F.conv_transpose1d: F.conv_transpose1d,
    F.conv_transpose2d: F.conv_transpose2d, F.conv_transpose3d: F.conv_transpose3d, F.linear: F.linear,
    torch.matmul: torch.matmul, Tensor.matmul: torch.matmul, Tensor.__matmul__: torch.matmul,
    torch.bmm: torch.bmm, Tensor.bmm: torch.bmm, torch.mm: torch.mm, Tensor.mm: torch.mm,
}
_ADD_MATMUL_FN = {torch.addmm: torch.addmm, Tensor.addmm: torch.addmm, torch.baddbmm: torch.baddbmm,
                  Tensor.baddbmm: torch.baddbmm}


class QuantRegion(QuantCompound):
    """Runs ``fn`` with its GEMM calls quantized (see the module docstring).

    ``owner`` is the module path that owns calls made directly by ``fn``; ``paths`` maps the modules
    ``fn`` may call (by id) to their paths, so calls made inside them are named after them.
    """

    def __init__(self, fn: Callable, owner: str, make_slots: SlotFactory, paths: dict[int, str] | None = None):
        super().__init__()
        self.fn = fn
        self.owner = owner
        self.make_slots = make_slots
        self.paths = paths or {}
        self.ops = nn.ModuleDict()
        self.frozen = False
        self.recorder: list | None = None
        self.record_batch_size = 1
        self._warned: set[str] = set()

    def forward(self, *args, **kwargs):
        mode = _RegionMode(self)
        stack: list[nn.Module] = mode.stack
        pre = register_module_forward_pre_hook(lambda m, a: stack.append(m) and None)
        post = register_module_forward_hook(lambda m, a, o: stack.pop() and None)
        try:
            with mode:
                return self.fn(*args, **kwargs)
        finally:
            pre.remove()
            post.remove()

    def op_for(self, key: str, build: Callable[[], nn.Module]) -> nn.Module | None:
        """The QuantOp of the ``key``-th call, built on the recording run; None once frozen and unknown."""
        slot_key = re.sub(r"[^0-9a-zA-Z_]", "_", key)
        if slot_key in self.ops:
            return self.ops[slot_key]
        if self.frozen:
            if key not in self._warned:
                self._warned.add(key)
                warnings.warn(f"QAG: '{key}' was not called when the model was converted; it runs in float "
                              "(convert with an example input that takes this path)", stacklevel=3)
            return None
        op = build()
        for module in op.modules():
            if isinstance(module, QuantOp):
                module.recorder, module.record_batch_size = self.recorder, self.record_batch_size
        self.ops[slot_key] = op
        return op


class _RegionMode(TorchFunctionMode):
    """Routes GEMM calls made by the region's code itself (not inside a QuantOp or a QAG module) to QuantOps."""

    def __init__(self, region: QuantRegion):
        super().__init__()
        self.region = region
        self.stack: list[nn.Module] = []
        self.counters: dict = {}
        self.owner_module: nn.Module | None = None

    def _owner(self) -> str | None:
        """The owning module's path, or None when the call is made inside a QuantOp or a QAG module."""
        if any(isinstance(m, (QuantOp, QuantCompound)) for m in self.stack):
            return None
        for module in reversed(self.stack):
            if id(module) in self.region.paths:
                self.owner_module = module
                return self.region.paths[id(module)]
        self.owner_module = self.region.__dict__.get("_owner_module")  # the module whose forward this is
        return self.region.owner

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            route = _ROUTES.get(func)
        except TypeError:
            route = None
        owner = self._owner() if route is not None else None
        if owner is None:
            return func(*args, **kwargs)
        routed = route(self, owner, func, args, kwargs)
        return func(*args, **kwargs) if routed is NotImplemented else routed

    def name(self, owner: str, op_type: str, by_module: bool = False) -> str:
        """``extract_workload``'s rule; with ``by_module``, a Conv/Linear (subclass) names its call by its path."""
        return op_layer_name(owner, self.owner_module if by_module else None, op_type, self.counters)

    def slots_for(self, w, op_type: str):
        if isinstance(w, nn.Parameter) and op_type != "matmul":
            axis = 1 if op_type.startswith("conv_transpose") else 0
            return (*self.region.make_slots("weight", w.shape[axis], axis), True)
        is_param = isinstance(w, nn.Parameter)
        return (*self.region.make_slots("weight" if is_param else "activation", None, 0), is_param)


def _route_gemm(mode: _RegionMode, owner: str, func, args, kwargs):
    op_type = QUANTIZABLE_FUNCTIONS[func]
    args, kwargs = list(args), dict(kwargs)
    x = args.pop(0) if args else kwargs.pop("input")
    w = args.pop(0) if args else kwargs.pop("weight", kwargs.pop("other", kwargs.pop("mat2", None)))
    if not (torch.is_tensor(x) and torch.is_tensor(w)):
        return NotImplemented
    name = mode.name(owner, op_type, by_module=True)

    def build() -> nn.Module:
        w_slot, a_slot, is_param = mode.slots_for(w, op_type)
        return QuantFunctionOp(name, op_type, _GEMM_FN[func], w_slot, a_slot, weight_is_param=is_param)

    op = mode.region.op_for(name, build)
    return NotImplemented if op is None else op(x, w, *args, **kwargs)


def _route_add_matmul(mode: _RegionMode, owner: str, func, args, kwargs):
    if len(args) < 3:
        return NotImplemented
    name = mode.name(owner, "matmul")

    def build() -> nn.Module:
        w_slot, a_slot, is_param = mode.slots_for(args[2], "matmul")
        return QuantFunctionOp(name, "matmul", add_matmul(_ADD_MATMUL_FN[func]), w_slot, a_slot,
                               weight_is_param=is_param)

    op = mode.region.op_for(name, build)
    return NotImplemented if op is None else op(args[1], args[2], args[0], *args[3:], **kwargs)


def _route_einsum(mode: _RegionMode, owner: str, func, args, kwargs):
    equation, operands = einsum_operands(args, kwargs)
    if not is_einsum_contraction(equation, operands):
        return NotImplemented
    name = mode.name(owner, "matmul")

    def build() -> nn.Module:
        w_slot, a_slot, is_param = mode.slots_for(operands[1], "matmul")
        return QuantEinsumOp(name, equation, w_slot, a_slot, is_param)

    op = mode.region.op_for(name, build)
    return NotImplemented if op is None else op(*operands)


def _route_sdpa(mode: _RegionMode, owner: str, func, args, kwargs):
    name = mode.name(owner, "sdpa")
    op = mode.region.op_for(name, lambda: QuantAttentionCore(name, mode.region.make_slots))
    return NotImplemented if op is None else op(*args, **kwargs)


_ROUTES: dict[object, Callable] = {
    **dict.fromkeys(QUANTIZABLE_FUNCTIONS, _route_gemm),
    **dict.fromkeys(ADD_MATMUL_FUNCTIONS, _route_add_matmul),
    torch.einsum: _route_einsum,
    F.scaled_dot_product_attention: _route_sdpa,
}
assert set(QUANTIZABLE_FUNCTIONS) <= set(_GEMM_FN), "every intercepted GEMM needs its plain function"


class _ClassForward:
    """``type(module).forward`` bound to ``module`` (a bound method would deep-copy as ``module.forward``,
    which the region replaces)."""

    def __init__(self, module: nn.Module):
        self.module = module

    def __call__(self, *args, **kwargs):
        return type(self.module).forward(self.module, *args, **kwargs)


def wrap_forward(module: nn.Module, owner: str, make_slots: SlotFactory, regions: dict[str, QuantRegion]) -> None:
    """Run ``module``'s own forward as a region (calls inside its submodules are named after their paths).

    The region goes into ``regions`` (by ``owner``), which the QuantizedModel holds: it is not added to
    ``module``, whose children its forward may iterate (``nn.Sequential``).
    """
    prefix = f"{owner}." if owner else ""
    paths = {id(m): f"{prefix}{p}" if p else owner for p, m in module.named_modules()}
    region = QuantRegion(_ClassForward(module), owner, make_slots, paths)
    object.__setattr__(region, "_owner_module", module)  # a plain reference, not a submodule (no cycle)
    object.__setattr__(module, "forward", region.__call__)  # an instance attribute, not a submodule
    regions[owner] = region


def is_wrapped_function(target) -> bool:
    """A plain Python function fx kept as one call (``torch.fx.wrap``, ``autowrap_functions``): run as a region."""
    module = getattr(target, "__module__", None) or ""
    return isinstance(target, types.FunctionType) and module.split(".")[0] not in ("torch", "operator", "builtins",
                                                                                   "math", "hwqnn", "cost_models")
