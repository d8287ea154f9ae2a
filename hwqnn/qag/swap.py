"""Module-level conversion: build slots, swap Conv/Linear modules for QuantModuleOps, replace the modules
whose GEMMs PyTorch fuses (attention, recurrent layers, embeddings) before tracing, and convert inside
the modules the traced graph calls whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch.fx as fx
from torch import nn

from .attention import COMPOSITE_CLASSES, QuantCompound, QuantMultiheadAttention, SlotFactory
from .ops import SUPPORTED_MODULES, QuantEmbeddingOp, QuantModuleOp, QuantOp, is_plain_layer
from .recurrent import QuantRNN
from .region import QuantRegion, wrap_forward
from .slot import QuantSlot


@dataclass(frozen=True)
class make_slot_factory:  # noqa: N801  (used as a function; a class so that models holding it pickle)
    """``make_slots(weight_role, channels, axis)``: a (weight-side, activation) QuantSlot pair with the
    conversion's candidate schemes and bit range."""

    schemes: Sequence[str] | None
    bits_range: tuple[int, int]

    def __call__(self, weight_role: str, channels: int | None, axis: int) -> tuple[QuantSlot, QuantSlot]:
        weight_slot = QuantSlot(weight_role, channels=channels, channel_axis=axis, schemes=self.schemes,
                                bits_range=self.bits_range)
        return weight_slot, QuantSlot("activation", schemes=self.schemes, bits_range=self.bits_range)


def module_op(name: str, module: nn.Module, make_slots: SlotFactory) -> QuantModuleOp:
    transpose = isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    axis = 1 if transpose else 0
    return QuantModuleOp(name, module, *make_slots("weight", module.weight.shape[axis], axis))


def is_converted(module: nn.Module) -> bool:
    return isinstance(module, (QuantOp, QuantCompound))


def swap_modules(root: nn.Module, prefix: str, make_slots: SlotFactory, regions: dict[str, QuantRegion],
                 done: dict[int, nn.Module] | None = None) -> None:
    """Module swap (inside modules fx keeps as calls): replace every supported child module in place (a
    module shared by several parents gets one QuantModuleOp); a Conv/Linear subclass with its own forward
    runs as a region (added to ``regions``)."""
    done = {} if done is None else done
    for child_name, child in list(root.named_children()):
        path = f"{prefix}.{child_name}" if prefix else child_name
        if is_converted(child):
            continue
        if is_plain_layer(child):
            if id(child) not in done:
                done[id(child)] = module_op(path, child, make_slots)
            setattr(root, child_name, done[id(child)])
        elif isinstance(child, SUPPORTED_MODULES) and id(child) not in done:  # its own forward: intercept it
            done[id(child)] = child
            wrap_forward(child, path, make_slots, regions)
        elif id(child) not in done:
            done[id(child)] = child
            swap_modules(child, path, make_slots, regions, done)


def compound_replacement(path: str, module: nn.Module, make_slots: SlotFactory) -> nn.Module | None:
    """The QAG module replacing a module whose GEMMs run fused (before tracing), or None."""
    kind = type(module)
    if kind is nn.MultiheadAttention:
        return QuantMultiheadAttention(path, module, make_slots)
    if kind in (nn.RNN, nn.GRU, nn.LSTM):
        return QuantRNN(path, module, make_slots)
    if kind is nn.Embedding:
        return QuantEmbeddingOp(path, module, *make_slots("weight", module.num_embeddings, 0))
    return None


def replace_compound_modules(root: nn.Module, make_slots: SlotFactory, prefix: str = "",
                              done: dict[int, nn.Module] | None = None) -> nn.Module:
    """Replace fused-GEMM modules everywhere under ``root`` (root included); returns the new root.

    A module reachable under several paths (tied embeddings) gets one replacement, named by its first path.
    """
    done = {} if done is None else done
    if id(root) in done:
        return done[id(root)]
    replaced = compound_replacement(prefix, root, make_slots)
    done[id(root)] = root if replaced is None else replaced
    if replaced is not None:
        return replaced
    if type(root) in COMPOSITE_CLASSES:
        root.__class__ = COMPOSITE_CLASSES[type(root)]  # same parameters, fast path off
    for name, child in list(root.named_children()):
        new = replace_compound_modules(child, make_slots, f"{prefix}.{name}" if prefix else name, done)
        if new is not child:
            setattr(root, name, new)
    return root


#: fx keeps these as calls: QAG's own modules, and the re-classed torch.nn transformer layers.
QAG_LEAVES: tuple[type, ...] = (QuantOp, QuantCompound, *COMPOSITE_CLASSES.values())


def convert_leaves(gm: fx.GraphModule, make_slots: SlotFactory, regions: dict[str, QuantRegion]) -> None:
    """Module swap inside every module the graph calls as a whole (torch.nn containers such as
    nn.TransformerEncoder, fallback leaves, hooked modules)."""
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        module = gm.get_submodule(node.target)
        if is_converted(module) or is_plain_layer(module):
            continue
        if isinstance(module, SUPPORTED_MODULES):  # a Conv/Linear subclass with its own forward
            wrap_forward(module, node.target, make_slots, regions)
            continue
        swap_modules(module, node.target, make_slots, regions)
        if not is_library_leaf(module):  # a user module kept whole (hooked, leaf_modules): its own GEMM calls too
            wrap_forward(module, node.target, make_slots, regions)


def is_library_leaf(module: nn.Module) -> bool:
    """A torch.nn module (or a QAG module) whose forward fx does not trace into: converted by module swap."""
    if isinstance(module, (nn.Sequential, *SUPPORTED_MODULES)):
        return False  # fx traces these (a bare Linear root becomes a functional linear)
    return (is_converted(module) or type(module) in COMPOSITE_CLASSES.values()
            or type(module).__module__.startswith("torch.nn."))


def copy_hooks(source: nn.Module, target: nn.Module) -> None:
    """Carry the user's forward (pre-)hooks of the traced root over to the graph module."""
    for attr in ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
                 "_forward_hooks_with_kwargs", "_forward_hooks_always_called"):
        if hasattr(source, attr):
            getattr(target, attr).update(getattr(source, attr))
