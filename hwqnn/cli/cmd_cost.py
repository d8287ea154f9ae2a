"""``hwqnn cost``: latency, energy, size and peak memory of a model and policy on a target."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cost_models import estimate, extract_workload, list_reference_models, reference_workload

from .. import HwqnnError
from .._io import atomic_write_text
from ._parsing import HelpFormatter

TABLE_COLUMNS = ("name", "op_type", "macs", "bits", "exec_kind", "exec_w_bits", "exec_a_bits", "device",
                 "latency_s", "energy_j", "weight_bytes", "activation_bytes", "bound")


def register(subparsers) -> None:
    p = subparsers.add_parser("cost", help="estimate a model's latency, energy, size and memory on a device",
                              formatter_class=HelpFormatter)
    p.add_argument("--model", required=True, help="zoo model name (hwqnn.models), or a reference ImageNet "
                                                  "model with --reference")
    p.add_argument("--target", default="jetson", help="hardware profile name, alias or YAML path (hwqnn profiles list)")
    p.add_argument("--policy", default="w8a8", help="uniform policy (w8a8, w4a8, fp16, fp32) or a policy YAML file")
    p.add_argument("--batch", type=int, default=1, help="batch size the costs are computed for")
    p.add_argument("--num-classes", type=int, default=10, help="classes of the zoo model")
    p.add_argument("--reference", action="store_true",
                   help=f"--model names a reference ImageNet network instead: {', '.join(list_reference_models())}")
    p.add_argument("--input-size", type=int, default=224, help="image size of a --reference model")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="also write the full report as JSON (missing parent folders are created)")
    p.set_defaults(func=run)


def _workload(args):
    if args.reference:
        return reference_workload(args.model, args.input_size)
    from .. import create_model, model_spec

    spec = model_spec(args.model)
    model = create_model(args.model, num_classes=args.num_classes)
    return extract_workload(model, torch.randn(1, *spec.input_shape))


def _policy(text: str):
    path = Path(text)
    if text.endswith((".yaml", ".yml")) or _is_file(path):
        if not _is_file(path):
            raise HwqnnError(f"policy file {text[:200]!r} not found; pass a uniform policy such as w8a8 or a policy "
                             "YAML")
        from .. import Policy

        return Policy.load(path)
    return text


def _is_file(path: Path) -> bool:
    """Path.is_file, but False (not OSError) for a name too long or otherwise impossible on this system."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _check_sizes(args) -> None:
    """Refuse sizes no model can have, before any work (argparse only checks that they are integers)."""
    if args.batch < 1:
        raise HwqnnError(f"--batch must be >= 1, got {args.batch}")
    if args.input_size < 1:
        raise HwqnnError(f"--input-size must be >= 1 (pixels per side of the image), got {args.input_size}")
    if args.num_classes < 1:
        raise HwqnnError(f"--num-classes must be >= 1, got {args.num_classes}")


def _write_json(path: str, report) -> None:
    """Write the report atomically, creating missing parent folders; an unwritable path is one error line."""
    try:
        atomic_write_text(path, json.dumps(report.to_dict(), indent=2, allow_nan=False))
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != path else ""
        raise HwqnnError(f"cannot write --json {path}: {exc.strerror or exc}{where}") from None


def run(args) -> int:
    _check_sizes(args)
    report = estimate(_workload(args), None, args.target, _policy(args.policy), batch_size=args.batch)
    print(report.summary())
    table = report.layers.loc[:, list(TABLE_COLUMNS)].copy()
    table["latency_us"] = table.pop("latency_s") * 1e6
    table["energy_uj"] = table.pop("energy_j") * 1e6
    with_fmt = table.to_string(index=False, float_format=lambda v: f"{v:.4g}")
    print(with_fmt)
    if args.json:
        _write_json(args.json, report)
        print(f"wrote {args.json}")
    return 0
