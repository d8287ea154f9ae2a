"""``hwqnn pareto``: sweep a budget for one target, run uniform baselines, write the Pareto front.

The helpers ``add_study_arguments`` / ``prepare_study`` are shared with ``hwqnn report``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import DataError, HwqnnError, default_run_dir
from . import _arg_types as types
from ._config_file import enable_config_file
from ._parsing import HelpFormatter, one_line_errors


def register(subparsers) -> None:
    p = subparsers.add_parser("pareto", help="sweep a budget, run uniform baselines, write the Pareto front",
                              formatter_class=HelpFormatter)
    one_line_errors(p)
    p.add_argument("--target", default="jetson", help="hardware profile name or YAML path (hwqnn profiles list)")
    p.add_argument("--sweep", default="auto:6",
                   help="METRIC=LOW:HIGH:COUNT (e.g. latency=0.4x:1.0x:6, size=200KiB:800KiB:4), or auto[:COUNT] "
                        "(default auto:6): latency where lower bits make the device faster, size where they shrink "
                        "the stored model, one point where neither (TensorRT, TFLite: every deployable policy is int8)")
    p.add_argument("--out", default=None, help="sweep directory (default: runs/pareto-<model>-<target>-<time>)")
    p.add_argument("--storage", nargs="?", const="sqlite", default=None, metavar="URL",
                   help="evaluate the points through a shared optuna study that other workers started with the same "
                        "arguments join: alone, SQLite in --out (workers on one machine); or an RDB URL such as "
                        "postgresql://user:pass@host/db (workers on many machines). Every point then starts from "
                        "the float weights (no warm start)")
    p.add_argument("--study-name", default=None,
                   help="name of the shared study (default: from the model, data, target and sweep)")
    add_study_arguments(p)
    p.set_defaults(func=run)
    enable_config_file(p)


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    """Model, data, training budget and sweep options shared by ``pareto`` and ``report``."""
    types.add_model_data_arguments(p)
    p.add_argument("--budget", action="append", default=None, metavar="METRIC=VALUE", type=types.budget,
                   help="repeatable: a budget that holds at every point besides the swept one (e.g. size=0.5x)")
    p.add_argument("--baselines", default="w8a8,w4a4,w3a3,w2a2", help="uniform baselines, comma-separated; '' for none")
    p.add_argument("--epochs", type=types.int_at_least(0), default=None,
                   help="search epochs of the first point (fine-tune the same, pretraining twice that)")
    p.add_argument("--pretrain-epochs", type=types.int_at_least(0), default=None,
                   help="float pretraining epochs (default: twice --epochs, or 15)")
    p.add_argument("--search-epochs", type=types.int_at_least(0), default=None,
                   help="search epochs of the first point (default: --epochs, or 8)")
    p.add_argument("--finetune-epochs", type=types.int_at_least(0), default=None,
                   help="fine-tune epochs of the first point (default: --epochs, or 8)")
    p.add_argument("--baseline-epochs", type=types.int_at_least(0), default=None,
                   help="fine-tune epochs of each uniform baseline (default: search + fine-tune epochs)")
    p.add_argument("--short-fraction", type=types.fraction, default=0.125,
                   help="search and fine-tune epochs of warm-started points, as a fraction of the first point's")
    p.add_argument("--no-warm-start", action="store_true", help="run every point as an independent full search")
    p.add_argument("--single-path", action=argparse.BooleanOptionalAction, default=None,
                   help="the sampled search (default; one quantization per slot and step); --no-single-path: the mixture")
    p.add_argument("--batch-size", type=types.int_at_least(1), default=None,
                   help="training batch size (default: 64; 128 for cifar10)")
    # The two limits are checked against the split's size once the data is loaded (see ``subset``).
    p.add_argument("--train-limit", type=int, default=None,
                   help="use this many training images (seeded random subset) for search, fine-tune and baselines; "
                        "the float pretraining still uses them all")
    p.add_argument("--eval-limit", type=int, default=None,
                   help="evaluate on this many test images (seeded subset)")
    p.add_argument("--float-weights", default=None, metavar="PATH",
                   help="cached float state dict: loaded if it exists, else pretrained once and saved there")
    p.add_argument("--seed", type=types.seed, default=0, help="random seed: data split, initialisation, data order")
    p.add_argument("--device", type=types.device, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=types.int_at_least(1), default=None,
                   help="torch CPU threads (default: the cores not busy with other work now)")


@dataclass
class Study:
    """What ``prepare_study`` hands to the sweep: data, the float model, its config and metadata."""

    model: torch.nn.Module
    model_name: str  # short and safe for directory names; meta["model"] holds what rebuilds it
    train: object
    val: object
    pretrain: object
    config: object  # SearchConfig
    meta: dict
    sweep_options: dict


def prepare_study(args) -> Study:
    from .. import SearchConfig, check_device, load_model_and_data, parse_baselines, parse_budgets

    if args.float_weights and Path(args.float_weights).is_dir():
        raise HwqnnError(f"--float-weights {args.float_weights} is a directory; pass a file path (e.g. float.pt), "
                         "loaded if it exists, else written there")
    fixed_budgets = list(args.budget or [])
    parse_budgets(fixed_budgets)  # a metric given twice fails before any work
    baselines = parse_baselines(args.baselines)
    check_device(args.device)
    from .. import choose_threads

    torch.set_num_threads(choose_threads(args.threads))  # the cores not busy now, unless told
    built = load_model_and_data(args.model, args.data, args.data_dir, seed=args.seed,
                                allow_pickle=getattr(args, "allow_pickle", False), command=command_line())
    data = built.data
    overrides: dict = {}
    if args.epochs is not None:
        overrides.update(search_epochs=args.epochs, finetune_epochs=args.epochs, pretrain_epochs=2 * args.epochs)
    for name in ("pretrain_epochs", "search_epochs", "finetune_epochs", "batch_size", "single_path"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if built.meta["data"] == "cifar10":
        overrides.setdefault("augment", True)
        overrides.setdefault("batch_size", 128)
        overrides.setdefault("lr", 3e-3)
    config = SearchConfig(seed=args.seed, device=args.device, **overrides)
    train = subset(data.train, args.train_limit, args.seed, "--train-limit")
    val = subset(data.test, args.eval_limit, args.seed + 1, "--eval-limit")
    options = {"baselines": baselines, "fixed_budgets": fixed_budgets,
               "warm_start": not args.no_warm_start, "short_fraction": args.short_fraction,
               "baseline_epochs": args.baseline_epochs, "float_weights": args.float_weights}
    return Study(built.model, built.display_name, train, val, data.train, config, built.meta, options)


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

    from .. import default_storage_url, is_auto_sweep, parse_sweep, run_sweep

    profile = cost_models.load_profile(args.target)  # resolved once; an unknown target fails before loading data
    if not is_auto_sweep(args.sweep):
        parse_sweep(args.sweep)  # a bad sweep fails before any data is loaded or model trained
    study = prepare_study(args)
    if args.storage is not None and not args.out:
        raise HwqnnError("--storage needs --out: workers of one study must be told where to write the sweep")
    out = Path(args.out) if args.out else \
        default_run_dir("pareto", study.model_name, profile.name)
    storage = default_storage_url(out) if args.storage == "sqlite" else args.storage
    if storage is not None:
        out.mkdir(parents=True, exist_ok=True)
    print(f"hwqnn pareto: {study.model_name} for target '{profile.name}', sweep {args.sweep}, sweep directory {out}")
    result = run_sweep(study.model, study.train, study.val, target=profile, sweep=args.sweep, config=study.config,
                       out_dir=out, meta=study.meta, pretrain_data=study.pretrain, storage=storage,
                       study_name=args.study_name, **study.sweep_options)
    print_points(result)
    return 0


def print_points(result) -> None:
    from .. import readable_table

    columns = ["name", "kind", "status", "accuracy", "latency_s", "energy_j", "size_bytes", "peak_memory_bytes",
               "on_front", "wall_time_s"]
    print()
    print(readable_table(result.points[columns]).to_string(index=False))
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
