"""Shared checks of the slow model-zoo sweeps (torchvision, Hugging Face transformers, timm).

For one model and example input: conversion succeeds, no GEMM stays float, the float bypass reproduces
the eager model, QAG's layers are ``extract_workload``'s rows, and a uniform w8a8 policy runs to a finite
output. Results are rows of one table, printed and optionally written to a Markdown report.
"""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

import hwqnn
from cost_models.workload import extract_workload

BYPASS_TOLERANCE = 1e-4  # relative to the largest output magnitude (at least 1)


@dataclass
class SweepRow:
    model: str
    input: str = ""
    layers: int | None = None
    float_ops: int | None = None
    seconds: float = 0.0
    failure: str = ""


def first_tensor(output) -> torch.Tensor:
    """The first tensor of a model output (tensor, tuple, or a Hugging Face ModelOutput)."""
    if torch.is_tensor(output):
        return output
    if hasattr(output, "to_tuple"):
        output = output.to_tuple()
    if isinstance(output, dict):
        output = list(output.values())
    return first_tensor(output[0])


def check_model(model: torch.nn.Module, args: tuple, row: SweepRow) -> str:
    """Every check of one model in eval mode; returns the first failure, or ""."""
    with torch.no_grad():
        reference = first_tensor(model(*args))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="QAG:")
        qmodel = hwqnn.convert(model, args)
    row.layers, row.float_ops = len(qmodel.layer_names), len(qmodel.float_ops)
    if qmodel.float_ops:
        return f"GEMMs left float: {qmodel.float_ops[:3]}"
    with torch.no_grad():
        bypass = first_tensor(qmodel.eval()(*args))
    diff = (bypass - reference).abs().max().item()
    if not diff <= BYPASS_TOLERANCE * max(1.0, reference.abs().max().item()):
        return f"float bypass differs from eager by {diff:.3g}"
    workload = extract_workload(model, args)
    if qmodel.workload.layers != workload.layers:
        mismatched = [a.name for a, b in zip(qmodel.workload.layers, workload.layers) if a != b][:3]
        return f"QAG layers != extract_workload rows ({len(qmodel.workload)} vs {len(workload)}; {mismatched})"
    with torch.no_grad():
        quantized = first_tensor(qmodel.set_policy(hwqnn.Policy.uniform("w8a8"))(*args))
    if quantized.shape != reference.shape or not torch.isfinite(quantized).all():
        return f"w8a8 output is not finite or has shape {tuple(quantized.shape)}"
    return ""


def sweep_one(name: str, build: Callable[[], tuple[torch.nn.Module, tuple]]) -> SweepRow:
    """Build (model, args) and check it; any exception becomes the row's failure."""
    row = SweepRow(name)
    start = time.perf_counter()
    torch.manual_seed(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # libraries' own deprecation and init warnings
            model, args = build()
        row.input = " ".join(str(tuple(a.shape)) for a in args if torch.is_tensor(a))
        row.failure = check_model(model.eval(), args, row)
    except Exception as exc:
        row.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    row.seconds = time.perf_counter() - start
    gc.collect()
    return row


def table(rows: list[SweepRow]) -> str:
    lines = ["| model | input | layers | s | result |", "|---|---|---:|---:|---|"]
    for r in rows:
        result = f"FAIL: {r.failure}".replace("|", "\\|") if r.failure else "ok"
        lines.append(f"| {r.model} | {r.input} | {r.layers if r.layers is not None else '-'} | {r.seconds:.1f} | "
                     f"{result} |")
    return "\n".join(lines)
