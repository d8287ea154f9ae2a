"""CIFAR-10 (10k/10k subset): searched mixed policy vs uniform w4a4 at the same size, ResNet-20.

1. Pretrain float ResNet-20 (cached in --work so both arms start from the same weights).
2. Searched: budget size = the size of uniform w4a4 on the target; search + MILP + fine-tune.
3. Uniform w4a4 (scheme `uniform`, LSQ): QAT for search_epochs + finetune_epochs, the same total epochs.

    python bench/cifar10_searched_vs_uniform.py --data ../shared/data/cifar10_10k.npz \
        --out reports/cifar10_searched_vs_uniform.md
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

import cost_models
import hwqnn
from hwqnn.data import load_dataset, make_loader
from hwqnn.models import create_model
from hwqnn.searching.train import evaluate


def pretrain(data, epochs: int, cache: Path, seed: int) -> tuple[torch.nn.Module, float, float]:
    torch.manual_seed(seed)
    model = create_model("resnet20", num_classes=10)
    if cache.is_file():
        model.load_state_dict(torch.load(cache, weights_only=True))
        return model, evaluate(model, make_loader(data.test, 256, train=False), torch.device("cpu"))["accuracy"], 0.0
    t0 = time.perf_counter()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=epochs * ((len(data.train) + 127) // 128))
    for epoch in range(epochs):
        loader = make_loader(data.train, 128, train=True, augment=True, seed=seed * 1000 + epoch)
        model.train()
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        acc = evaluate(model, make_loader(data.test, 256, train=False), torch.device("cpu"))["accuracy"]
        print(f"pretrain epoch {epoch + 1}/{epochs}: test accuracy {acc:.2f}%", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), cache)
    return model, acc, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="../shared/data/cifar10_10k.npz")
    p.add_argument("--target", default="jetson-orin-nano")
    p.add_argument("--pretrain-epochs", type=int, default=30)
    p.add_argument("--search-epochs", type=int, default=6)
    p.add_argument("--finetune-epochs", type=int, default=6)
    p.add_argument("--single-path", action="store_true",
                   help="the cheap sampled search (activations mix 2 sampled schemes per step, not all 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="runs/cifar10_bench")
    p.add_argument("--out", default="reports/cifar10_searched_vs_uniform.md")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset("cifar10", args.data, seed=args.seed)
    work = Path(args.work)
    float_model, float_acc, pre_s = pretrain(data, args.pretrain_epochs, work / "float_resnet20.pt", args.seed)
    example = data.train[0][0][None]
    w4a4 = cost_models.estimate(float_model, example, args.target, policy="w4a4")
    size_budget = f"size={w4a4.size_bytes:.0f}B"
    common = dict(target=args.target, pretrain_epochs=0, batch_size=128, augment=True, seed=args.seed,
                  lr=2e-3, finetune_lr=1e-3)
    t0 = time.perf_counter()
    searched = hwqnn.search(copy.deepcopy(float_model), data.train, data.test, budgets=[size_budget],
                            search_epochs=args.search_epochs, finetune_epochs=args.finetune_epochs,
                            single_path=args.single_path, run_dir=work / "searched",
                            meta={"model": "resnet20", "num_classes": 10, "data": "cifar10"}, **common)
    search_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    uniform = hwqnn.search(copy.deepcopy(float_model), data.train, data.test, budgets=[], method="uniform",
                           uniform_bits=(4, 4), search_epochs=0,
                           finetune_epochs=args.search_epochs + args.finetune_epochs, run_dir=work / "uniform",
                           meta={"model": "resnet20", "num_classes": 10, "data": "cifar10"}, **common)
    uniform_s = time.perf_counter() - t0
    float_name = f"float (fp32), {args.pretrain_epochs} epochs SGD one-cycle" + ("" if pre_s else " (cached weights)")
    rows = [(float_name, float_acc, None, pre_s or None),
            ("uniform w4a4 (LSQ), QAT " + str(args.search_epochs + args.finetune_epochs) + " epochs",
             uniform.metrics["quantized_accuracy"], uniform.metrics["costs"], uniform_s),
            (f"searched mixed, {args.search_epochs} search + {args.finetune_epochs} fine-tune epochs",
             searched.metrics["quantized_accuracy"], searched.metrics["costs"], search_s)]
    cmd = (f"python bench/cifar10_searched_vs_uniform.py --data {args.data} --target {args.target} "
           f"--pretrain-epochs {args.pretrain_epochs} --search-epochs {args.search_epochs} "
           f"--finetune-epochs {args.finetune_epochs}{' --single-path' if args.single_path else ''} "
           f"--seed {args.seed} --out {args.out}")
    lines = ["# CIFAR-10 subset, ResNet-20: searched mixed precision vs uniform w4a4 at the same size", "",
             f"Command: `{cmd}`", "",
             f"Data: `{args.data}` (10k train / 10k test). Target: `{args.target}`. Size budget: {size_budget} "
             f"(= uniform w4a4). Both quantized arms start from the same pretrained float weights and get the "
             f"same total number of epochs after pretraining. CPU, torch {torch.__version__}.", "",
             "| model | test accuracy (%) | size (KiB) | latency (ms) | energy (mJ) | wall time (s) |",
             "|---|---|---|---|---|---|"]
    for name, acc, costs, secs in rows:
        if costs:
            lines.append(f"| {name} | {acc:.2f} | {costs['size_bytes'] / 1024:.1f} | {costs['latency_s'] * 1e3:.4f} | "
                         f"{costs['energy_j'] * 1e3:.4f} | {secs:.0f} |")
        else:
            lines.append(f"| {name} | {acc:.2f} | - | - | - | {'-' if secs is None else f'{secs:.0f}'} |")
    verdict = ("meets" if searched.metrics["quantized_accuracy"] >= uniform.metrics["quantized_accuracy"]
               else "does NOT meet")
    lines += ["", f"The searched policy {verdict} the accuracy of uniform w4a4 at the same size budget "
              f"({searched.metrics['quantized_accuracy']:.2f}% vs {uniform.metrics['quantized_accuracy']:.2f}%).", "",
              "Searched policy:", "", "```yaml", searched.policy.to_yaml().rstrip(), "```", ""]
    Path(args.out).write_text("\n".join(lines))
    (work / "summary.json").write_text(json.dumps({"float": float_acc, "searched": searched.metrics["quantized_accuracy"],
                                                   "uniform": uniform.metrics["quantized_accuracy"]}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
