"""``hwqnn nas``: joint architecture + quantization search (HQNAS): train a supernet, search it with NSGA-II
for a target under budgets, extract the chosen subnet as a run directory; continue or re-target a trained one."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from .. import NasConfig, format_cost, list_spaces, nas
from . import _arg_types as types
from ._parsing import HelpFormatter, one_line_errors

_DEFAULTS = NasConfig()


def _space(text: str) -> str:
    if text not in list_spaces():
        raise argparse.ArgumentTypeError(f"unknown search space '{text}'; known spaces: {', '.join(list_spaces())}")
    return text


def register(subparsers) -> None:
    p = subparsers.add_parser("nas", help="joint architecture + quantization search (HQNAS) for a device",
                              formatter_class=HelpFormatter)
    one_line_errors(p)
    p.add_argument("--space", type=_space, default=None,
                   help=f"registered search space (default: {_DEFAULTS.space}); one of {', '.join(list_spaces())}")
    p.add_argument("--list-spaces", action="store_true", help="print the registered spaces and their sizes, then exit")
    p.add_argument("--target", default=None, help="hardware profile name or YAML path (default: jetson)")
    p.add_argument("--data", default=None, help="digits, cifar10 or package.module:factory (default: the space's)")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 .npz file or folder")
    p.add_argument("--budget", action="append", default=None, metavar="METRIC=VALUE", type=types.budget,
                   help="repeatable; latency=2ms, size=1MB, energy=5mJ, memory=512KiB, or a multiple of the space's "
                        "largest subnet at w8a8 such as latency=0.5x")
    p.add_argument("--epochs", type=types.int_at_least(0), default=None,
                   help=f"supernet training epochs (default: {_DEFAULTS.epochs}; with --continue a quarter of the "
                        f"original run's)")
    p.add_argument("--batch-size", type=types.int_at_least(1), default=None, help="training batch size")
    p.add_argument("--lr", type=float, default=None, help=f"supernet learning rate (default: {_DEFAULTS.lr})")
    p.add_argument("--augment", action="store_true", default=None, help="random crop and flip (natural images)")
    p.add_argument("--trials", type=types.int_at_least(1), default=None,
                   help=f"NSGA-II evaluations (default: {_DEFAULTS.trials})")
    p.add_argument("--population", type=types.int_at_least(2), default=None,
                   help=f"NSGA-II population (default: {_DEFAULTS.population})")
    p.add_argument("--all-bits", action="store_true", default=None,
                   help="search every bitwidth of the space, not only those the target runs natively")
    p.add_argument("--pick", default=None, help="front subnet to extract: accuracy (default) or a cost key")
    p.add_argument("--finetune-epochs", type=types.int_at_least(0), default=None,
                   help="fine-tune the extracted subnet (default: 0)")
    p.add_argument("--cost-batch-size", type=types.int_at_least(1), default=None,
                   help="batch size the target's costs are estimated at (default: 1)")
    p.add_argument("--seed", type=types.seed, default=None, help="random seed")
    p.add_argument("--threads", type=types.int_at_least(1), default=None,
                   help="CPU threads for torch (default: the cores not busy with other work now)")
    p.add_argument("--out", default=None, help="run directory (default: runs/nas-<space>-<target>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory given by --out")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", metavar="RUN", default=None, help="continue a killed run in RUN")
    mode.add_argument("--continue", dest="continue_from", metavar="RUN", default=None,
                      help="continue RUN's supernet on new data (--data/--data-dir) with replay and distillation, "
                           "then search")
    mode.add_argument("--retarget", metavar="RUN", default=None,
                      help="search RUN's trained supernet for another --target or --budget, without training")
    p.set_defaults(func=run)


def _overrides(args) -> dict:
    names = ("space", "target", "data", "data_dir", "epochs", "batch_size", "lr", "augment", "trials", "population",
             "all_bits", "pick", "finetune_epochs", "cost_batch_size", "seed")
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if args.budget is not None:
        given["budgets"] = tuple(str(b) for b in args.budget)
    return given


def run(args) -> int:
    if args.list_spaces:
        from .. import get_nas_space

        for name in list_spaces():
            space = get_nas_space(name)
            print(f"{name:14s} {space.description}; input {space.input_shape}; {space.describe_size()}")
        return 0
    from .. import choose_threads

    torch.set_num_threads(choose_threads(args.threads))  # the cores not busy now, unless told
    overrides = _overrides(args)
    source = args.continue_from or args.retarget
    if args.continue_from and "epochs" not in overrides:
        from .. import read_nas_config

        overrides["epochs"] = max(1, -(-read_nas_config(args.continue_from).epochs // 4))
    if args.resume:
        out = Path(args.resume)
    elif args.out:
        out = Path(args.out)
    else:
        space = overrides.get("space") or (source and "from-" + Path(source).name) or _DEFAULTS.space
        out = Path("runs") / f"nas-{space}-{overrides.get('target', 'jetson')}-{time.strftime('%Y%m%d-%H%M%S')}"
    what = "re-targeting" if args.retarget else "continuing" if args.continue_from else "resuming" if args.resume else "searching"
    print(f"hwqnn nas: {what}, run directory {out}")
    meta = {"command": "hwqnn " + " ".join(shlex.quote(a) for a in sys.argv[1:])}
    result = nas(run_dir=out, resume=bool(args.resume), overwrite=args.overwrite, continue_from=args.continue_from,
                 retarget=args.retarget, meta=meta, **overrides)
    print_summary(result)
    return 0


def print_summary(result) -> None:
    m = result.metrics
    print(f"space {m['space']}  target {m['target']}  architecture {m['architecture']['architecture']}")
    wb, ab = result.subnet.mean_bits()
    print(f"accuracy: supernet (held-out) {m['inherited_accuracy']:.2f}%  extracted (test) "
          f"{m['quantized_accuracy']:.2f}%  mean bits w{wb:.1f} a{ab:.1f}")
    print("costs: " + "  ".join(f"{k} {format_cost(k, v)}" for k, v in m["costs"].items()))
    print(f"Pareto front: {len(result.front)} subnets (front.csv); time: "
          + ", ".join(f"{k} {v:.1f}s" for k, v in m["wall_time_s"].items()))
    print(f"run directory: {result.run_dir}  (hwqnn export {result.run_dir})")
