"""Slow: QAG over timm (pretrained=False, no download): two small models from every timm model module.

Each model gets the checks of ``sweep.py`` at its default input size (batch 1). The pass rate and the
reason of every failure are printed and, with ``HWQNN_TIMM_REPORT=path.md``, written as a Markdown table.
Skipped when timm is not importable. ``HWQNN_TIMM_MODELS=a,b`` checks named models only;
``HWQNN_TIMM_PER_MODULE`` (default 2) sets how many models per module::

    python -m pytest -m slow tests/qag/test_qag_timm.py -s
"""

from __future__ import annotations

import os
import re

import pytest
import torch
from sweep import sweep_one, table

#: Name parts that mark a small variant; models are picked smallest-looking first.
SMALL = ("atto", "femto", "pico", "nano", "tiny", "xxs", "xs", "mini", "small", "lite", "b0", "18", "s")
MIN_MODELS = 100
MIN_PASS_RATE = 0.9


def _smallness(name: str) -> tuple[int, str]:
    parts = re.split(r"[_.]", name)
    rank = next((i for i, token in enumerate(SMALL) if token in parts or any(p.startswith(token) for p in parts)),
                len(SMALL))
    return rank, name


def _parameters_on_meta(timm, name: str) -> float:
    """Parameter count of a model built on the meta device (no memory, no weights); inf if it fails."""
    try:
        with torch.device("meta"):
            return sum(p.numel() for p in timm.create_model(name, pretrained=False).parameters())
    except Exception:
        return float("inf")


def pick_models(timm, per_module: int, candidates: int = 4) -> list[str]:
    """For every timm model module, the ``per_module`` models with the fewest parameters among its
    ``candidates`` smallest-looking names (built on the meta device to count), in module order."""
    picked = []
    for module in timm.list_modules():
        names = sorted(timm.list_models(module=module), key=_smallness)[:candidates]
        picked += sorted(names, key=lambda n: _parameters_on_meta(timm, n))[:per_module]
    return picked


MAX_SIDE = 256  # larger default inputs (384, 1024...) are asked at 224 where the model takes img_size


FALLBACK_SIDES = (192, 240, 288, 384)  # tried when the model rejects its default size (size constraints)


def _accepts(model, example: torch.Tensor) -> bool:
    try:
        with torch.no_grad():
            model.eval()(example)
        return True
    except Exception:
        return False


def _build(timm, name: str):
    def build():
        model = timm.create_model(name, pretrained=False)
        size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
        if size[-1] > MAX_SIDE:
            try:
                model, size = timm.create_model(name, pretrained=False, img_size=224), (size[0], 224, 224)
            except TypeError:  # the model has no img_size argument: keep its own size
                pass
        example = torch.randn(1, *size)
        for side in FALLBACK_SIDES:
            if _accepts(model, example):
                break
            example = torch.randn(1, size[0], side, side)
        return model, (example,)
    return build


@pytest.mark.slow
def test_timm_models_convert_with_no_float_gemm():
    timm = pytest.importorskip("timm", exc_type=ImportError)
    wanted = [n.strip() for n in os.environ.get("HWQNN_TIMM_MODELS", "").split(",") if n.strip()]
    names = wanted or pick_models(timm, int(os.environ.get("HWQNN_TIMM_PER_MODULE", "2")))
    rows = []
    for name in names:
        rows.append(sweep_one(name, _build(timm, name)))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    passed = sum(not r.failure for r in rows)
    summary = (f"timm {timm.__version__}, torch {torch.__version__}: {passed}/{len(rows)} models pass "
               f"({passed / max(len(rows), 1):.1%})")
    print(f"\n{summary}\n{table(rows)}")
    report = os.environ.get("HWQNN_TIMM_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as f:
            f.write(f"{summary}\n\n{table(rows)}\n")
    if not wanted:
        assert len(rows) >= MIN_MODELS, f"only {len(rows)} timm models picked"
        assert passed / len(rows) >= MIN_PASS_RATE, summary
    else:
        assert passed == len(rows), table([r for r in rows if r.failure])
