"""``hwqnn search``: search, finalize and fine-tune a policy for a target, write a run directory."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from cost_models import CostMetric

from .. import DEFAULT_BUDGETS, format_cost, list_strategies
from . import _arg_types as types
from ._config_file import enable_config_file
from ._parsing import HelpFormatter, one_line_errors


def register(subparsers) -> None:
    p = subparsers.add_parser("search", help="search a mixed-precision policy for a device under budgets",
                              formatter_class=HelpFormatter)
    one_line_errors(p)
    p.add_argument("--target", default="jetson", help="hardware profile name or YAML path (hwqnn profiles list)")
    types.add_model_data_arguments(p)
    p.add_argument("--budget", action="append", default=None, metavar="METRIC=VALUE", type=types.budget,
                   help=f"repeatable; latency=2ms, size=1MB, energy=5mJ, memory=512KiB or a multiple of "
                        f"w8a8 such as latency=0.6x (default: {' '.join(DEFAULT_BUDGETS)} where the target bit-packs "
                        f"weights; latency=1.0x where its runtime stores them in int8 containers, e.g. TensorRT)")
    p.add_argument("--method", type=types.method, default="search",
                   help="a registered search strategy: search (learn schemes and bits under the budgets), uniform "
                        f"(the fixed --bits baseline); registered now: {', '.join(list_strategies())}")
    p.add_argument("--bits", default="4/4", type=types.bits_pair, metavar="W/A",
                   help="W/A bits of the uniform baseline (--method uniform)")
    p.add_argument("--scheme", default="uniform", type=types.scheme,
                   help="scheme of the uniform baseline (--method uniform)")
    p.add_argument("--scheme-sharing", choices=("layer", "model"), default="layer",
                   help="search a scheme per layer, or one for the whole model")
    p.add_argument("--single-path", action=argparse.BooleanOptionalAction, default=None,
                   help="the sampled search (default): each slot quantizes once per step, one scheme drawn from its "
                        "probabilities at a stochastically rounded bitwidth; --no-single-path: the mixture of every "
                        "scheme at both roundings (the exact DNAS gradient, several times slower)")
    p.add_argument("--warm-start-bits", choices=("hawq", "none"), default=None,
                   help="where the learned bits start: 'hawq' (default), the Hessian-aware (--method hawq) policy, a "
                        "point within the budgets; 'none', the top of --bits-range")
    p.add_argument("--budget-fill", type=types.fraction_or_off, default=None, metavar="SHARE",
                   help="during the search, keep the tightest budget at least this full (default 0.97): unspent "
                        "budget is accuracy left unused; 1 targets the budget exactly; 'off': budgets as upper "
                        "bounds only")
    p.add_argument("--curvature-weight", type=types.non_negative, default=None, metavar="W",
                   help="weight of the second-order (Hessian-trace-weighted) loss of each slot's expected "
                        "quantization in the search's loss (default 0.5, the Taylor expansion's 1/2; 0: off, the "
                        "first-order gradient only)")
    p.add_argument("--bilevel", action="store_true",
                   help="DNAS-style updates: scheme logits and bits step on a held-out 20%% of the training data, "
                        "the weights on the rest (default: joint updates on every batch)")
    p.add_argument("--bits-range", default="2:8", type=types.bits_range, metavar="MIN:MAX",
                   help="MIN:MAX of the learned bitwidths")
    p.add_argument("--epochs", type=types.int_at_least(0), default=None,
                   help="search epochs (pretrain and fine-tune scale with it unless set; default: 8)")
    p.add_argument("--pretrain-epochs", type=types.int_at_least(0), default=None,
                   help="float pretraining epochs (default: twice --epochs, or 15)")
    p.add_argument("--finetune-epochs", type=types.int_at_least(0), default=None,
                   help="fine-tune epochs of the final policy (default: --epochs, or 8)")
    p.add_argument("--batch-size", type=types.int_at_least(1), default=None,
                   help="training batch size (default: 64; 128 for cifar10)")
    p.add_argument("--seed", type=types.seed, default=0, help="random seed: data split, initialisation, data order")
    p.add_argument("--device", type=types.device, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=types.int_at_least(1), default=None,
                   help="CPU threads for torch (default: 1 for a small model, else the cores not busy now; "
                        "kept on --resume)")
    p.add_argument("--out", default=None, help="run directory (default: runs/<model>-<target>-<time>)")
    p.add_argument("--allow-emulated", action="store_true",
                   help="also search (scheme, bits) pairs the target's runtime does not run natively, priced at their "
                        "real fallback cost (float or a wider container); the policy and report name such layers")
    p.add_argument("--strict", action="store_true",
                   help="fail when an op cannot be quantized (default: it stays float, with a warning naming it)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory given by --out")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run")
    p.set_defaults(func=run)
    enable_config_file(p)


def run(args) -> int:
    import cost_models

    from .. import (
        SearchConfig,
        check_device,
        default_budgets,
        default_run_dir,
        load_model_and_data,
        parse_budgets,
        search,
    )

    if args.resume:
        return _resume(args)
    # resolved once, here, and passed down as typed values: the profile and the budgets
    profile = cost_models.load_profile(args.target)  # an unknown target fails before any data is loaded
    budgets = parse_budgets(args.budget if args.budget is not None else default_budgets(profile))
    check_device(args.device)
    built = load_model_and_data(args.model, args.data, args.data_dir, seed=args.seed, allow_pickle=args.allow_pickle,
                                command=command_line())
    overrides = {}
    if args.epochs is not None:
        overrides.update(search_epochs=args.epochs, finetune_epochs=args.epochs, pretrain_epochs=2 * args.epochs)
    if args.pretrain_epochs is not None:
        overrides["pretrain_epochs"] = args.pretrain_epochs
    if args.finetune_epochs is not None:
        overrides["finetune_epochs"] = args.finetune_epochs
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.single_path is not None:
        overrides["single_path"] = args.single_path
    if args.budget_fill is not None:
        overrides["budget_fill"] = None if args.budget_fill == "off" else args.budget_fill
    if args.curvature_weight is not None:
        overrides["curvature_weight"] = args.curvature_weight
    if args.warm_start_bits is not None:
        overrides["warm_start_bits"] = None if args.warm_start_bits == "none" else args.warm_start_bits
    if built.meta["data"] == "cifar10":
        overrides.setdefault("augment", True)
        overrides.setdefault("batch_size", 128)
        overrides.setdefault("lr", 3e-3)
    config = SearchConfig(method=args.method, uniform_bits=args.bits, uniform_scheme=args.scheme,
                          scheme_sharing=args.scheme_sharing, bits_range=args.bits_range, seed=args.seed,
                          device=args.device, bilevel=args.bilevel,
                          strict=args.strict,
                          allow_emulated=args.allow_emulated, **overrides)
    config.threads = _set_threads(args.threads, built, config.batch_size)
    out = Path(args.out) if args.out else default_run_dir("", built.display_name, profile.name)
    data = built.data
    print(f"hwqnn search: {built.display_name} on {data.name} for target '{profile.name}', run directory {out}")
    result = search(built.model, data.train, data.test, target=profile, budgets=budgets, config=config,
                    run_dir=out, meta=built.meta, overwrite=args.overwrite)
    print_summary(result)
    return 0


def _set_threads(requested: int | None, built, batch_size: int) -> int:
    """Pick torch's CPU threads for this model and machine (see hwqnn.threads) and say why."""
    import cost_models

    from .. import choose_threads

    example = built.data.train[0][0][None]
    macs = sum(layer.macs for layer in cost_models.extract_workload(built.model, example).layers) * batch_size
    threads = choose_threads(requested, macs)
    torch.set_num_threads(threads)
    if requested is None:
        print(f"hwqnn search: {threads} CPU thread(s) for {macs / 1e9:.3g} GMAC per training step "
              f"(--threads to override)")
    return threads


def command_line() -> str:
    return "hwqnn " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _resume(args) -> int:
    from .. import (
        RunDirError,
        SearchConfig,
        SearchResult,
        check_device,
        choose_threads,
        load_model_and_data,
        load_run,
        read_checkpoint,
        search,
    )

    run_dir = Path(args.resume)
    if not (run_dir / "checkpoint.pt").exists() and (run_dir / "metrics.json").is_file():
        loaded = load_run(run_dir)  # verified: policy, weights and metrics of one run
        print(f"hwqnn search: {run_dir} already finished; nothing to resume")
        print_summary(SearchResult(loaded.policy, loaded.model, loaded.metrics, run_dir=run_dir))
        return 0
    state = read_checkpoint(run_dir / "checkpoint.pt")
    config = SearchConfig.from_dict(state["config"])
    config.threads = args.threads or config.threads or choose_threads(None)  # the run's own choice, kept
    torch.set_num_threads(config.threads)
    check_device(config.device)
    meta = state.get("meta") or {}
    if "model" not in meta:
        raise RunDirError(f"cannot resume {run_dir}: its checkpoint does not record the model; start again "
                          "with --overwrite")
    built = load_model_and_data(meta["model"], meta.get("data", "digits"), meta.get("data_dir"), seed=config.seed,
                                allow_pickle=bool(meta.get("allow_pickle")), command=meta.get("command", ""))
    # The study logs the phase and epoch it resumes at; this line only says what runs.
    print(f"hwqnn search: resuming {built.display_name} on {built.data.name} for target '{config.target}' "
          f"in {run_dir}")
    result = search(built.model, built.data.train, built.data.test, target=config.target, budgets=config.budgets,
                    config=config, run_dir=run_dir, meta=meta, resume=True)
    print_summary(result)
    return 0


def print_summary(result) -> None:
    import pandas as pd

    import cost_models

    from .. import runs_as

    m = result.metrics
    print()
    print(f"target {m['target']}  model {m.get('model', '?')}  method {m['method']}")
    fa = m["float_accuracy"]
    print(f"accuracy: float {fa:.2f}%  quantized {m['quantized_accuracy']:.2f}%" if fa is not None
          else f"accuracy: quantized {m['quantized_accuracy']:.2f}%")
    rows = []
    names = {metric.value: metric.budget_name for metric in CostMetric}
    for key, value in m["costs"].items():
        budget = m["budgets"].get(key)
        rows.append({"cost": names[key], "value": format_cost(key, value),
                     "w8a8": format_cost(key, m["reference_w8a8"][key]),
                     "budget": f"{budget['spec']} = {format_cost(key, budget['bound'])}" if budget else "-",
                     "ok": ("yes" if m["within_budget"][key] else "NO") if budget else "-"})
    print(pd.DataFrame(rows).to_string(index=False))
    print()
    policy_rows = result.policy.summary_rows(result.model.layer_names)
    target = (m.get("config") or {}).get("target") or m["target"]
    names = result.model.layer_names
    placements = runs_as(result.policy, names, cost_models.load_profile(target),
                         [result.model.layer(n).op_type for n in names])
    for row in policy_rows:
        row["runs as"] = placements.get(row["layer"], "")
    print(pd.DataFrame(policy_rows).to_string(index=False))
    if result.run_dir:
        print(f"\nrun directory: {result.run_dir}")
