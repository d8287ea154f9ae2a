"""Issue 14's comparison where bits buy speed: the search against uniform LSQ and the Hessian-aware baseline.

Run (resumable: every arm is cached as JSON under ``--work``; not collected by pytest)::

    python bench/bench_bits_buy_speed.py --targets bitfusion --models resnet20 --seeds 0 --max-runs 4
    python bench/bench_bits_buy_speed.py --cached --plot-dir reports > reports/bits_buy_speed.md

On the CIFAR-10 subset, from one pretrained float model per architecture (``runs/<model>-cifar10-float.pt``,
trained here when absent), each target, and latency budgets of ``--budgets`` x uniform w8a8 (costed at
a batch where the device is not bound by per-layer overhead: by default the smallest of 1, 16, 128, 512,
2048 and 8192 where less than 5% of w8a8's latency is outside the layers' roofline), the arms, all with the
same epochs after pretraining:

* ``uniform wXaY``: LSQ QAT at each feasible uniform pair that is maximal under some budget (raising
  either bitwidth would break it), ``--search-epochs + --finetune-epochs`` epochs;
* ``hawq``: the Hessian-aware baseline under the budget, fine-tuned as long;
* ``search``: the default search (sampled mode, bits warm-started at the hawq policy), ``--search-epochs``
  then ``--finetune-epochs``.

A budget below the cheapest uniform pair's latency is raised to it (the nearest feasible) and the report
says so. The verdict per target follows the issue: the search must beat both the best feasible uniform
pair and hawq by at least 0.5 points (mean over the seeds run) at 2 of 3 budgets, or dominate in
hypervolume (accuracy above 10% x latency saved below w8a8).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cost_models  # noqa: E402
import hwqnn  # noqa: E402
from hwqnn.data import load_dataset, make_loader  # noqa: E402
from hwqnn.models import create_model  # noqa: E402

COMMAND = "python bench/bench_bits_buy_speed.py"
BITS = range(2, 9)


def float_model(name: str, data, path: Path, epochs: int) -> torch.nn.Module:
    """The pretrained float model every arm starts from (trained once with SGD one-cycle, then cached)."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=10)
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = epochs * ((len(data.train) + 127) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        for x, y in make_loader(data.train, 128, train=True, augment=True, seed=epoch):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
        print(f"pretrain {name} {epoch + 1}/{epochs}", file=sys.stderr, flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


CANDIDATE_BATCHES = (1, 16, 128, 512, 2048, 8192)
#: Largest share of w8a8's latency outside the layers' roofline terms (per-layer and per-inference overhead,
#: float ops) at the batch the comparison is costed at.
MAX_OVERHEAD_SHARE = 0.05


def overhead_share(workload, target: str, batch: int) -> float:
    report = cost_models.estimate(workload, target=target, policy="w8a8", batch_size=batch)
    layers = report.layers
    roofline = layers[["compute_s", "memory_s"]].max(axis=1).sum()
    return 1.0 - float(roofline) / report.latency_s


def cost_batch(workload, target: str, requested: str) -> tuple[int, float]:
    """The batch the latency is costed at, and the share of w8a8's latency that is overhead there."""
    if requested != "auto":
        return int(requested), overhead_share(workload, target, int(requested))
    for batch in CANDIDATE_BATCHES:
        share = overhead_share(workload, target, batch)
        if share <= MAX_OVERHEAD_SHARE:
            return batch, share
    return batch, share


def uniform_latencies(workload, target: str, batch: int) -> dict[tuple[int, int], float]:
    """Latency of every uniform pair w{2..8}a{2..8}, as a fraction of w8a8, at ``batch``."""
    w8a8 = cost_models.estimate(workload, target=target, policy="w8a8", batch_size=batch).latency_s
    return {(w, a): cost_models.estimate(workload, target=target, policy=f"w{w}a{a}", batch_size=batch).latency_s / w8a8
            for w in BITS for a in BITS}


def maximal_pairs(latency: dict[tuple[int, int], float], budget: float) -> list[tuple[int, int]]:
    """Feasible pairs where raising either bitwidth breaks the budget (the uniform arms worth running)."""
    fits = {pair for pair, value in latency.items() if value <= budget * (1 + 1e-9)}
    return sorted((w, a) for w, a in fits if (w + 1, a) not in fits and (w, a + 1) not in fits)


def plan(target: str, workload, args, batch: int) -> tuple[list[float], dict[str, dict], list[str]]:
    """The budgets (raised to the nearest feasible where needed), the arms to run and notes for the report."""
    latency = uniform_latencies(workload, target, batch)
    cheapest = min(latency.values())
    budgets, notes = [], []
    for wanted in (float(b) for b in args.budgets.split(",")):
        budget = max(wanted, cheapest)
        if budget > wanted:
            notes.append(f"{target}: {wanted:g}x is below the cheapest uniform pair ({cheapest:.3f}x); used that")
        budgets.append(math.ceil(budget * 1e4) / 1e4)  # rounded up: the cheapest pair stays feasible
    total = args.search_epochs + args.finetune_epochs
    chosen: dict[str, dict] = {}
    for budget in budgets:  # one budget's comparison complete before the next (runs are time-boxed)
        spec = [f"latency={budget}x"]
        chosen[f"search @{budget}"] = dict(budgets=spec, search_epochs=args.search_epochs,
                                           finetune_epochs=args.finetune_epochs)
        chosen[f"hawq @{budget}"] = dict(method="hawq", budgets=spec, search_epochs=0, finetune_epochs=total)
        for w, a in maximal_pairs(latency, budget):
            chosen[f"uniform w{w}a{a}"] = dict(method="uniform", uniform_bits=(w, a), budgets=[], search_epochs=0,
                                               finetune_epochs=total)
    for settings in chosen.values():
        settings["cost_batch_size"] = batch
    return budgets, chosen, notes


def run_arm(model, data, target: str, settings: dict, seed: int, args, model_name: str) -> dict:
    start = time.perf_counter()
    result = hwqnn.search(copy.deepcopy(model), data.train, data.test, target=target, pretrain_epochs=0,
                          batch_size=128, augment=True, lr=2e-3, finetune_lr=1e-3, seed=seed,
                          meta={"model": model_name, "num_classes": 10, "data": "cifar10"}, **settings)
    reference = result.metrics["reference_w8a8"]["latency_s"]
    searched = [{"epoch": h["epoch"], "relaxed_latency_ratio": h["latency_s"] / reference,
                 **{k: h[k] for k in ("lambda_latency_s", "lambda_fill", "curvature_loss", "mean_w_bits",
                                      "mean_a_bits", "temperature", "val_accuracy") if k in h}}
                for h in result.history if h["phase"] == "search"]
    return {"accuracy": result.metrics["quantized_accuracy"],  # costs and reference at the cost batch
            "latency_ratio": result.metrics["costs"]["latency_s"] / reference, "search_history": searched,
            "within_budget": result.metrics.get("within_budget"),
            "finalize_check": result.metrics.get("finalize_check"),
            "policy": result.policy.to_dict()["layers"], "seconds": time.perf_counter() - start}


def hypervolume(points: list[tuple[float, float]]) -> float:
    """Area dominated by (latency fraction, accuracy) points above (1.0, 10%): less latency, more accuracy."""
    front = sorted((lat, acc) for lat, acc in points if lat < 1.0 and acc > 10.0)
    area, best = 0.0, 10.0
    for i, (lat, acc) in enumerate(front):
        best = max(best, acc)
        nxt = front[i + 1][0] if i + 1 < len(front) else 1.0
        area += (nxt - lat) * (best - 10.0)
    return area


def verdict(rows: dict, budgets: list[float]) -> tuple[list[str], bool]:
    """Per budget: the search's mean against the best feasible uniform pair's and hawq's (same seeds)."""
    lines, wins = [], 0
    for budget in budgets:
        search = rows.get(f"search @{budget}")
        rivals = {name: r for name, r in rows.items() if name.startswith("uniform") and r["latency"] <= budget * 1.001}
        if f"hawq @{budget}" in rows:
            rivals[f"hawq @{budget}"] = rows[f"hawq @{budget}"]
        if not search or not rivals:
            shown = "-" if not search else f"{search['mean']:.2f}"
            lines.append(f"| {budget:g}x | {shown} | - | - | not run |")
            continue
        best_name, best = max(rivals.items(), key=lambda kv: kv[1]["mean"])
        margin = search["mean"] - best["mean"]
        wins += margin >= 0.5
        lines.append(f"| {budget:g}x | {search['mean']:.2f} (seeds: {search['seeds']}) | {best_name}: {best['mean']:.2f} "
                     f"| {margin:+.2f} | {'yes' if margin >= 0.5 else 'no'} |")
    return lines, wins >= 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/cifar10_10k.npz")
    p.add_argument("--targets", default="bitfusion,nvidia-t4")
    p.add_argument("--models", default="resnet20,mobilenet_v2_tiny")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--budgets", default="0.5,0.7,0.85", help="latency budgets, fractions of uniform w8a8")
    p.add_argument("--cost-batch", default="auto", help="batch the latency is costed at (auto: see the module doc)")
    p.add_argument("--search-epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=4)
    p.add_argument("--pretrain-epochs", type=int, default=8, help="float pretraining when no cached weights exist")
    p.add_argument("--work", default="runs/bits_buy_speed")
    p.add_argument("--max-runs", type=int, default=None, help="train at most this many uncached arms, then report")
    p.add_argument("--arms", default="search,hawq,uniform",
                   help="which arms to train, by kind or whole name (comma-separated: 'hawq,uniform w4a6'); "
                        "cached arms of every kind are reported")
    p.add_argument("--cached", action="store_true", help="only report the arms already run (nothing is trained)")
    p.add_argument("--plot-dir", default=None, help="draw accuracy vs latency per target and model here (PNG)")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("cifar10", args.data, seed=0)
    work, trained = Path(args.work), 0
    report = ["# Where bits buy speed: the search against uniform LSQ and hawq (issue 14)", "",
              f"Made by `{COMMAND} {' '.join(sys.argv[1:])}` from the arms cached under `{args.work}`. CIFAR-10 subset; {args.search_epochs} search + {args.finetune_epochs} "
              f"fine-tune epochs (uniform and hawq: {args.search_epochs + args.finetune_epochs} fine-tune epochs) "
              "from cached float weights; latency as a fraction of uniform w8a8 at the batch each section states. "
              "One CPU thread per run.", ""]
    for model_name in args.models.split(","):
        model = float_model(model_name, data, Path("runs") / f"{model_name}-cifar10-float.pt", args.pretrain_epochs)
        workload = cost_models.extract_workload(model, data.train[0][0][None])
        for target in args.targets.split(","):
            batch, share = cost_batch(workload, target, args.cost_batch)
            budgets, chosen, notes = plan(target, workload, args, batch)
            notes.insert(0, f"latency costed at batch {batch}: {100 * share:.1f}% of w8a8's latency there is "
                            "outside the layers' roofline (overheads, float ops)")
            results: dict[str, dict[int, dict]] = {}
            for seed in (int(s) for s in args.seeds.split(",")):
                for name, settings in chosen.items():
                    cache = work / target / model_name / f"{name.replace(' ', '_').replace('@', '')}_seed{seed}.json"
                    if not cache.is_file():
                        wanted = {name, name.split()[0]} & set(args.arms.split(","))
                        if args.cached or not wanted or (args.max_runs is not None and trained >= args.max_runs):
                            continue
                        record = run_arm(model, data, target, settings, seed, args, model_name)
                        cache.parent.mkdir(parents=True, exist_ok=True)
                        cache.write_text(json.dumps(record, indent=1))
                        trained += 1
                        print(f"  {target} {model_name} {name} seed {seed}: {record['accuracy']:.2f}% at "
                              f"{record['latency_ratio']:.3f}x ({record['seconds']:.0f} s)", file=sys.stderr, flush=True)
                    results.setdefault(name, {})[seed] = json.loads(cache.read_text())
            report += render(target, model_name, budgets, results, notes, args)
    print("\n".join(report))


def render(target: str, model_name: str, budgets: list[float], results: dict, notes: list[str], args) -> list[str]:
    lines = [f"## {model_name} on {target}", ""] + [f"- {note}" for note in notes] + [""]
    if not results:
        return lines + ["Nothing run yet.", ""]
    rows = {}
    lines += ["| arm | seeds | mean accuracy (%) | per seed | latency / w8a8 | within budget |", "|---|---:|---:|---|---:|---|"]
    for name, by_seed in results.items():
        accs = [r["accuracy"] for r in by_seed.values()]
        latency = sum(r["latency_ratio"] for r in by_seed.values()) / len(by_seed)
        rows[name] = {"mean": sum(accs) / len(accs), "seeds": len(accs), "latency": latency}
        held = [all(r["within_budget"].values()) for r in by_seed.values() if r.get("within_budget")]
        lines.append(f"| {name} | {len(accs)} | {rows[name]['mean']:.2f} | {', '.join(f'{a:.2f}' for a in accs)} | "
                     f"{latency:.3f} | {all(held) if held else '-'} |")
    verdict_lines, won = verdict(rows, budgets)
    searched = [(r["latency"], r["mean"]) for n, r in rows.items() if n.startswith("search")]
    others = [(r["latency"], r["mean"]) for n, r in rows.items() if not n.startswith("search")]
    volumes = hypervolume(searched), hypervolume(others)
    lines += ["", "| budget | search | best rival at or under the budget | search - rival | >= 0.5 points |",
              "|---|---|---|---:|---|", *verdict_lines, "",
              f"Hypervolume (accuracy above 10% x latency saved below w8a8): search {volumes[0]:.2f}, the other arms "
              f"{volumes[1]:.2f}. On the arms and seeds run so far: the search is ahead by >= 0.5 points at 2 of 3 "
              f"budgets: **{'yes' if won else 'no'}**; its front has the larger hypervolume: "
              f"**{'yes' if volumes[0] > volumes[1] else 'no'}**.", ""]
    if args.plot_dir:
        path = Path(args.plot_dir) / f"bits_buy_speed_{target}_{model_name}.png"
        plot(results, budgets, target, model_name, path)
        lines += [f"![accuracy vs latency]({path.name})", ""]
    return lines


def plot(results: dict, budgets: list[float], target: str, model_name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for family, marker in (("uniform", "o"), ("hawq", "s"), ("search", "*")):
        points = [(r["latency_ratio"], r["accuracy"]) for name, by_seed in results.items() if name.startswith(family)
                  for r in by_seed.values()]
        if points:
            ax.scatter(*zip(*points), marker=marker, s=60 if marker == "*" else 30, label=family)
    for budget in budgets:
        ax.axvline(budget, color="k", ls=":", lw=0.8)
    ax.set(xlabel="latency / uniform w8a8", ylabel="CIFAR-10 test accuracy (%)",
           title=f"{model_name} on {target}: every arm and seed (dotted: budgets)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
