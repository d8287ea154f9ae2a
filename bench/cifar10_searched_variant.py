"""Another searched arm for bench/cifar10_searched_vs_uniform.py: a different split of the same total
epochs between search and fine-tuning, or a different scheme-logit learning rate.

Reuses the cached float ResNet-20 and the same size budget (uniform w4a4 on the target); appends one row.

    python bench/cifar10_searched_variant.py --search-epochs 2 --finetune-epochs 4 --lr-logits 0.05 \
        --out reports/cifar10_searched_vs_uniform.md
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

import cost_models
import hwqnn
from hwqnn.data import load_dataset
from hwqnn.models import create_model


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="../shared/data/cifar10_10k.npz")
    p.add_argument("--target", default="jetson-orin-nano")
    p.add_argument("--search-epochs", type=int, default=3)
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--lr-logits", type=float, default=0.005)
    p.add_argument("--work", default="runs/cifar10_bench")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="reports/cifar10_searched_vs_uniform.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("cifar10", args.data, seed=0)
    model = create_model("resnet20", num_classes=10)
    model.load_state_dict(torch.load(Path(args.work) / "float_resnet20.pt", weights_only=True))
    example = data.train[0][0][None]
    size = cost_models.estimate(model, example, args.target, policy="w4a4").size_bytes
    t0 = time.perf_counter()
    r = hwqnn.search(copy.deepcopy(model), data.train, data.test, target=args.target, budgets=[f"size={size:.0f}B"],
                     pretrain_epochs=0, search_epochs=args.search_epochs, finetune_epochs=args.finetune_epochs,
                     single_path=True, lr_logits=args.lr_logits, batch_size=128, augment=True, lr=2e-3,
                     finetune_lr=1e-3, seed=0, run_dir=Path(args.work) / f"searched_lr{args.lr_logits:g}",
                     meta={"model": "resnet20", "num_classes": 10, "data": "cifar10"})
    secs = time.perf_counter() - t0
    c = r.metrics["costs"]
    w_schemes = sorted({lp.w_scheme for lp in r.policy.layers.values()})
    row = (f"| searched mixed, {args.search_epochs} search + {args.finetune_epochs} fine-tune epochs, "
           f"scheme-logit lr {args.lr_logits:g} | {r.metrics['quantized_accuracy']:.2f} | {c['size_bytes'] / 1024:.1f} | "
           f"{c['latency_s'] * 1e3:.4f} | {c['energy_j'] * 1e3:.4f} | {secs:.0f} |")
    text = Path(args.out).read_text()
    marker = "\nThe searched policy"
    cmd = (f"python bench/cifar10_searched_variant.py --lr-logits {args.lr_logits:g} --search-epochs "
           f"{args.search_epochs} --finetune-epochs {args.finetune_epochs} --out {args.out}")
    text = text.replace(marker, f"{row}\n\nLast row: `{cmd}` (weight schemes chosen: {', '.join(w_schemes)}).\n{marker}", 1)
    Path(args.out).write_text(text)
    print(row)


if __name__ == "__main__":
    main()
