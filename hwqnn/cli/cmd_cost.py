"""``hwqnn cost``: latency, energy, size and peak memory of a model and policy on a target."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from cost_models import estimate, extract_workload
from cost_models.reference_workloads import list_reference_models, reference_workload

from ..errors import HwqnnError

TABLE_COLUMNS = ("name", "op_type", "macs", "bits", "exec_kind", "exec_w_bits", "exec_a_bits", "device",
                 "latency_s", "energy_j", "weight_bytes", "activation_bytes", "bound")


def register(subparsers) -> None:
    p = subparsers.add_parser("cost", help="estimate a model's latency, energy, size and memory on a device",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="zoo model name (hwqnn.models), or a reference ImageNet "
                                                  "model with --reference")
    p.add_argument("--target", default="jetson", help="hardware profile name, alias or YAML path (hwqnn profiles list)")
    p.add_argument("--policy", default="w8a8", help="uniform policy (w8a8, w4a8, fp16, fp32) or a policy YAML file")
    p.add_argument("--batch", type=int, default=1, help="batch size the costs are computed for")
    p.add_argument("--num-classes", type=int, default=10, help="classes of the zoo model")
    p.add_argument("--reference", action="store_true",
                   help=f"--model names a reference ImageNet network instead: {', '.join(list_reference_models())}")
    p.add_argument("--input-size", type=int, default=224, help="image size of a --reference model")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the full report as JSON")
    p.set_defaults(func=run)


def _workload(args):
    if args.reference:
        return reference_workload(args.model, args.input_size)
    from ..models import create_model, model_spec

    spec = model_spec(args.model)
    model = create_model(args.model, num_classes=args.num_classes)
    return extract_workload(model, torch.randn(1, *spec.input_shape))


def _policy(text: str):
    path = Path(text)
    if text.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise HwqnnError(f"policy file {text!r} not found; pass a uniform policy such as w8a8 or a policy YAML")
        from ..policy import Policy

        return Policy.load(path)
    return text


def run(args) -> int:
    if args.batch < 1:
        raise HwqnnError(f"--batch must be >= 1, got {args.batch}")
    report = estimate(_workload(args), None, args.target, _policy(args.policy), batch_size=args.batch)
    print(report.summary())
    table = report.layers.loc[:, list(TABLE_COLUMNS)].copy()
    table["latency_us"] = table.pop("latency_s") * 1e6
    table["energy_uj"] = table.pop("energy_j") * 1e6
    with_fmt = table.to_string(index=False, float_format=lambda v: f"{v:.4g}")
    print(with_fmt)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0
