"""``hwqnn pareto``: sweep a budget for one target, run uniform baselines, write the Pareto front.

The helpers ``add_study_arguments`` / ``prepare_study`` are shared with ``hwqnn report``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DataError, HwqnnError


def register(subparsers) -> None:
    p = subparsers.add_parser("pareto", help="sweep a budget, run uniform baselines, write the Pareto front",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--target", default="jetson", help="hardware profile name or YAML path (hwqnn profiles list)")
    p.add_argument("--sweep", default="latency=0.4x:1.0x:6",
                   help="METRIC=LOW:HIGH:COUNT (e.g. latency=0.4x:1.0x:6, size=200KiB:800KiB:4), or auto[:COUNT] "
                        "to sweep latency where lower bits make the device faster and size elsewhere")
    p.add_argument("--out", default=None, help="sweep directory (default: runs/pareto-<model>-<target>-<time>)")
    add_study_arguments(p)
    p.set_defaults(func=run)


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    """Model, data, training budget and sweep options shared by ``pareto`` and ``report``."""
    p.add_argument("--model", default=None, help="zoo model (default: the data set's default, tiny_cnn for digits)")
    p.add_argument("--data", default="digits", help="digits (embedded) or cifar10")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 .npz file or folder")
    p.add_argument("--budget", action="append", default=[], metavar="METRIC=VALUE",
                   help="repeatable: a budget that holds at every point besides the swept one (e.g. size=0.5x)")
    p.add_argument("--baselines", default="w8a8,w4a4,w3a3,w2a2", help="uniform baselines, comma-separated; '' for none")
    p.add_argument("--epochs", type=int, default=None,
                   help="search epochs of the first point (fine-tune the same, pretraining twice that)")
    p.add_argument("--pretrain-epochs", type=int, default=None)
    p.add_argument("--search-epochs", type=int, default=None)
    p.add_argument("--finetune-epochs", type=int, default=None)
    p.add_argument("--baseline-epochs", type=int, default=None,
                   help="fine-tune epochs of each uniform baseline (default: search + fine-tune epochs)")
    p.add_argument("--short-fraction", type=float, default=0.125,
                   help="search and fine-tune epochs of warm-started points, as a fraction of the first point's")
    p.add_argument("--no-warm-start", action="store_true", help="run every point as an independent full search")
    p.add_argument("--single-path", action="store_true", help="cheap sampled search (2 sampled schemes per activation slot)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--train-limit", type=int, default=None,
                   help="use this many training images (seeded random subset) for search, fine-tune and baselines; "
                        "the float pretraining still uses them all")
    p.add_argument("--eval-limit", type=int, default=None, help="evaluate on this many test images (seeded subset)")
    p.add_argument("--float-weights", default=None, metavar="PATH",
                   help="cached float state dict: loaded if it exists, else pretrained once and saved there")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: all cores; 1 is faster on a machine shared with other jobs)")


@dataclass
class Study:
    """What ``prepare_study`` hands to the sweep: data, the float model, its config and metadata."""

    model: torch.nn.Module
    model_name: str
    train: object
    val: object
    pretrain: object
    config: object  # SearchConfig
    meta: dict
    sweep_options: dict


def prepare_study(args) -> Study:
    from ..data import load_dataset
    from ..models import create_model, model_spec
    from ..pareto import parse_baselines
    from ..searching import SearchConfig

    if args.threads is not None and args.threads < 1:
        raise HwqnnError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    data = load_dataset(args.data, args.data_dir, seed=args.seed)
    model_name = args.model or ("tiny_cnn" if data.name == "digits" else "resnet20")
    spec = model_spec(model_name)
    if tuple(spec.input_shape) != tuple(data.input_shape):
        raise HwqnnError(f"model '{model_name}' expects inputs {tuple(spec.input_shape)} but data '{data.name}' "
                         f"has {tuple(data.input_shape)}; pick a model made for {data.name}")
    overrides: dict = {}
    if args.epochs is not None:
        overrides.update(search_epochs=args.epochs, finetune_epochs=args.epochs, pretrain_epochs=2 * args.epochs)
    for name in ("pretrain_epochs", "search_epochs", "finetune_epochs", "batch_size"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if data.name == "cifar10":
        overrides.setdefault("augment", True)
        overrides.setdefault("batch_size", 128)
        overrides.setdefault("lr", 3e-3)
    config = SearchConfig(seed=args.seed, device=args.device, single_path=args.single_path, **overrides)
    train = subset(data.train, args.train_limit, args.seed, "--train-limit")
    val = subset(data.test, args.eval_limit, args.seed + 1, "--eval-limit")
    torch.manual_seed(args.seed)
    model = create_model(model_name, num_classes=data.num_classes)
    meta = {"model": model_name, "num_classes": data.num_classes, "input_shape": list(data.input_shape),
            "data": data.name, "data_dir": str(args.data_dir) if args.data_dir else None, "command": command_line()}
    options = {"baselines": parse_baselines(args.baselines), "fixed_budgets": list(args.budget),
               "warm_start": not args.no_warm_start, "short_fraction": args.short_fraction,
               "baseline_epochs": args.baseline_epochs, "float_weights": args.float_weights}
    return Study(model, model_name, train, val, data.train, config, meta, options)


def subset(dataset, limit: int | None, seed: int, flag: str):
    """A seeded random subset of ``limit`` items (the whole set when ``limit`` is None)."""
    if limit is None:
        return dataset
    if not 1 <= limit <= len(dataset):
        raise DataError(f"{flag} must be between 1 and {len(dataset)} (the split's size), got {limit}")
    from torch.utils.data import Subset

    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:limit]
    return Subset(dataset, sorted(order.tolist()))


def command_line() -> str:
    return "hwqnn " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def run(args) -> int:
    import cost_models

    from ..pareto import run_sweep

    target = cost_models.load_profile(args.target).name  # unknown target: fail before loading data
    study = prepare_study(args)
    out = Path(args.out) if args.out else Path("runs") / f"pareto-{study.model_name}-{target}-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"hwqnn pareto: {study.model_name} for target '{target}', sweep {args.sweep}, sweep directory {out}")
    result = run_sweep(study.model, study.train, study.val, target=target, sweep=args.sweep, config=study.config,
                       out_dir=out, meta=study.meta, pretrain_data=study.pretrain, **study.sweep_options)
    print_points(result)
    return 0


def print_points(result) -> None:
    from ..report._tables import readable

    columns = ["name", "kind", "status", "accuracy", "latency_s", "energy_j", "size_bytes", "peak_memory_bytes",
               "on_front", "wall_time_s"]
    print()
    print(readable(result.points[columns]).to_string(index=False))
    print()
    infeasible = result.points[result.points["status"] == "infeasible"]
    if len(infeasible):
        print(f"{len(infeasible)} budget(s) infeasible on this target; the first says: {infeasible['message'].iloc[0]}")
        print("(--sweep auto picks a metric and range this device can reach)")
    print(f"front over accuracy and the swept cost: {', '.join(result.swept_front.front)}")
    print(result.swept_front.describe())
    print(result.front.describe())
    if result.out_dir:
        print(f"\nsweep directory: {result.out_dir} (points.csv, pareto.png, pareto.svg, sweep.json, runs/)")
