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

EXTRA = "Extra rows, each appended by its own command:"


def append_row(text: str, row: str, note: str) -> str:
    """Add ``row`` at the end of the report's first table and ``note`` to the list of extra rows under it."""
    lines = text.splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith("|"))
    lines.insert(last + 1, row)
    if EXTRA not in lines:
        lines[last + 2:last + 2] = ["", EXTRA, ""]
    at = lines.index(EXTRA) + 2
    while at < len(lines) and lines[at].startswith("- "):
        at += 1
    lines.insert(at, f"- {row.split(' | ')[0].lstrip('| ')}: {note}")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="../shared/data/cifar10_10k.npz")
    p.add_argument("--target", default="jetson-orin-nano")
    p.add_argument("--search-epochs", type=int, default=3)
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--lr-logits", type=float, default=0.005)
    p.add_argument("--uniform-bits", default=None, metavar="W/A",
                   help="run a uniform (LSQ) baseline at these bits for the same total epochs instead of a search")
    p.add_argument("--work", default="runs/cifar10_bench")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="reports/cifar10_searched_vs_uniform.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("cifar10", args.data, seed=args.seed)
    model = create_model("resnet20", num_classes=10)
    model.load_state_dict(torch.load(Path(args.work) / "float_resnet20.pt", weights_only=True))
    example = data.train[0][0][None]
    size = cost_models.estimate(model, example, args.target, policy="w4a4").size_bytes
    common = dict(target=args.target, pretrain_epochs=0, batch_size=128, augment=True, lr=2e-3, finetune_lr=1e-3,
                  seed=args.seed, meta={"model": "resnet20", "num_classes": 10, "data": "cifar10"})
    epochs = args.search_epochs + args.finetune_epochs
    t0 = time.perf_counter()
    if args.uniform_bits:
        w_bits, a_bits = (int(b) for b in args.uniform_bits.split("/"))
        r = hwqnn.search(copy.deepcopy(model), data.train, data.test, budgets=[], method="uniform",
                         uniform_bits=(w_bits, a_bits), search_epochs=0, finetune_epochs=epochs,
                         run_dir=Path(args.work) / f"uniform_w{w_bits}a{a_bits}_s{args.seed}", **common)
        label = f"uniform w{w_bits}a{a_bits} (LSQ), QAT {epochs} epochs"
        flags = f"--uniform-bits {args.uniform_bits} --search-epochs {args.search_epochs} --finetune-epochs {args.finetune_epochs}"
    else:
        r = hwqnn.search(copy.deepcopy(model), data.train, data.test, budgets=[f"size={size:.0f}B"],
                         search_epochs=args.search_epochs, finetune_epochs=args.finetune_epochs, single_path=True,
                         lr_logits=args.lr_logits, run_dir=Path(args.work) / f"searched_{args.search_epochs}+{args.finetune_epochs}_lr{args.lr_logits:g}_s{args.seed}",
                         **common)
        label = (f"searched mixed, {args.search_epochs} search + {args.finetune_epochs} fine-tune epochs, "
                 f"scheme-logit lr {args.lr_logits:g}")
        flags = f"--lr-logits {args.lr_logits:g} --search-epochs {args.search_epochs} --finetune-epochs {args.finetune_epochs}"
    secs = time.perf_counter() - t0
    c = r.metrics["costs"]
    w_schemes = sorted({lp.w_scheme for lp in r.policy.layers.values()})
    row = (f"| {label} | {r.metrics['quantized_accuracy']:.2f} | {c['size_bytes'] / 1024:.1f} | "
           f"{c['latency_s'] * 1e3:.4f} | {c['energy_j'] * 1e3:.4f} | {secs:.0f} |")
    cmd = f"python bench/cifar10_searched_variant.py {flags} --seed {args.seed} --out {args.out}"
    Path(args.out).write_text(append_row(Path(args.out).read_text(), row, f"`{cmd}` (weight schemes: {', '.join(w_schemes)})"))
    print(row)


if __name__ == "__main__":
    main()
