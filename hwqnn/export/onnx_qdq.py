"""``export_onnx``: a fixed-policy QuantizedModel as an ONNX graph with explicit Q/DQ quantization.

PyTorch's exporter only knows 8-bit fake quantization, so hwqnn builds the Q/DQ graph itself:

1. run the example input once in eval mode and capture every slot's inputs and outputs (planner);
2. decide per slot how its tensor is represented, keeping only what reproduces the slot exactly;
3. swap the slots for markers and export the float graph with the TorchScript exporter;
4. replace each marker by its DequantizeLinear / Q/DQ nodes (onnx_graph), fold BatchNorms into the
   weight scales and split Gemm biases, so runtimes can fuse Q/DQ into integer kernels (onnx_fusion), check and save the model;
5. run it in ONNX Runtime against PyTorch, check TensorRT's rules, write the JSON sidecar.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..deployment import check_deployable
from ..errors import ExportError
from ..qag import QuantizedModel, QuantJoin, QuantSlot
from ..run_dir import atomic_write_bytes
from ._onnx import import_onnx, import_onnxruntime
from .containers import CONTAINERS, INT4_OPSET
from .deployability import check_against_graph, layer_deployments, sizes_on_target
from .markers import MARKER_DOMAIN, swapped_slots
from .onnx_fusion import FoldedNorm, prepare_for_fusion
from .onnx_graph import rewrite_markers
from .packing import SCALE_BYTES
from .planner import TensorPlan, capture_slot_calls, join_routes, plan_tensors
from .report import ExportReport, SizeReport, TensorExport
from .sidecar import sidecar_path_for, write_sidecar
from .tensorrt_rules import TENSORRT_MIN_OPSET, check_tensorrt_rules

log = logging.getLogger(__name__)

MAX_OPSET = 21
INPUT_NAME, OUTPUT_NAME = "input", "output"
_CONTROL_FLOW_HINT = "Converting a tensor to a Python boolean"
_PACKAGE_DIR = Path(__file__).parent
CONTAINERS_BY_NAME = {c.name: c for c in CONTAINERS}


def export_onnx(model: QuantizedModel, example_input, path: str | os.PathLike, *, opset: int = 17,
                int4: bool = False, verify: bool = True, target=None) -> ExportReport:
    """Write ``model`` (fixed policy) as a Q/DQ ONNX model at ``path`` plus a JSON sidecar beside it.

    ``example_input`` is a batch the model accepts (its batch axis is exported as dynamic). With
    ``int4``, tensors whose codes fit 4 bits are stored as INT4 (this needs opset 21, which is then
    used). With ``verify``, the file is run in ONNX Runtime and compared with PyTorch on the input.
    With ``target`` (a loaded ``HardwareProfile``), the report states per layer how that device's runtime
    runs it (native, emulated, float) and its sizes are what the device stores, by the cost model's rule.
    """
    onnx = import_onnx()
    if not isinstance(model, QuantizedModel):
        raise ExportError(f"export_onnx expects a hwqnn QuantizedModel (from convert/apply_policy/load_run), "
                          f"got {type(model).__name__}")
    if not torch.is_tensor(example_input) or example_input.dim() == 0:
        raise ExportError("export_onnx expects example_input to be one batched tensor, "
                          f"got {type(example_input).__name__}")
    opset = _choose_opset(opset, int4)
    if target is not None:  # a layer the target's runtime cannot run at all is an error before any work
        check_deployable(model.current_policy(), model.layer_names, target,
                         [model.layer(n).op_type for n in model.layer_names])
    path = Path(path)
    was_training = model.training
    model.eval()
    try:
        captured, reference = capture_slot_calls(model, example_input)
        # Probing the quantizers (grids, thresholds) must not change the model: restore its state after.
        state = copy.deepcopy(model.state_dict())
        try:
            activation_type = getattr(getattr(target, "deployment", None), "activation_type", None)
            plans = plan_tensors(model, captured, int4=int4, opset=opset, activation_type=activation_type)
            onnx_model, trace_warnings = _export_marked(model, plans, example_input, opset)
        finally:
            model.load_state_dict(state)
    finally:
        model.train(was_training)
    rewrite_markers(onnx_model, plans)
    _record_folds(plans, prepare_for_fusion(onnx_model))
    try:
        onnx.checker.check_model(onnx_model, full_check=True)
    except Exception as exc:
        raise ExportError(f"internal error: the rewritten ONNX model does not pass onnx.checker: {exc}") from exc
    data = onnx_model.SerializeToString()
    atomic_write_bytes(path, data)
    violations = check_tensorrt_rules(onnx_model)
    _judge_tensorrt(plans, violations, opset)
    joined = [p for p in plans if isinstance(p.op, QuantJoin)]
    report = ExportReport(path, sidecar_path_for(path), opset, int4,
                          [p.record for p in plans if not isinstance(p.op, QuantJoin)],
                          _sizes(model, plans, len(data)), tensorrt_violations={k: v for k, v in violations.items() if v},
                          warnings=trace_warnings, joins=[p.record for p in joined])
    if target is not None:
        _judge_target(report, model, target)
    if verify:
        _verify(report, data, example_input, reference)
    write_sidecar(report, model)
    _log(report)
    return report


def _choose_opset(opset: int, int4: bool) -> int:
    if isinstance(opset, bool) or not isinstance(opset, int) or not TENSORRT_MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset must be an integer in [{TENSORRT_MIN_OPSET}, {MAX_OPSET}] (per-channel Q/DQ "
                          f"needs 13), got {opset!r}")
    if int4 and opset < INT4_OPSET:
        log.info("INT4 tensors need opset %d; exporting at opset %d instead of %d", INT4_OPSET, INT4_OPSET, opset)
        return INT4_OPSET
    return opset


def _export_marked(model: QuantizedModel, plans: list[TensorPlan], example_input, opset: int):
    """Export the float graph with markers in place of the planned slots; return it and tracer warnings."""
    onnx = import_onnx()
    replacements = {(p.op, p.attribute): p.marker for p in plans if p.marker is not None}
    replacements.update(join_routes(model, plans))  # decided before any slot is swapped for its marker
    buffer = io.BytesIO()
    with swapped_slots(replacements), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch.onnx.export(
                model, (example_input,), buffer, dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                custom_opsets={MARKER_DOMAIN: 1}, do_constant_folding=True)
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed on {type(model.net).__name__}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    notes = []
    if any(_CONTROL_FLOW_HINT in str(w.message) and Path(w.filename).parent != _PACKAGE_DIR for w in caught):
        notes.append("the model has data-dependent control flow; the ONNX graph keeps the branch the example "
                     "input took, so outputs can differ on inputs that take another branch")
    return onnx.load_from_string(buffer.getvalue()), notes


def _record_folds(plans: list[TensorPlan], folds: list[FoldedNorm]) -> None:
    """Make each folded weight's record describe the grid the file now holds (scale times the BatchNorm factor)."""
    by_node = {name: plan.record for plan in plans for name in plan.record.onnx_nodes}
    for fold in folds:
        record = by_node.get(fold.dequantize)
        if record is None:
            continue
        note = f"BatchNorm '{fold.norm}' folded into the scale and a bias"
        if fold.negated_channels:
            note += f" ({fold.negated_channels} channels with a negative factor store negated codes)"
            record.qmin, record.qmax = min(record.qmin, -record.qmax), max(record.qmax, -record.qmin)
        record.reason = f"{record.reason}; {note}" if record.reason else note
        record.axis = 0
        record.scale = [float(s) for s in fold.scale]
        record.zero_point = [int(z) for z in fold.zero_point]
        zero_point_bits = 0 if not any(record.zero_point) else CONTAINERS_BY_NAME[record.dtype].bits
        record.side_bytes = len(record.scale) * SCALE_BYTES + len(record.zero_point) * zero_point_bits // 8


def _judge_target(report: ExportReport, model: QuantizedModel, target) -> None:
    """Per layer on ``target``: native / emulated / float; sizes as the device stores them."""
    report.target = target.name
    report.deployments = layer_deployments(model, target)
    report.sizes = sizes_on_target(report.tensors, model, target, report.sizes.other_float_bytes,
                                   report.sizes.onnx_file_bytes)
    report.warnings.extend(check_against_graph(report.deployments, report.tensors, target))


def _judge_tensorrt(plans: list[TensorPlan], violations: dict[str, list[str]], opset: int) -> None:
    """Per tensor: natively deployable as TensorRT int8, and if not, why."""
    opset_problems = violations.get("<opset>", [])
    for plan in plans:
        record = plan.record
        if record.representation == "float":
            record.tensorrt_note = "not quantized; TensorRT runs it in float/fp16"
            continue
        if record.representation == "not-executed":
            record.tensorrt_note = "not in the exported graph"
            continue
        if not record.is_qdq:
            record.tensorrt_note = f"{record.representation}: TensorRT runs it in float, not as int8"
            continue
        problems = opset_problems + [p for name in record.onnx_nodes for p in violations.get(name, [])]
        record.tensorrt_native = not problems
        native_note = f"int8 Q/DQ, opset {opset}"
        if record.representation.startswith("lut+"):
            native_note = f"threshold lookup in float, then {native_note}"
        record.tensorrt_note = "; ".join(dict.fromkeys(problems)) if problems else native_note


def _sizes(model: QuantizedModel, plans: list[TensorPlan], onnx_bytes: int) -> SizeReport:
    """Packed bytes of the quantized weights, and float32 bytes of every other inference tensor.

    "Other" tensors are the model's floating-point parameters and buffers (biases, norms, embeddings,
    float-policy weights), excluding the quantizers' own state and the weights the plans account for.
    """
    quantized = [p.record for p in plans if p.record.kind == "constant" and p.record.representation != "float"]
    planned = {p.weight_data_ptr for p in plans if p.weight_data_ptr is not None and p.record.representation != "float"}
    slot_prefixes = tuple(f"{name}." for name, m in model.named_modules() if isinstance(m, QuantSlot))
    other, seen = 0, set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if name.startswith(slot_prefixes) or not tensor.is_floating_point():
            continue
        if tensor.data_ptr() in seen or tensor.data_ptr() in planned:
            continue
        seen.add(tensor.data_ptr())
        other += tensor.numel() * tensor.element_size()
    return SizeReport(
        quantized_weight_bytes=sum(r.packed_bytes for r in quantized),
        quantized_weight_side_bytes=sum(r.side_bytes for r in quantized),
        quantized_weight_float32_bytes=sum(r.float32_bytes for r in quantized),
        other_float_bytes=other,
        onnx_file_bytes=onnx_bytes)


def run_onnx(data: bytes | str | os.PathLike, inputs: np.ndarray, *, optimized: bool = False,
             input_name: str = INPUT_NAME) -> np.ndarray:
    """Run an exported model in ONNX Runtime (CPU) on one input batch; return its first output.

    With ``optimized=False`` graph optimizations are off, so the graph runs as written: Q/DQ pairs
    are evaluated in float exactly as the spec defines them. ``optimized=True`` uses ONNX Runtime's
    default optimizations, which fuse Q/DQ into integer kernels (QLinearConv, ...) and quantize
    biases to int32, as a deployment runtime does; results then differ slightly from PyTorch.
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # as many threads as PyTorch is allowed
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = data if isinstance(data, bytes) else str(data)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    inputs = np.asarray(inputs)
    dtype = inputs.dtype if np.issubdtype(inputs.dtype, np.integer) else np.float32  # token ids stay integers
    return session.run(None, {input_name: np.ascontiguousarray(inputs, dtype=dtype)})[0]


def _verify(report: ExportReport, data: bytes, example_input, reference) -> None:
    inputs = example_input.detach().cpu().numpy()
    want = (reference[0] if isinstance(reference, (tuple, list)) else reference).detach().cpu().numpy()
    report.max_abs_output = float(np.max(np.abs(want))) if want.size else 0.0
    for optimized in (False, True):
        try:
            got = run_onnx(data, inputs, optimized=optimized)
        except ExportError:
            raise
        except Exception as exc:
            mode = "with its default optimizations" if optimized else "as written"
            raise ExportError(f"ONNX Runtime cannot run the exported {report.path} {mode}: {exc}; "
                              f"re-export without --int4 or with another opset") from exc
        diff = float(np.max(np.abs(got - want))) if want.size else 0.0
        agreement = float(np.mean(got.argmax(1) == want.argmax(1))) if want.ndim == 2 else None
        if optimized:
            report.max_abs_diff_optimized, report.top1_agreement_optimized = diff, agreement
        else:
            report.max_abs_diff, report.top1_agreement = diff, agreement


def _log(report: ExportReport) -> None:
    """Per-tensor details at debug level: ``report.summary()`` is what a person reads (the CLI prints it)."""
    for record in report.tensors:
        log.debug("%s %s: %s@%d -> %s%s; TensorRT int8: %s (%s)", record.layer, record.role, record.scheme,
                 record.bits, record.representation, f" ({record.reason})" if record.reason else "",
                 "yes" if record.tensorrt_native else "no", record.tensorrt_note)
    for note in report.warnings:
        log.warning("%s", note)
    log.debug("wrote %s and %s", report.path, report.sidecar_path)


__all__ = ["export_onnx", "TensorExport"]
