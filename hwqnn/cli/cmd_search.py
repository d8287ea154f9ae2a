"""``hwqnn search``: search, finalize and fine-tune a policy for a target, write a run directory."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from ..errors import HwqnnError, RunDirError
from ..searching.budgets import DEFAULT_BUDGETS, METRICS, format_cost


def register(subparsers) -> None:
    p = subparsers.add_parser("search", help="search a mixed-precision policy for a device under budgets",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--target", default="jetson", help="hardware profile name or YAML path (hwqnn profiles list)")
    p.add_argument("--model", default=None, help="zoo model (default: the data set's default, tiny_cnn for digits)")
    p.add_argument("--data", default="digits", help="digits (embedded) or cifar10")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 .npz file or folder")
    p.add_argument("--budget", action="append", default=None, metavar="METRIC=VALUE",
                   help=f"repeatable; latency=2ms, size=1MB, energy=5mJ, memory=512KiB or a multiple of "
                        f"w8a8 such as latency=0.6x (default: {' '.join(DEFAULT_BUDGETS)})")
    p.add_argument("--method", choices=("search", "uniform"), default="search")
    p.add_argument("--bits", default="4/4", help="W/A bits of the uniform baseline (--method uniform)")
    p.add_argument("--scheme", default="uniform", help="scheme of the uniform baseline (--method uniform)")
    p.add_argument("--scheme-sharing", choices=("layer", "model"), default="layer")
    p.add_argument("--single-path", action="store_true",
                   help="cheap sampled search: each activation slot mixes 2 Gumbel-sampled schemes per step instead of all")
    p.add_argument("--bits-range", default="2:8", help="MIN:MAX of the learned bitwidths")
    p.add_argument("--epochs", type=int, default=None,
                   help="search epochs (pretrain and fine-tune scale with it unless set)")
    p.add_argument("--pretrain-epochs", type=int, default=None)
    p.add_argument("--finetune-epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all cores)")
    p.add_argument("--out", default=None, help="run directory (default: runs/<model>-<target>-<time>)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run")
    p.set_defaults(func=run)


def _parse_pair(text: str, sep: str, what: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(sep))
    except ValueError:
        raise HwqnnError(f"{what} must look like A{sep}B with integers, got {text!r}") from None
    return a, b


def run(args) -> int:
    from .. import search
    from ..data import load_dataset
    from ..models import create_model, model_spec
    from ..searching import SearchConfig

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    if args.resume:
        return _resume(args)
    data = load_dataset(args.data, args.data_dir, seed=args.seed)
    model_name = args.model or ("tiny_cnn" if data.name == "digits" else "resnet20")
    spec = model_spec(model_name)
    if tuple(spec.input_shape) != tuple(data.input_shape):
        raise HwqnnError(f"model '{model_name}' expects inputs {tuple(spec.input_shape)} but data '{data.name}' "
                         f"has {tuple(data.input_shape)}; pick a model made for {data.name}")
    overrides = {}
    if args.epochs is not None:
        overrides.update(search_epochs=args.epochs, finetune_epochs=args.epochs, pretrain_epochs=2 * args.epochs)
    if args.pretrain_epochs is not None:
        overrides["pretrain_epochs"] = args.pretrain_epochs
    if args.finetune_epochs is not None:
        overrides["finetune_epochs"] = args.finetune_epochs
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if data.name == "cifar10":
        overrides.setdefault("augment", True)
        overrides.setdefault("batch_size", 128)
        overrides.setdefault("lr", 3e-3)
    config = SearchConfig(target=args.target, budgets=args.budget, method=args.method,
                          uniform_bits=_parse_pair(args.bits, "/", "--bits"), uniform_scheme=args.scheme,
                          scheme_sharing=args.scheme_sharing, bits_range=_parse_pair(args.bits_range, ":", "--bits-range"),
                          seed=args.seed, device=args.device, single_path=args.single_path, **overrides)
    out = Path(args.out) if args.out else Path("runs") / f"{model_name}-{args.target}-{time.strftime('%Y%m%d-%H%M%S')}"
    torch.manual_seed(args.seed)
    model = create_model(model_name, num_classes=data.num_classes)
    meta = {"model": model_name, "num_classes": data.num_classes, "input_shape": list(data.input_shape),
            "data": data.name, "data_dir": str(args.data_dir) if args.data_dir else None,
            "command": "hwqnn " + " ".join(_argv())}
    print(f"hwqnn search: {model_name} on {data.name} for target '{args.target}', run directory {out}")
    result = search(model, data.train, data.test, target=args.target, budgets=config.budgets, config=config,
                    run_dir=out, meta=meta)
    print_summary(result)
    return 0


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


def _resume(args) -> int:
    from .. import search
    from ..data import load_dataset
    from ..models import create_model
    from ..searching import SearchConfig

    run_dir = Path(args.resume)
    ckpt = run_dir / "checkpoint.pt"
    if not ckpt.is_file():
        raise RunDirError(f"cannot resume {run_dir}: no checkpoint.pt there (finished, or not a run directory)")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    config = SearchConfig.from_dict(state["config"])
    meta = state.get("meta") or {}
    data = load_dataset(meta.get("data", "digits"), meta.get("data_dir"), seed=config.seed)
    torch.manual_seed(config.seed)
    model = create_model(meta["model"], num_classes=data.num_classes)
    print(f"hwqnn search: resuming {run_dir} at phase {state['phase']}, epoch {state['epoch']}")
    result = search(model, data.train, data.test, target=config.target, budgets=config.budgets, config=config,
                    run_dir=run_dir, meta=meta, resume=True)
    print_summary(result)
    return 0


def print_summary(result) -> None:
    import pandas as pd

    m = result.metrics
    print()
    print(f"target {m['target']}  model {m.get('model', '?')}  method {m['method']}")
    fa = m["float_accuracy"]
    print(f"accuracy: float {fa:.2f}%  quantized {m['quantized_accuracy']:.2f}%" if fa is not None
          else f"accuracy: quantized {m['quantized_accuracy']:.2f}%")
    rows = []
    names = {v: k for k, v in METRICS.items()}
    for key, value in m["costs"].items():
        budget = m["budgets"].get(key)
        rows.append({"cost": names[key], "value": format_cost(key, value),
                     "w8a8": format_cost(key, m["reference_w8a8"][key]),
                     "budget": f"{budget['spec']} = {format_cost(key, budget['bound'])}" if budget else "-",
                     "ok": ("yes" if m["within_budget"][key] else "NO") if budget else "-"})
    print(pd.DataFrame(rows).to_string(index=False))
    print()
    policy_rows = result.policy.summary_rows(result.model.layer_names)
    print(pd.DataFrame(policy_rows).to_string(index=False))
    if result.run_dir:
        print(f"\nrun directory: {result.run_dir}")
