"""Run directories: what a search leaves behind, written atomically, and how to load it back.

Layout (DESIGN.md): ``policy.yaml``, ``metrics.json``, ``model.pt`` (state dict, loaded with
``weights_only=True``), ``history.csv``, ``summary.png``, and ``checkpoint.pt`` while a run is unfinished.
``metrics.json`` carries what is needed to rebuild the model: ``model``, ``num_classes``, ``input_shape``.

A finished run is bound by one fingerprint (``metrics.json["fingerprint"]``): the SHA-256 of
``policy.yaml``, of ``model.pt`` and of the metrics themselves. Whatever reads a finished run checks it,
so a policy from one run is never exported with the weights or the accuracy of another, and a
hand-edited file is refused instead of silently exported.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ._io import atomic_write_bytes, atomic_write_text
from .errors import PolicyError, RunDirError
from .policy import Policy

log = logging.getLogger(__name__)

REQUIRED_FILES = ("policy.yaml", "metrics.json", "model.pt")
#: The files a fingerprint binds, besides metrics.json itself.
BOUND_FILES = ("policy.yaml", "model.pt")
#: Every file a run (or its export) writes: what ``overwrite`` replaces, and nothing else.
RUN_FILES = (*REQUIRED_FILES, "checkpoint.pt", "history.csv", "summary.png", "model.onnx", "model.quant.json",
             "search_state.pt")
#: Keys every checkpoint holds; a file without them is not a hwqnn checkpoint.
CHECKPOINT_KEYS = ("phase", "epoch", "model", "history", "strategy", "rng", "policy", "float_accuracy", "config")
FINGERPRINT = "fingerprint"
#: Significant digits kept for floats in metrics.json: enough for every cost and accuracy, readable.
FLOAT_DIGITS = 7


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_write_json(path: str | os.PathLike, data: dict) -> Path:
    """Strict JSON (no NaN/Infinity tokens: non-finite floats become null), floats to 7 digits."""
    text = json.dumps(tidy_for_json(data), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def tidy_for_json(obj):
    """``obj`` as plain JSON values: tensors and paths converted, floats rounded, non-finite floats None."""
    if isinstance(obj, dict):
        return {str(k): tidy_for_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [tidy_for_json(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return float(f"{obj:.{FLOAT_DIGITS}g}") if math.isfinite(obj) else None
    return tidy_for_json(_json_default(obj))


def _json_default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


@dataclass
class LoadedRun:
    """A finished run, rebuilt: the fixed quantized model with its fine-tuned weights."""

    path: Path
    policy: Policy
    metrics: dict
    model: torch.nn.Module  # hwqnn.QuantizedModel
    example_input: torch.Tensor


# --- preparing a run directory --------------------------------------------------------------------
def prepare_run_dir(run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Make ``run_dir`` ready for a new run (or a resumed one) before any work is done.

    A new run never lands on an existing run: a directory holding any run file is refused unless
    ``overwrite``, which removes the run files (and nothing else). Stale temporary files of
    interrupted atomic writes are removed in either case.
    """
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run directory {path} exists and is not a directory; choose another --out")
    if resume:
        if not (path / "checkpoint.pt").is_file():
            raise RunDirError(f"cannot resume {path}: no checkpoint.pt there (finished, or not a run directory)")
    else:
        present = [f for f in RUN_FILES if (path / f).exists()]
        if present and not overwrite:
            raise RunDirError(f"{path} already holds a run ({', '.join(present)}); pass --overwrite to replace it, "
                              f"--resume {path} to continue it, or choose another --out")
        for name in present:
            (path / name).unlink()
        if present:
            log.info("overwriting the run in %s", path)
    path.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    return path


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the leftovers of atomic writes that were killed halfway (``.NAME.XXXX.tmp``)."""
    stale = [p for p in folder.glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink()
    return stale


# --- checkpoints ------------------------------------------------------------------------------------
def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """A checkpoint's state, or one RunDirError if the file is truncated, empty or not a hwqnn checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"cannot resume: {path} does not exist (the run never started or already finished)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file; all mean the same to the user
        raise RunDirError(f"cannot read checkpoint {path} ({type(exc).__name__}); it is truncated or not a "
                          f"hwqnn checkpoint: start the run again with --overwrite") from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise RunDirError(f"checkpoint {path} is not a hwqnn checkpoint (missing {', '.join(missing)}); "
                          f"start the run again with --overwrite")
    return state


# --- the fingerprint of a finished run --------------------------------------------------------------
def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _metrics_digest(metrics: dict) -> str:
    body = {k: v for k, v in metrics.items() if k != FINGERPRINT}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _fingerprint(path: Path, metrics: dict) -> dict:
    files = {name: _sha256_file(path / name) for name in BOUND_FILES}
    parts = {**files, "metrics.json": _metrics_digest(metrics)}
    run = hashlib.sha256("".join(f"{k}={v};" for k, v in sorted(parts.items())).encode()).hexdigest()
    return {"algorithm": "sha256", "run": run, "parts": parts}


def write_finished_run(run_dir: str | os.PathLike, metrics: dict) -> dict:
    """Write ``metrics.json`` last, with the fingerprint binding it to the policy and weights on disk.

    Returns the metrics as written (tidied, with the fingerprint).
    """
    path = Path(run_dir)
    tidy = tidy_for_json(metrics)
    tidy[FINGERPRINT] = _fingerprint(path, tidy)
    atomic_write_json(path / "metrics.json", tidy)
    return tidy


def verify_run(run_dir: str | os.PathLike, metrics: dict) -> None:
    """Refuse a finished run whose policy, weights and metrics are not the ones written together."""
    path = Path(run_dir)
    stored = metrics.get(FINGERPRINT)
    if not isinstance(stored, dict) or not isinstance(stored.get("parts"), dict):
        raise RunDirError(f"{path} has no run fingerprint in metrics.json (an unfinished run, a run made by an "
                          f"older hwqnn, or an edited file), so its parts cannot be trusted together; re-run it")
    missing = [f for f in BOUND_FILES if not (path / f).is_file()]
    if missing:
        raise RunDirError(f"{path} is not a finished run directory: missing {', '.join(missing)}")
    actual = _fingerprint(path, metrics)["parts"]
    changed = [name for name, digest in actual.items() if stored["parts"].get(name) != digest]
    if changed:
        raise RunDirError(f"{path}: {', '.join(changed)} changed since the run finished (their fingerprint does not "
                          f"match metrics.json): the files belong to different runs or were edited; re-run the "
                          f"search (--overwrite) instead of mixing them")


def read_metrics(run_dir: str | os.PathLike, *, verify: bool = True) -> dict:
    """The metrics of a finished run, checked against its fingerprint unless ``verify`` is False."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory: {path.name} is missing (run 'hwqnn search' first)")
    try:
        metrics = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(metrics, dict):
        raise RunDirError(f"{path} holds a {type(metrics).__name__}, not the metrics of a run")
    if verify:
        verify_run(Path(run_dir), metrics)
    return metrics


def check_run_dir(run_dir: str | os.PathLike) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"run directory {path} does not exist")
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise RunDirError(f"{path} is not a finished run directory: missing {', '.join(missing)}")
    return path


def load_run(run_dir: str | os.PathLike) -> LoadedRun:
    """Rebuild the quantized model of a finished run (policy + fine-tuned weights)."""
    from .models import create_model
    from .qag import apply_policy

    path = check_run_dir(run_dir)
    metrics = read_metrics(path)  # checks the fingerprint: policy, weights and metrics belong together
    for key in ("model", "num_classes", "input_shape"):
        if key not in metrics:
            raise RunDirError(f"{path / 'metrics.json'} lacks '{key}', needed to rebuild the model")
    try:
        policy = Policy.load(path / "policy.yaml")
    except PolicyError as exc:
        raise RunDirError(f"{path}: {exc}") from None
    float_model = create_model(metrics["model"], num_classes=int(metrics["num_classes"]))
    example = torch.zeros(2, *metrics["input_shape"])
    try:
        state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunDirError(f"{path / 'model.pt'} does not load: {exc}") from None
    # A model trained without joins (an HQNAS subnet, or a run saved before joins existed) is rebuilt without.
    joins = any("_in0." in key or "_in1." in key for key in state if key.startswith("net.hwqnn_ops."))
    try:
        model = apply_policy(float_model, policy, example, joins=joins)
    except PolicyError as exc:
        raise RunDirError(f"{path}: the policy does not match model '{metrics['model']}': {exc}") from None
    try:
        model.load_state_dict(state)
    except Exception as exc:
        raise RunDirError(f"{path / 'model.pt'} does not load into model '{metrics['model']}': {exc}") from None
    model.eval()
    return LoadedRun(path, policy, metrics, model, example)
