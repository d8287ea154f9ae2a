"""Slow sweep: QAG converts every torchvision classification model (random init, no download).

For each model it checks that conversion succeeds, no conv/linear/matmul stays float, the float bypass
reproduces the eager model, QAG's layers are ``extract_workload``'s rows, and a uniform w8a8 policy runs.
Failures are collected and printed as one table. Skipped when torchvision is not importable.

Run it (torchvision needs a matching torch, e.g. in a separate venv)::

    python -m pytest -m slow tests/qag -k torchvision -s
    HWQNN_TV_MODELS=resnet18,vit_b_16 python -m pytest -m slow tests/qag -k torchvision -s   # a subset
"""

from __future__ import annotations

import gc
import os
import time
import warnings
from dataclasses import dataclass

import pytest
import torch

import hwqnn
from cost_models.workload import extract_workload

#: Square input sizes tried in order; a model gets the first one its float forward accepts.
INPUT_SIZES = (64, 128, 224, 299)
BYPASS_TOLERANCE = 1e-4


@dataclass
class SweepRow:
    model: str
    input_size: int | None = None
    layers: int | None = None
    fallbacks: str = ""
    seconds: float = 0.0
    failure: str = ""


def _smallest_input(model: torch.nn.Module) -> tuple[torch.Tensor | None, torch.Tensor | None, str]:
    """(example, float output, "") for the smallest accepted size, or (None, None, last error)."""
    error = ""
    for size in INPUT_SIZES:
        example = torch.randn(1, 3, size, size)
        try:
            with torch.no_grad():
                return example, model(example), ""
        except Exception as exc:  # a size the model rejects: try the next
            error = f"{type(exc).__name__}: {str(exc)[:120]}"
    return None, None, error


def _check(model: torch.nn.Module, example: torch.Tensor, reference: torch.Tensor, row: SweepRow) -> str:
    """Every check of one model; returns the first failure, or ""."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="QAG:")
        qmodel = hwqnn.convert(model, example)
    row.layers = len(qmodel.layer_names)
    row.fallbacks = ",".join(qmodel.fallback_modules)
    if qmodel.float_ops:
        return f"ops left float: {qmodel.float_ops[:4]}"
    with torch.no_grad():
        bypass = qmodel.eval()(example)
    diff = (bypass - reference).abs().max().item()
    if not diff <= BYPASS_TOLERANCE * max(1.0, reference.abs().max().item()):
        return f"float bypass differs from eager by {diff:.3g}"
    workload = extract_workload(model, example)
    if qmodel.workload.layers != workload.layers:
        mismatched = [a.name for a, b in zip(qmodel.workload.layers, workload.layers) if a != b][:3]
        return f"QAG layers != extract_workload rows ({len(qmodel.workload)} vs {len(workload)}; {mismatched})"
    with torch.no_grad():
        quantized = qmodel.set_policy(hwqnn.Policy.uniform("w8a8"))(example)
    if quantized.shape != reference.shape or not torch.isfinite(quantized).all():
        return f"w8a8 output is not finite or has shape {tuple(quantized.shape)}"
    return ""


def _sweep_one(name: str, torchvision) -> SweepRow:
    row = SweepRow(name)
    start = time.perf_counter()
    torch.manual_seed(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's init-scheme FutureWarnings
            model = torchvision.models.get_model(name, weights=None).eval()
        example, reference, error = _smallest_input(model)
        if example is None:
            row.failure = f"no input size in {INPUT_SIZES} works: {error}"
        else:
            row.input_size = example.shape[-1]
            row.failure = _check(model, example, reference, row)
    except Exception as exc:
        row.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    row.seconds = time.perf_counter() - start
    gc.collect()
    return row


def _table(rows: list[SweepRow]) -> str:
    lines = [f"{'model':<24} {'input':>5} {'layers':>6} {'sec':>6}  result"]
    for r in rows:
        result = f"FAIL: {r.failure}" if r.failure else "ok" + (f" (leaf fallback: {r.fallbacks})" if r.fallbacks else "")
        lines.append(f"{r.model:<24} {r.input_size or '-':>5} {r.layers or '-':>6} {r.seconds:>6.1f}  {result}")
    return "\n".join(lines)


@pytest.mark.slow
def test_every_torchvision_classification_model_converts():
    torchvision = pytest.importorskip("torchvision", exc_type=ImportError)
    names = torchvision.models.list_models(module=torchvision.models)
    wanted = [n.strip() for n in os.environ.get("HWQNN_TV_MODELS", "").split(",") if n.strip()]
    if wanted:
        unknown = sorted(set(wanted) - set(names))
        assert not unknown, f"HWQNN_TV_MODELS names models torchvision does not have: {unknown}"
        names = [n for n in names if n in wanted]
    rows = []
    for name in names:
        rows.append(_sweep_one(name, torchvision))
        print(_table(rows[-1:]).splitlines()[-1], flush=True)  # progress, visible with -s
    failed = [r for r in rows if r.failure]
    print(f"\ntorchvision {torchvision.__version__}, torch {torch.__version__}: "
          f"{len(rows) - len(failed)}/{len(rows)} classification models convert\n{_table(rows)}")
    assert not failed, f"{len(failed)} of {len(rows)} torchvision models failed:\n{_table(failed)}"
