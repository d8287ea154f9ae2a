"""Search overhead: one search step divided by one float training step, side by side in one process.

ResNet-20, batch 128, CPU. The search step runs every registered scheme on every weight and activation
slot (the full mixture; or, in the sampled mode, the mixture on weights and two Gumbel-sampled schemes
on activations), QPL's continuous bits, and the
device cost penalties (augmented Lagrangian), with all three optimizers. Float and search steps are
interleaved so machine noise hits both alike; the report gives the median of the per-round ratios.

    python bench/bench_search_step.py --rounds 7 --out reports/search_overhead.md
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import cost_models
from hwqnn.models import create_model
from hwqnn.qag import convert
from hwqnn.searching.budgets import parse_budgets, resolve_budgets
from hwqnn.searching.constraints import AugmentedLagrangian
from hwqnn.searching.space import SearchSpace


def make_steps(batch_size: int, target: str, single_path: bool):
    torch.manual_seed(0)
    x = torch.randn(batch_size, 3, 32, 32)
    y = torch.randint(0, 10, (batch_size,))
    float_model = create_model("resnet20", num_classes=10)
    float_opt = torch.optim.SGD(float_model.parameters(), lr=0.01, momentum=0.9)

    def float_step():
        loss = F.cross_entropy(float_model(x), y)
        float_opt.zero_grad(set_to_none=True)
        loss.backward()
        float_opt.step()

    qmodel = convert(create_model("resnet20", num_classes=10), x[:2])
    qmodel.set_search()
    profile = cost_models.load_profile(target)
    cm = cost_models.CostModel(qmodel.workload, profile, batch_size=1)
    space = SearchSpace(qmodel, cm, single_path=single_path)
    space.set_progress(0.0)
    reference = cm.evaluate(cost_models.resolve_precisions("w8a8", qmodel.layer_names))
    bounds = resolve_budgets(parse_budgets(["size=0.5x", "latency=0.6x"]),
                             lambda: {"latency_s": reference.latency_s, "size_bytes": reference.size_bytes})
    al = AugmentedLagrangian(bounds)
    opts = [torch.optim.SGD(space.weight_parameters(), lr=0.01, momentum=0.9),
            torch.optim.Adam(space.logit_parameters(), lr=0.05), torch.optim.Adam(space.bit_parameters(), lr=0.05)]

    def search_step():
        costs = space.expected_costs()
        loss = F.cross_entropy(qmodel(x), y) + al.penalty(costs).float()
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()
        al.dual_step(costs)

    return float_step, search_step, len(space.scheme_names), len(qmodel.layer_names)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--target", default="bitfusion")
    parser.add_argument("--out", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lines = [f"# Search overhead: search step / float training step (ResNet-20, batch {args.batch_size}, CPU)", "",
             f"Command: `python bench/bench_search_step.py --rounds {args.rounds} --batch-size {args.batch_size} "
             f"--target {args.target} --threads {torch.get_num_threads()}{' --out ' + args.out if args.out else ''}`", "",
             f"torch {torch.__version__}, {torch.get_num_threads()} threads. Float and search steps interleaved; "
             f"median of {args.rounds} rounds after 2 warm-up rounds.", "",
             "| mode | float step (s) | search step (s) | ratio (median of per-round ratios) |", "|---|---|---|---|"]
    for single_path in (False, True):
        float_step, search_step, n_schemes, n_layers = make_steps(args.batch_size, args.target, single_path)
        for _ in range(2):
            float_step()
            search_step()
        f_times, s_times = [], []
        for _ in range(args.rounds):
            f_times.append(timed(float_step))
            s_times.append(timed(search_step))
        ratios = [s / f for s, f in zip(s_times, f_times)]
        mode = (f"sampled (`single_path=True`): weights mix all {n_schemes}, activations mix 2 sampled")
        mode = mode if single_path else f"mixture of all {n_schemes} schemes"
        lines.append(f"| {mode} | {statistics.median(f_times):.3f} | {statistics.median(s_times):.3f} | "
                     f"**{statistics.median(ratios):.2f}x** |")
        print(lines[-1], flush=True)
    lines += ["", f"{n_layers} quantized layers, each with a weight and an activation slot; every slot carries "
              f"{n_schemes} candidate schemes, a continuous bitwidth (two quantizations per scheme: floor and "
              f"ceil), and the step includes the expected-cost evaluation and the augmented Lagrangian."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
