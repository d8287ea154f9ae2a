"""Issue 14's collapse case: ResNet-20 on the CIFAR-10 subset, Bit Fusion, latency budget = uniform w4a4.

Run: ``python bench/bench_collapse.py --seeds 0 > reports/collapse_bitfusion.md`` (not collected by
pytest; about 10 minutes per arm and seed on one thread). From one pretrained float ResNet-20
(``--float-weights``, trained here and cached if absent), with equal epochs after pretraining, the arms:

* ``uniform w4a4``: LSQ QAT for search + fine-tune epochs;
* ``hawq``: the Hessian-aware baseline (traces, MILP), fine-tuned for search + fine-tune epochs;
* ``search``: the issue's repro, the sampled mode, ``--search-epochs`` then ``--finetune-epochs``, the
  learned bits starting at the top of the range;
* ``search + hawq warm start``: the same with the learned bits starting at the hawq policy;
* ``mixture + hawq warm start``: the same in the mixture mode (every scheme on every slot, both bit
  roundings), the faithful DNAS gradient the sampled mode estimates at a fraction of the cost.

Each arm's result is cached as JSON under ``--work`` so an interrupted run resumes arm by arm.
Latency is costed at batch 1 (``cost_batch_size``), as in the issue's repro.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cost_models  # noqa: E402
import hwqnn  # noqa: E402
from hwqnn.data import load_dataset  # noqa: E402
from hwqnn.models import create_model  # noqa: E402

COMMAND = "python bench/bench_collapse.py"
TARGET = "bitfusion"
META = {"model": "resnet20", "num_classes": 10, "data": "cifar10"}


def arms(budget: str, search_epochs: int, finetune_epochs: int) -> dict[str, dict]:
    total = search_epochs + finetune_epochs
    searched = dict(budgets=[budget], single_path=True, search_epochs=search_epochs, finetune_epochs=finetune_epochs,
                    warm_start_bits=None)
    return {
        "uniform w4a4": dict(method="uniform", uniform_bits=(4, 4), budgets=[], search_epochs=0, finetune_epochs=total),
        "hawq": dict(method="hawq", budgets=[budget], search_epochs=0, finetune_epochs=total),
        "search": searched,
        "search + hawq warm start": {**searched, "warm_start_bits": "hawq"},
        "mixture + hawq warm start": {**searched, "single_path": False, "warm_start_bits": "hawq"},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/cifar10_10k.npz")
    p.add_argument("--float-weights", default="runs/resnet20-cifar10-float.pt")
    p.add_argument("--seeds", default="0")
    p.add_argument("--arms", default=None, help="comma-separated subset of the arms (default: all)")
    p.add_argument("--search-epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=4)
    p.add_argument("--work", default="runs/collapse_bitfusion")
    p.add_argument("--plot", default=None, help="also draw accuracy vs latency of every arm and seed here (PNG)")
    p.add_argument("--cached", action="store_true", help="only report the arms already run (nothing is trained)")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("cifar10", args.data, seed=0)
    model = create_model("resnet20", num_classes=10)
    model.load_state_dict(torch.load(args.float_weights, weights_only=True))
    example = data.train[0][0][None]
    w4a4 = cost_models.estimate(model, example, TARGET, policy="w4a4")
    w8a8 = cost_models.estimate(model, example, TARGET, policy="w8a8")
    budget = f"latency={w4a4.latency_s / w8a8.latency_s:.4f}x"
    chosen = arms(budget, args.search_epochs, args.finetune_epochs)
    if args.arms:
        chosen = {name: chosen[name] for name in args.arms.split(",")}
    work = Path(args.work)
    results: dict[tuple[str, int], dict] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, settings in chosen.items():
            cache = work / f"{name.replace(' ', '_').replace(',', '')}_seed{seed}.json"
            if not cache.is_file() and args.cached:
                continue
            if not cache.is_file():
                start = time.perf_counter()
                result = hwqnn.search(copy.deepcopy(model), data.train, data.test, target=TARGET, pretrain_epochs=0,
                                      batch_size=128, augment=True, lr=2e-3, finetune_lr=1e-3, seed=seed,
                                      meta=META, **settings)
                history = [row for row in result.history if row["phase"] == "search"]
                record = {"accuracy": result.metrics["quantized_accuracy"],
                          "latency_ratio": result.metrics["costs"]["latency_s"] / w8a8.latency_s,
                          "within_budget": result.metrics["within_budget"],
                          "finalize_check": result.metrics.get("finalize_check"),
                          "relaxed_latency_ratio": [row["latency_s"] / w8a8.latency_s for row in history],
                          "bits": [(row["mean_w_bits"], row["mean_a_bits"]) for row in history],
                          "policy": result.policy.to_dict()["layers"], "seconds": time.perf_counter() - start}
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps(record, indent=1))
                print(f"  {name} seed {seed}: {record['accuracy']:.2f}%", file=sys.stderr, flush=True)
            results[name, seed] = json.loads(cache.read_text())
    if args.plot:
        plot(results, w4a4.latency_s / w8a8.latency_s, args.plot)
    print("# The collapse case of issue 14: ResNet-20, CIFAR-10 subset, Bit Fusion at uniform w4a4's latency\n")
    plotted = f" --plot {args.plot}" if args.plot else ""
    print(f"Made by `{COMMAND} --seeds {args.seeds}{' --arms ' + repr(args.arms) if args.arms else ''}{plotted}` from "
          f"`{args.float_weights}` (float ResNet-20), budget {budget} of w8a8 at batch 1 (uniform w4a4's latency); "
          f"{args.search_epochs} search + {args.finetune_epochs} fine-tune epochs (the uniform and hawq arms: "
          f"{args.search_epochs + args.finetune_epochs} fine-tune epochs). One CPU thread.\n")
    print("| arm | seed | test accuracy (%) | latency / w8a8 | within budget | relaxed latency / w8a8 per search epoch "
          "| mean W/A bits per search epoch | finalize kept | s |")
    print("|---|---:|---:|---:|---|---|---|---|---:|")
    for (name, seed), r in results.items():
        relaxed = ", ".join(f"{v:.3f}" for v in r["relaxed_latency_ratio"]) or "-"
        bits = ", ".join(f"{w:.2f}/{a:.2f}" for w, a in r["bits"]) or "-"
        kept = (r["finalize_check"] or {}).get("kept", "-")
        print(f"| {name} | {seed} | {r['accuracy']:.2f} | {r['latency_ratio']:.3f} | "
              f"{all(r['within_budget'].values()) if r['within_budget'] else '-'} | {relaxed} | {bits} | {kept} | "
              f"{r['seconds']:.0f} |")
    print("\n| arm | seeds | mean accuracy (%) | mean latency / w8a8 | vs uniform w4a4, same seeds (points) |")
    print("|---|---:|---:|---:|---:|")
    names = list(dict.fromkeys(name for name, _ in results))
    for name in names:
        seeds = [s for n, s in results if n == name]
        mean = sum(results[name, s]["accuracy"] for s in seeds) / len(seeds)
        latency = sum(results[name, s]["latency_ratio"] for s in seeds) / len(seeds)
        paired = [results[name, s]["accuracy"] - results["uniform w4a4", s]["accuracy"] for s in seeds
                  if ("uniform w4a4", s) in results]
        gap = f"{sum(paired) / len(paired):+.2f} over {len(paired)} seed(s)" if paired else "-"
        print(f"| {name} | {len(seeds)} | {mean:.2f} | {latency:.3f} | {gap} |")


def plot(results: dict, budget_ratio: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name in dict.fromkeys(name for name, _ in results):
        points = [(r["latency_ratio"], r["accuracy"]) for (n, _), r in results.items() if n == name]
        ax.scatter(*zip(*points), label=name, s=36)
    ax.axvline(budget_ratio, color="k", ls=":", lw=0.8, label="budget (uniform w4a4)")
    ax.set(xlabel="latency / uniform w8a8 (Bit Fusion, batch 1)", ylabel="CIFAR-10 test accuracy (%)",
           title="ResNet-20 at uniform w4a4's latency: every arm and seed")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
