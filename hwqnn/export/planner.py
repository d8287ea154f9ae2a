"""Decide, for every quantized slot, how its tensor will appear in ONNX (and why).

The decision is made on real tensors: each slot's input and output on the example batch are captured,
the output is the reference, and a representation is kept only if it reproduces that reference
(weights exactly; activations on all but an ``ACTIVATION_MISMATCH_LIMIT`` share of up to
``MAX_CHECKED`` sampled elements, which allows for ties rounded differently).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ExportError
from ..qag import QuantizedModel, QuantOp, QuantSlot
from ..quantizers import Scheme
from .containers import CONTAINERS, Container, choose_container
from .grids import (
    ACTIVATION_MISMATCH_LIMIT,
    IntegerGrid,
    activation_mismatch,
    from_affine,
    infer_constant_grid,
    reconstructs,
    same_grid,
    weight_codes,
)
from .lut import MAX_LEVELS, apply_steps, find_steps
from .markers import ConstantMarker, DynamicMarker
from .packing import SCALE_BYTES, code_bits, packed_nbytes
from .report import TensorExport

log = logging.getLogger(__name__)

SLOT_ATTRIBUTES = (("weight_slot", "weight"), ("act_slot", "activation"))
CONTAINERS_BY_NAME = {c.name: c for c in CONTAINERS}
#: Real activation values used to seed the threshold search (see ``lut.find_steps``).
MAX_PROBES = 4096
#: Elements (input, output pairs) on which an activation representation is checked.
MAX_CHECKED = 2**18


@dataclass
class TensorPlan:
    """One slot's export decision, with what the graph editor needs to carry it out."""

    tag: int
    op: QuantOp
    attribute: str
    record: TensorExport
    grid: IntegerGrid | None = None
    container: Container | None = None
    codes: np.ndarray | None = None
    marker: nn.Module | None = None
    weight_data_ptr: int | None = None
    lut: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class SlotCall:
    """One call of a slot on the example batch: its input and its (reference) output."""

    input: Tensor
    output: Tensor


def capture_slot_calls(model: QuantizedModel, example_input) -> tuple[dict[int, list[SlotCall]], object]:
    """Run the model once in eval mode; return each slot's calls (by slot id) and the model output."""
    captured: dict[int, list[SlotCall]] = {}

    def record(module: nn.Module, args: tuple, output: Tensor) -> None:
        captured.setdefault(id(module), []).append(SlotCall(args[0].detach(), output.detach()))

    slots = [slot for _, _, slot in model.slots()] + [join.act_slot for join in model.joins()]
    hooks = [slot.register_forward_hook(record) for slot in slots]
    try:
        with torch.no_grad():
            output = model(*(example_input if isinstance(example_input, tuple) else (example_input,)))
    except Exception as exc:
        raise ExportError(f"the quantized model fails on the example input ({type(exc).__name__}: {exc}); "
                          f"pass an input of the shape the model expects") from exc
    finally:
        for hook in hooks:
            hook.remove()
    return captured, output


def sample_elements(calls: list[SlotCall], limit: int = MAX_CHECKED) -> tuple[Tensor, Tensor]:
    """Up to ``limit`` (input, output) element pairs drawn from the calls (all of them if fewer).

    Elementwise representations are checked on these against the outputs the model really produced,
    so a quantizer that depends on the batch is caught as well.
    """
    inputs = torch.cat([c.input.reshape(-1) for c in calls]).float()
    outputs = torch.cat([c.output.reshape(-1) for c in calls]).float()
    if inputs.numel() > limit:
        index = torch.randint(inputs.numel(), (limit,), generator=torch.Generator().manual_seed(0))
        inputs, outputs = inputs[index], outputs[index]
    return inputs, outputs


def plan_tensors(model: QuantizedModel, captured: dict[int, list[SlotCall]], *, int4: bool, opset: int,
                 activation_type: str | None = None) -> list[TensorPlan]:
    """One :class:`TensorPlan` per slot, in execution order (then the joins' own quantizers).

    ``activation_type`` (``"int8"``/``"uint8"``): every 8-bit activation Q/DQ goes into that type, a zero
    point shifting its grid there (see ``DeploymentSpec.activation_type``); None: its natural container."""
    plans = []
    for op in model.quant_ops():
        for attribute, role in SLOT_ATTRIBUTES:
            slot: QuantSlot = getattr(op, attribute)
            constant = role == "weight" and op.weight_is_param
            calls = captured.get(id(slot), [])
            plan = TensorPlan(len(plans), op, attribute, TensorExport(
                op.layer_name, role, "constant" if constant else "dynamic", "float", 32, "float",
                shape=list(calls[0].input.shape) if calls else []))
            plans.append(plan)
            if constant and calls:
                plan.weight_data_ptr = calls[0].input.data_ptr()
            if slot.mode == "search":
                raise ExportError(f"layer '{op.layer_name}' {role} slot is still in search mode; export needs a "
                                  f"fixed policy: finalize the search or apply a policy first")
            if slot.mode == "float":
                plan.record.reason = "the policy keeps this tensor in float"
                if constant and calls:
                    plan.record.float32_bytes = plan.record.packed_bytes = calls[0].input.numel() * 4
                continue
            scheme = slot.candidates[slot.fixed_scheme]
            plan.record.scheme, plan.record.bits = slot.fixed_scheme, scheme.effective_bits(slot.fixed_bits)
            if not calls:
                plan.record.representation = "not-executed"
                plan.record.reason = "the slot did not run on the example input"
                continue
            if constant:
                _plan_constant(plan, slot, scheme, calls[0], int4=int4, opset=opset)
            else:
                _plan_dynamic(plan, slot, scheme, calls, int4=int4, opset=opset, activation_type=activation_type)
    for join in model.joins():
        plans.extend(_plan_join(join, captured, len(plans), int4=int4, opset=opset, activation_type=activation_type))
    return plans


def _plan_join(join, captured: dict[int, list[SlotCall]], tag: int, *, int4: bool, opset: int,
               activation_type: str | None) -> list[TensorPlan]:
    """A join's own quantizer, when it ran (an inactive join, or one that shares its sibling's slot, has none)."""
    slot = join.act_slot
    calls = captured.get(id(slot), [])
    if not calls or slot.mode != "fixed":
        return []
    plan = TensorPlan(tag, join, "act_slot", TensorExport(
        join.name, "activation", "dynamic", slot.fixed_scheme, slot.fixed_bits, "float",
        shape=list(calls[0].input.shape)))
    _plan_dynamic(plan, slot, slot.candidates[slot.fixed_scheme], calls, int4=int4, opset=opset,
                  activation_type=activation_type)
    return [plan]


def join_routes(model: QuantizedModel, plans: list[TensorPlan]) -> dict[tuple[nn.Module, str], nn.Module]:
    """What each join's tensor goes through while the marked graph is traced: its own marker, the marker
    of the slot it shares (the same Q/DQ then serves both consumers), or nothing (inactive)."""
    markers = {(id(p.op), p.attribute): p.marker for p in plans if p.marker is not None}
    routes = {}
    for join in model.joins():
        shared = join.shared_slot() if join.active else None
        if shared is not None:
            marker = markers.get((id(join._sibling), "act_slot"))
        elif join.active:
            marker = markers.get((id(join), "act_slot"))
        else:
            marker = nn.Identity()
        if marker is not None:
            routes[(join, "route")] = marker
    return routes


def _container_record(plan: TensorPlan, grid: IntegerGrid, container: Container) -> None:
    record = plan.record
    record.representation = f"qdq-{container.name}"
    record.dtype = container.name
    record.axis = grid.axis
    record.scale = [float(s) for s in np.atleast_1d(grid.scale)]
    record.zero_point = [int(z) for z in np.atleast_1d(grid.zero_point)]
    record.qmin, record.qmax, record.grid_source = grid.qmin, grid.qmax, grid.source
    plan.grid, plan.container = grid, container


def _plan_constant(plan: TensorPlan, slot: QuantSlot, scheme: Scheme, call: SlotCall, *, int4: bool,
                   opset: int) -> None:
    """Weights: an integer initializer + DequantizeLinear when the values lie on a grid, else exact floats."""
    record, bits = plan.record, plan.record.bits
    weight, quantized = call.input, call.output.float()
    axis = scheme.channel_axis % weight.dim() if scheme.channels is not None and weight.dim() > 1 else None
    grid, reason = None, ""
    affine = scheme.affine_grid(weight, slot.fixed_bits)
    if affine is not None:
        grid, reason = from_affine(affine, weight.dim())
        if grid is not None and not reconstructs(grid, quantized):
            grid, reason = None, "the scheme's affine_grid does not reproduce its quantized weight"
    if grid is None:
        grid = infer_constant_grid(quantized, axis)
        if grid is None:
            reason = reason or f"the levels of '{record.scheme}' at {bits} bits are not integer multiples of a scale"
    container = choose_container(grid.qmin, grid.qmax, grid.zero_point, int4=int4, opset=opset) if grid else None
    if grid is not None and container is None:
        reason = f"codes in [{grid.qmin}, {grid.qmax}] fit no Q/DQ integer type at opset {opset}"
    plan.marker = ConstantMarker(plan.tag, quantized)
    levels = _max_levels_per_channel(quantized, axis)
    record.storage_bits = max(bits, code_bits(levels))
    record.packed_bytes = packed_nbytes(quantized.numel(), record.storage_bits)
    record.float32_bytes = quantized.numel() * 4
    channels = 1 if axis is None else quantized.shape[axis]
    if container is None:
        record.representation, record.reason = "dequantized-float", reason
        record.side_bytes = channels * levels * SCALE_BYTES  # a per-channel codebook of the levels
        return
    _container_record(plan, grid, container)
    plan.codes = weight_codes(grid, quantized)
    if grid.source == "inferred":
        why = reason or f"'{record.scheme}' has no affine grid"
        record.reason = f"{why}; integer grid inferred from the quantized values"
    record.side_bytes = grid.scale.size * SCALE_BYTES + (0 if grid.symmetric else grid.zero_point.size * container.bits // 8)


def _max_levels_per_channel(values: Tensor, axis: int | None) -> int:
    rows = values.movedim(axis, 0).reshape(values.shape[axis], -1) if axis is not None else values.reshape(1, -1)
    return max(int(torch.unique(row).numel()) for row in rows)


def _plan_dynamic(plan: TensorPlan, slot: QuantSlot, scheme: Scheme, calls: list[SlotCall], *, int4: bool,
                  opset: int, activation_type: str | None = None) -> None:
    """Activations: a (Clip ->) QuantizeLinear -> DequantizeLinear pair when the scheme's grid is static."""
    record, x = plan.record, calls[0].input
    sample, reference = sample_elements(calls)
    with torch.no_grad():
        affine = scheme.affine_grid(x, slot.fixed_bits)
        grid, reason = from_affine(affine, x.dim()) if affine is not None else (None, "")
        if affine is None:
            reason = f"'{record.scheme}' at {record.bits} bits has no affine grid"
        elif not getattr(affine, "exact_on_input", True):
            grid, reason = None, (f"'{record.scheme}' at {record.bits} bits does not round to nearest on its grid, "
                                  f"so Q/DQ on its input would differ")
        if grid is not None and grid.axis is not None:
            grid, reason = None, "per-channel activation grids are not exported as Q/DQ (TensorRT needs per tensor)"
        if grid is not None:
            probe = scheme.affine_grid(sample * 2.0 + 1.0, slot.fixed_bits)
            probe_grid = from_affine(probe, x.dim())[0] if probe is not None else None
            if probe_grid is None or not same_grid(grid, probe_grid):
                grid, reason = None, "the activation grid depends on the input (no static range in eval mode)"
        if grid is not None:
            mismatch = activation_mismatch(grid, sample, reference)
            record.activation_mismatch = mismatch
            if mismatch > ACTIVATION_MISMATCH_LIMIT:
                grid, reason = None, f"the affine grid reproduces the scheme on only {1 - mismatch:.2%} of elements"
    container = choose_container(grid.qmin, grid.qmax, grid.zero_point, int4=int4, opset=opset) if grid else None
    if grid is not None and container is None:
        reason = f"codes in [{grid.qmin}, {grid.qmax}] fit no Q/DQ integer type at opset {opset}"
    if container is None:
        lut_reason = _plan_lookup(plan, slot, sample, reference, calls, int4=int4, opset=opset)
        if lut_reason:
            # Last resort: the slot stays in the model and its quantizer is traced into float ONNX ops.
            record.representation, record.reason = "fake-quant-float", f"{reason}; {lut_reason}"
        else:
            record.reason = reason
        return
    if activation_type is not None and container.bits == 8 and container.name != activation_type:
        grid, container = _shifted(grid, CONTAINERS_BY_NAME[activation_type])
    if container.bits == 4 and (grid.qmin, grid.qmax) != (container.low, container.high):
        container = choose_container(grid.qmin, grid.qmax, grid.zero_point, int4=False, opset=opset)
        record.reason = (f"INT4 asked, written as {container.name}: the grid [{grid.qmin}, {grid.qmax}] needs a Clip "
                         f"before QuantizeLinear, and ONNX Runtime 1.32's Clip/QuantizeLinear fusion rejects "
                         f"INT4 zero points")
        log.info("%s %s: %s", record.layer, record.role, record.reason)
    _container_record(plan, grid, container)
    if (grid.qmin, grid.qmax) != (container.low, container.high):
        scale, zero_point = float(grid.scale), int(grid.zero_point)
        record.clip = [float(np.float32((grid.qmin - zero_point) * scale)),
                       float(np.float32((grid.qmax - zero_point) * scale))]
    plan.marker = DynamicMarker(plan.tag, [c.output for c in calls])


def _shifted(grid: IntegerGrid, container: Container) -> tuple[IntegerGrid, Container]:
    """The same levels in the other 8-bit type: codes and zero point moved by 128 (int8 <-> uint8)."""
    offset = container.low - (-128 if container.low == 0 else 0)
    return dataclasses.replace(grid, zero_point=grid.zero_point + offset, qmin=grid.qmin + offset,
                               qmax=grid.qmax + offset), container


def _plan_lookup(plan: TensorPlan, slot: QuantSlot, sample: Tensor, reference: Tensor, calls: list[SlotCall], *,
                 int4: bool, opset: int) -> str:
    """Try an exact threshold lookup for an elementwise activation quantizer; return why not ("" if done).

    When the levels are integer multiples of one scale (binary, ternary, power-of-two), a Q/DQ pair
    follows the lookup: it is exact on the levels, and lets runtimes run the next layer in integers.
    """
    probes = sample[:MAX_PROBES]
    with torch.no_grad():
        steps = find_steps(slot, probes)
    if steps is None:
        return f"its output has more than {MAX_LEVELS - 1} levels"
    thresholds, levels = steps
    mismatch = float((apply_steps(sample, thresholds, levels) != reference).float().mean())
    if mismatch > ACTIVATION_MISMATCH_LIMIT:
        return f"a threshold lookup reproduces the scheme on only {1 - mismatch:.2%} of elements (not elementwise)"
    plan.lut = (thresholds, levels)
    plan.record.representation = "lut-float"
    plan.record.levels = [float(v) for v in levels]
    plan.record.activation_mismatch = mismatch
    plan.marker = DynamicMarker(plan.tag, [c.output for c in calls])
    grid = infer_constant_grid(torch.from_numpy(levels), axis=None)
    container = choose_container(grid.qmin, grid.qmax, grid.zero_point, int4=int4, opset=opset) if grid else None
    if container is not None:
        _container_record(plan, grid, container)
        plan.record.representation = f"lut+qdq-{container.name}"
    return ""
