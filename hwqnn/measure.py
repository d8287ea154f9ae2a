"""Measure this machine: latencies of reference models as exported, timed in ONNX Runtime.

``measure_latencies`` is how a user gets a profile for a device nobody has profiled (``hwqnn profiles
measure``). For each reference model (the architectures ``cost_models`` prices, at any input size) it
builds a random-weight instance, writes it as a float ONNX graph and as hwqnn's own w8a8 Q/DQ export for
the base profile's runtime, and times both in ONNX Runtime on this machine: a few warm-up runs, then each
of ``repeats`` runs timed on its own; the median and the 10th/90th percentiles are kept. With
``per_layer`` it also runs ONNX Runtime's profiler and keeps each graph node's median kernel time, so a
per-layer fidelity check has measured numbers to compare with. ``microbenchmarks`` adds per-layer
microbenchmarks (``cost_models.MICROBENCHMARKS``: a stack of one conv, depthwise conv, linear or matmul
shape, each at a tiny, a small and a large size; ``True`` for the default set ``MICROBENCHMARK_SIZES``),
timed the same way: a calibration sees from them the fixed cost of one operator and of one inference call
beside little work, and the runtime's conversions beside large activations, which whole models, whose
time is mostly arithmetic, do not pin down.

The rows use the measurement CSV's columns (``cost_models.measurements``) with the base profile as
``device`` and ``export`` = ``hwqnn`` (the graphs are hwqnn's own exports, and are priced as such), so
``cost_models.calibrate(base, rows)`` fits that profile's efficiency, overheads, bandwidth derating and
conversion bytes to this machine.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cost_models import build_reference_model, list_reference_models, load_profile
from cost_models.reference_workloads import MICROBENCHMARK_SIZES, MICROBENCHMARKS, reference_input_shape

from .deployment import restrict_to_target
from .errors import ConfigError
from .export import export_onnx
from .export._onnx import import_onnx, import_onnxruntime
from .qag import apply_policy

PRECISIONS = ("fp32", "w8a8")
INPUT, OUTPUT = "input", "output"


@dataclass
class Measurements:
    """Whole-model rows (the measurement CSV's columns plus the spread) and, if asked, per-node rows."""

    models: pd.DataFrame
    layers: pd.DataFrame | None = None


def _check(models, precisions, batch_sizes, input_size, repeats, threads, micro=()) -> None:
    known = set(list_reference_models()) | set(MICROBENCHMARKS)
    unknown = [m for m in models if m not in known]
    if not (models or micro) or unknown:
        raise ConfigError(f"unknown reference model(s) {unknown or '(none given)'}; "
                          f"choose from {', '.join(sorted(known))}")
    bad_micro = [pair for pair in micro if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                                                and pair[0] in MICROBENCHMARKS and isinstance(pair[1], int)
                                                and not isinstance(pair[1], bool) and pair[1] >= 1)]
    if bad_micro:
        raise ConfigError(f"microbenchmarks must be (name, input size >= 1) pairs with names among "
                          f"{', '.join(sorted(MICROBENCHMARKS))}, got {bad_micro[:3]}")
    bad = [p for p in precisions if p not in PRECISIONS]
    if not precisions or bad:
        raise ConfigError(f"precisions must be among {', '.join(PRECISIONS)}, got {list(precisions)}")
    if not batch_sizes or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be integers >= 1, got {list(batch_sizes)}")
    for name, value, low in (("input_size", input_size, 16), ("repeats", repeats, 3), ("threads", threads, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


def _float_graph(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17, input_names=[INPUT],
                          output_names=[OUTPUT], dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})


def _w8a8_graph(model: torch.nn.Module, example: torch.Tensor, path: Path, profile) -> None:
    """hwqnn's w8a8 export as the base profile's runtime runs it (its deployable formats, its activation type)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = apply_policy(model, "w8a8", example[:2])
        restrict_to_target(quantized, profile)
        quantized.calibrate([example])
        export_onnx(quantized.eval(), example, path, target=profile, verify=False)


def ort_session(path: Path, threads: int, *, profile_prefix: str | None = None, optimized_path: Path | None = None):
    """A CPU ONNX Runtime session of the graph at ``path`` (ORT_ENABLE_ALL, ``threads`` threads), optionally
    profiling its nodes or writing the optimized graph it runs to ``optimized_path``."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _time_runs(session, feed: dict, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return times


def _node_times(path: Path, feed: dict, threads: int, runs: int, folder: Path) -> dict[tuple[str, str], float]:
    """Median kernel time (ms) of each optimized-graph node over ``runs`` profiled runs, by (node, op type)."""
    session = ort_session(path, threads, profile_prefix=str(folder / "ort_profile"))
    session.run(None, feed)  # warm-up, also profiled: dropped below by keeping the last runs only
    for _ in range(runs):
        session.run(None, feed)
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink(missing_ok=True)
    per_node: dict[tuple[str, str], list[float]] = defaultdict(list)
    for event in events:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith("_kernel_time"):
            key = (name.removesuffix("_kernel_time"), event.get("args", {}).get("op_name", ""))
            per_node[key].append(event["dur"] / 1e3)
    return {key: statistics.median(values[-runs:]) for key, values in per_node.items()}


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def export_graph(model: torch.nn.Module, example: torch.Tensor, precision: str, path: Path, profile) -> Path:
    """``model`` as the ONNX graph that runs at ``precision`` (``fp32``: torch.onnx; ``w8a8``: hwqnn's export
    for ``profile``'s runtime), written to ``path``."""
    if precision == "fp32":
        _float_graph(model, example, path)
    else:
        _w8a8_graph(model, example, path, profile)
    return path


def time_graph(path: Path, inputs: np.ndarray, *, threads: int = 1, warmup: int = 3, repeats: int = 10,
               rounds: int = 1) -> np.ndarray:
    """Milliseconds of ``repeats`` runs of the ONNX graph at ``path`` on ``inputs``, each timed on its own.

    With ``rounds`` > 1 the ``repeats`` runs are timed that many times and the round with the lowest median
    is returned: on a machine shared with other work, a round during which the scheduler took the core away
    for most runs (seen here: a median 3x its neighbours') is dropped instead of kept as the latency.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ConfigError(f"rounds must be an integer >= 1, got {rounds!r}")
    session = ort_session(path, threads)
    feed = {INPUT: inputs}
    runs = [np.array(_time_runs(session, feed, warmup if i == 0 else 1, repeats)) * 1e3 for i in range(rounds)]
    return min(runs, key=lambda times: float(np.median(times)))


def measure_latencies(models, *, base="x86-avx2-vnni", input_size: int = 224, batch_sizes=(1,),
                      precisions=PRECISIONS, threads: int = 1, repeats: int = 10, warmup: int = 3,
                      per_layer: bool = False, progress=None, microbenchmarks=(), rounds: int = 1) -> Measurements:
    """Time each reference model in ``models`` on this machine in ONNX Runtime (see the module doc).

    ``base`` is the profile whose runtime the w8a8 graph is exported for, and whose name the rows carry.
    ``microbenchmarks``: (name, input size) pairs of ``cost_models.MICROBENCHMARKS`` timed as well (``True``:
    ``MICROBENCHMARK_SIZES``); their rows carry their own input size. ``rounds``: see ``time_graph``.
    ``progress(done, total, what)`` is called after each timed graph.
    """
    micro = list(MICROBENCHMARK_SIZES) if microbenchmarks is True else [tuple(m) for m in (microbenchmarks or ())]
    models, precisions, batch_sizes = list(models), list(precisions), list(batch_sizes)
    _check(models, precisions, batch_sizes, input_size, repeats, threads, micro)
    import_onnx()
    ort = import_onnxruntime()
    profile = load_profile(base)
    source = (f"measured on this machine by hwqnn profiles measure: onnxruntime {ort.__version__} "
              f"CPUExecutionProvider, {threads} thread(s), ORT_ENABLE_ALL, median of {repeats} runs after "
              f"{warmup} warm-up runs" + (f" (the least disturbed of {rounds} rounds)" if rounds > 1 else "")
              + "; random weights")
    rows, layers = [], []
    graphs = [(name, input_size) for name in models] + micro
    total, done = len(graphs) * len(precisions) * len(batch_sizes), 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, input_size in graphs:
            torch.manual_seed(0)
            model = build_reference_model(name, device="cpu").eval()
            example = torch.randn(max(batch_sizes), *reference_input_shape(name, input_size))
            for precision in precisions:
                path = export_graph(model, example, precision, folder / f"{name}_{input_size}_{precision}.onnx",
                                    profile)
                for batch in batch_sizes:
                    feed = {INPUT: example[:batch].numpy()}
                    times = time_graph(path, feed[INPUT], threads=threads, warmup=warmup, repeats=repeats,
                                       rounds=rounds)
                    rows.append({"device": profile.name, "model": name, "input_size": input_size, "batch_size": batch,
                                 "precision": precision, "latency_ms": float(np.median(times)),
                                 "latency_p10_ms": float(np.percentile(times, 10)),
                                 "latency_p90_ms": float(np.percentile(times, 90)), "split": "calib",
                                 "source": source, "notes": _processor(), "export": "hwqnn"})
                    if per_layer:
                        for (node, op), ms in _node_times(path, feed, threads, max(3, repeats // 2), folder).items():
                            layers.append({"model": name, "input_size": input_size, "batch_size": batch,
                                           "precision": precision, "node": node, "op_type": op, "latency_ms": ms})
                    done += 1
                    if progress is not None:
                        progress(done, total, f"{name} {precision} batch {batch}")
    return Measurements(pd.DataFrame(rows), pd.DataFrame(layers) if per_layer else None)


def write_measurements(result: Measurements, folder: str | os.PathLike) -> dict[str, Path]:
    """``measurements.csv`` (and ``layers.csv``) in ``folder``; returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"models": folder / "measurements.csv"}
    result.models.to_csv(paths["models"], index=False)
    if result.layers is not None:
        paths["layers"] = folder / "layers.csv"
        result.layers.to_csv(paths["layers"], index=False)
    return paths


__all__ = ["measure_latencies", "write_measurements", "export_graph", "time_graph", "ort_session", "Measurements",
           "PRECISIONS"]
