"""Does finalize keep what the search learned? Zoo models x targets, before any fine-tuning (issue 14).

Run: ``python bench/bench_finalize_check.py > reports/finalize_check.md`` (not collected by pytest).
For every zoo model on its default data (CIFAR-10 models on a ``--train-limit`` / ``--eval-limit``
subset of ``../shared/data/cifar10_10k.npz``, skipped when it is absent) and every target, a short
search is run and its ``finalize_check`` read from the metrics: the validation accuracy of the search's
argmax network and of the MILP's policy before fine-tuning, and, where the MILP's was worse by more than
the tolerance, of the re-solved policy and of the argmax network rounded onto the budget, and which one
was kept.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hwqnn  # noqa: E402
from hwqnn.data import load_dataset  # noqa: E402

COMMAND = "python bench/bench_finalize_check.py > reports/finalize_check.md"
CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10_10k.npz"


def _subset(dataset, limit: int):
    index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:limit]
    return torch.utils.data.Subset(dataset, index.tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="bitfusion,nvidia-t4,jetson-orin-nano")
    parser.add_argument("--models", default=",".join(hwqnn.list_models()))
    parser.add_argument("--train-limit", type=int, default=1000)
    parser.add_argument("--eval-limit", type=int, default=500)
    parser.add_argument("--search-epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.models.split(","):
        spec = hwqnn.model_spec(name)
        if spec.default_data == "cifar10":
            if not CIFAR.is_file():
                print(f"  skipped {name}: {CIFAR} is absent", file=sys.stderr)
                continue
            data = load_dataset("cifar10", data_dir=str(CIFAR), seed=0)
            train, val = _subset(data.train, args.train_limit), _subset(data.test, args.eval_limit)
        else:
            data = load_dataset(spec.default_data, seed=0)
            train, val = data.train, data.test
        for target in args.targets.split(","):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = hwqnn.search(hwqnn.create_model(name), train, val, target=target, pretrain_epochs=2,
                                      search_epochs=args.search_epochs, finetune_epochs=0, batch_size=128,
                                      seed=0, threads=1)
            check = result.metrics["finalize_check"]
            rows.append((name, target, check, time.perf_counter() - start))
            print(f"  {name} {target}: {check}", file=sys.stderr)
    print("# Finalize keeps what the search learned (issue 14)\n")
    print(f"Made by `{COMMAND}`: each zoo model on each target, default budgets, pretrain 2 epochs, search "
          f"{args.search_epochs}, no fine-tuning; CIFAR-10 models on {args.train_limit} training and "
          f"{args.eval_limit} validation images. Accuracies (%) on the validation split, before fine-tuning.\n")
    print("| model | target | search argmax | MILP | MILP - argmax | fallback | re-solved | rounded argmax | kept "
          "| kept - argmax | s |")
    print("|---|---|---:|---:|---:|---|---:|---:|---|---:|---:|")
    within = 0
    for name, target, c, seconds in rows:
        gap = c["milp_accuracy"] - c["argmax_accuracy"]
        within += gap >= -c["tolerance"] or c["fallback"]
        resolved = f"{c['reweighted_accuracy']:.1f}" if "reweighted_accuracy" in c else "-"
        rounded = f"{c['rounded_argmax_accuracy']:.1f}" if "rounded_argmax_accuracy" in c else "-"
        kept = max(c["milp_accuracy"], c.get("reweighted_accuracy", 0.0), c.get("rounded_argmax_accuracy", 0.0))
        print(f"| {name} | {target} | {c['argmax_accuracy']:.1f} | {c['milp_accuracy']:.1f} | {gap:+.1f} | "
              f"{'yes' if c['fallback'] else 'no'} | {resolved} | {rounded} | {c['kept']} | "
              f"{kept - c['argmax_accuracy']:+.1f} | {seconds:.0f} |")
    print(f"\n{within} of {len(rows)} runs: the MILP's policy within {rows[0][2]['tolerance'] if rows else 1.0:g} "
          f"point of the argmax network, or the fallback taken and recorded.")
    kept_worse = [r for r in rows if r[2]["fallback"] and r[2]["kept"] == "milp"]
    if kept_worse:
        print(f"In {len(kept_worse)} of them neither fallback (re-solving with the preferences weighted up, the argmax "
              f"network rounded onto the budget) scored better, so the MILP's policy was kept although it is worse "
              f"than the argmax network.")


if __name__ == "__main__":
    main()
