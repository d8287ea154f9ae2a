"""ONNX Runtime CPU latency of hwqnn's w8a8 export against the runtime's own quantizer (not collected by pytest).

Run: ``python bench/bench_export_latency.py > reports/export_latency.md`` (``--models``, ``--batches``,
``--repeats``, ``--threads``). For every zoo model (random weights; calibrated on one batch of digits
images or N(0, 1) inputs) it builds three graphs of the same float weights: the float model exported
with ``torch.onnx`` (fp32), hwqnn's uniform w8a8 export, and ``onnxruntime.quantization.quantize_static``
on the fp32 graph (QDQ format, per-channel int8 weights, the same calibration batch), once with int8
and once with uint8 activations; the faster of the two at the largest batch is the reference. All
sessions use ORT_ENABLE_ALL and ``--threads`` intra-op threads, and are timed interleaved in one
process: each repeat runs every session once for about ``--sample-ms`` ms; the table gives medians.
It also counts the integer kernels (QLinearConv, QGemm, ...) in each optimized graph.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cost_models import load_profile  # noqa: E402
from hwqnn.data import load_dataset  # noqa: E402
from hwqnn.deployment import restrict_to_target  # noqa: E402
from hwqnn.export import export_onnx  # noqa: E402
from hwqnn.measure import export_graph, ort_session  # noqa: E402
from hwqnn.models import create_model, list_models, model_spec  # noqa: E402
from hwqnn.policy import Policy  # noqa: E402
from hwqnn.qag import QuantizedModel, apply_policy  # noqa: E402

COMMAND = "python bench/bench_export_latency.py > reports/export_latency.md"
#: The profile of the runtime measured here (ONNX Runtime's CPU execution provider): the export takes its
#: activation type (uint8, U8S8) and states per layer how that runtime runs it.
TARGET = load_profile("x86-avx2-vnni")
INPUT, OUTPUT = "input", "output"
CALIBRATION_SIZE = 32
#: The reference activation types tried for ``quantize_static``.
ORT_ACTIVATIONS = ("QInt8", "QUInt8")


def integer_kernels(op_type: str) -> bool:
    """Whether an optimized-graph op runs in integers (QLinearConv, QGemm, ConvInteger, ...)."""
    return op_type.startswith(("QLinear", "QGemm", "QAttention")) or "Integer" in op_type


@dataclass
class Graphs:
    """The ONNX files of one model, its inputs per batch size, and what hwqnn's export reported."""

    paths: dict[str, Path]
    inputs: dict[int, np.ndarray]
    notes: list[str] = field(default_factory=list)


def calibration_batch(model_name: str, size: int = CALIBRATION_SIZE) -> torch.Tensor:
    """Digits training images for the 1x8x8 models, N(0, 1) inputs of the model's shape otherwise."""
    shape = tuple(model_spec(model_name).input_shape)
    if shape == (1, 8, 8):
        return load_dataset("digits", seed=0).train.tensors[0][:size]
    return torch.randn(size, *shape, generator=torch.Generator().manual_seed(1))


def quantized_w8a8(model: torch.nn.Module, calibration: torch.Tensor) -> QuantizedModel:
    """``model`` (untouched) converted, set to uniform w8a8 and calibrated on ``calibration``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # branchy_cnn's fx fallback warns by design
        quantized = apply_policy(copy.deepcopy(model), Policy.uniform("w8a8"), calibration[:2])
        restrict_to_target(quantized, TARGET)  # as a search for this target does: joins may go unsigned there
    quantized.calibrate([calibration])
    return quantized.eval()


def quantize_with_ort(float_path: Path, calibration: torch.Tensor, activation: str, path: Path) -> None:
    """``quantize_static`` (QDQ, per-channel int8 weights) after ORT's recommended pre-processing."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class OneBatch(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{INPUT: calibration.numpy()}])

        def get_next(self):
            return next(self.batches, None)

    prepared = path.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(float_path), str(prepared))
    except Exception:  # pre-processing is advice, not a requirement: quantize the raw graph then
        prepared = float_path
    quantize_static(str(prepared), str(path), OneBatch(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=getattr(QuantType, activation))


def build_graphs(model_name: str, folder: Path, batches: list[int]) -> Graphs:
    """fp32, hwqnn w8a8 and quantize_static graphs of one zoo model (random weights, fixed seed)."""
    torch.manual_seed(0)
    model = create_model(model_name).eval()
    calibration = calibration_batch(model_name)
    shape = tuple(model_spec(model_name).input_shape)
    generator = torch.Generator().manual_seed(2)
    inputs = {b: torch.randn(b, *shape, generator=generator) for b in batches}
    if shape == (1, 8, 8):
        test = load_dataset("digits", seed=0).test.tensors[0]
        inputs = {b: test[:b] for b in batches}
    example = inputs[max(batches)]
    paths = {"fp32": folder / f"{model_name}_fp32.onnx", "hwqnn": folder / f"{model_name}_hwqnn.onnx"}
    export_graph(model, example, "fp32", paths["fp32"], TARGET)
    report = export_onnx(quantized_w8a8(model, calibration), example, paths["hwqnn"], target=TARGET)
    notes = [f"hwqnn export: ORT (optimized) vs PyTorch top-1 agreement {report.top1_agreement_optimized}"]
    for activation in ORT_ACTIVATIONS:
        paths[activation] = folder / f"{model_name}_ort_{activation}.onnx"
        quantize_with_ort(paths["fp32"], calibration, activation, paths[activation])
    return Graphs(paths, {b: x.numpy() for b, x in inputs.items()}, notes)


def optimized_op_counts(path: Path, threads: int = 1) -> Counter:
    """Op types of the graph ONNX Runtime actually runs for ``path`` (ORT_ENABLE_ALL)."""
    import onnx

    with tempfile.TemporaryDirectory() as folder:
        optimized = Path(folder) / "optimized.onnx"
        ort_session(path, threads, optimized_path=optimized)
        return Counter(node.op_type for node in onnx.load(str(optimized)).graph.node)


def interleaved_medians(sessions: dict, feed: dict, repeats: int, sample_ms: float) -> dict[str, float]:
    """Median ms per run of each session; every repeat runs each session back to back (``runs`` times)."""
    runs = {}
    for name, sess in sessions.items():
        sess.run(None, feed)  # warm-up
        start = time.perf_counter()
        sess.run(None, feed)
        runs[name] = max(1, int(sample_ms / 1e3 / max(time.perf_counter() - start, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(repeats):
        for name, sess in sessions.items():
            start = time.perf_counter()
            for _ in range(runs[name]):
                sess.run(None, feed)
            times[name].append((time.perf_counter() - start) / runs[name])
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


@dataclass
class Row:
    model: str
    batch: int
    ms: dict[str, float]
    reference: str
    kernels: dict[str, int]

    @property
    def ratio(self) -> float:
        """hwqnn latency over the reference's (<= 1: as fast as the runtime's own quantizer)."""
        return self.ms["hwqnn"] / self.ms[self.reference]


def measure(model_name: str, folder: Path, batches: list[int], repeats: int, threads: int,
            sample_ms: float) -> tuple[list[Row], list[str]]:
    graphs = build_graphs(model_name, folder, batches)
    sessions = {name: ort_session(path, threads) for name, path in graphs.paths.items()}
    kernels = {name: sum(n for op, n in optimized_op_counts(path, threads).items() if integer_kernels(op))
               for name, path in graphs.paths.items()}
    medians = {b: interleaved_medians(sessions, {INPUT: graphs.inputs[b]}, repeats, sample_ms) for b in batches}
    largest = medians[max(batches)]
    reference = min(ORT_ACTIVATIONS, key=lambda a: largest[a])
    return [Row(model_name, b, medians[b], reference, kernels) for b in batches], graphs.notes


def markdown(rows: list[Row]) -> str:
    lines = ["| model | batch | fp32 ms | hwqnn w8a8 ms | ORT static ms (activations) | hwqnn / ORT static "
             "| speed vs fp32: hwqnn | ORT static | integer kernels: hwqnn | ORT static |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        fp32, ours, ref = r.ms["fp32"], r.ms["hwqnn"], r.ms[r.reference]
        lines.append(f"| {r.model} | {r.batch} | {fp32:.3f} | {ours:.3f} | {ref:.3f} ({r.reference}) | "
                     f"{r.ratio:.2f} | {fp32 / ours:.2f}x | {fp32 / ref:.2f}x | {r.kernels['hwqnn']} | "
                     f"{r.kernels[r.reference]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=list_models())
    parser.add_argument("--batches", nargs="+", type=int, default=[16, 1])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--sample-ms", type=float, default=20.0, help="run each session this long per repeat")
    parser.add_argument("--threads", type=int, default=1, help="ORT and torch threads (1: stable on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    import onnxruntime as ort

    rows, notes = [], []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            model_rows, model_notes = measure(name, Path(folder), args.batches, args.repeats, args.threads,
                                              args.sample_ms)
            rows += model_rows
            notes += [f"{name}: {note}" for note in model_notes]
    print("# Export latency: hwqnn w8a8 vs onnxruntime quantize_static\n")
    print(f"Command: `{COMMAND}`  (arguments: {' '.join(sys.argv[1:]) or 'defaults'})\n")
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, {args.threads} thread(s), median of {args.repeats} interleaved repeats of "
          f"~{args.sample_ms:g} ms each; load average at the end {os.getloadavg()[0]:.1f}.\n")
    print(markdown(rows))
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
