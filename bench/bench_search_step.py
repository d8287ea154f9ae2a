"""Search overhead: one search step divided by one float training step, side by side in one process.

ResNet-20, batch 128, CPU. The search step learns schemes and bits on every weight and activation slot:
in the sampled mode (the default) each slot quantizes once, with one scheme drawn from its probabilities
at a stochastically rounded bitwidth; in the mixture mode every registered scheme at both roundings of
the continuous bits. Both include the expected device costs and the augmented Lagrangian, with all three
optimizers. Float and search steps are interleaved so machine noise hits both alike; the report gives
the median of the per-round ratios.

Memory: the bytes a training step holds at the peak of its backward pass, counted exactly: the tensors
autograd saves for backward (unique storages) plus parameters and their gradients. The allocator's
caching and fragmentation come on top in both modes alike.

    python bench/bench_search_step.py --rounds 7 --threads 1 --out reports/search_overhead.md
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

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

    def float_forward():
        return F.cross_entropy(float_model(x), y)

    def float_step():
        loss = float_forward()
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

    def search_forward():
        costs = space.expected_costs()
        return F.cross_entropy(qmodel(x), y) + al.penalty(costs).float(), costs

    def search_step():
        loss, costs = search_forward()
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()
        al.dual_step(costs)

    return SimpleNamespace(float_step=float_step, search_step=search_step,
                           float_bytes=lambda: held_bytes(float_model, [float_opt], float_forward),
                           search_bytes=lambda: held_bytes(qmodel, opts, lambda: search_forward()[0]),
                           n_schemes=len(space.scheme_names), n_layers=len(qmodel.layer_names))


def held_bytes(model: torch.nn.Module, optimizers, run_forward) -> int:
    """Bytes held when backward starts: saved-for-backward storages, parameters, their gradients and the
    optimizers' state (the model and optimizers have taken steps, so the state exists)."""
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = run_forward()
    del loss
    tensors = [p for p in model.parameters()] + [p for p in model.parameters() if p.requires_grad]  # + grads
    tensors += [v for o in optimizers for state in o.state.values() for v in state.values() if torch.is_tensor(v)]
    return sum(storages.values()) + sum(t.numel() * t.element_size() for t in tensors)


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
             "| mode | float step (s) | search step (s) | time ratio (median of per-round ratios) | memory ratio |",
             "|---|---|---|---|---|"]
    for single_path in (True, False):
        steps = make_steps(args.batch_size, args.target, single_path)
        for _ in range(2):
            steps.float_step()
            steps.search_step()
        f_times, s_times = [], []
        for _ in range(args.rounds):
            f_times.append(timed(steps.float_step))
            s_times.append(timed(steps.search_step))
        ratios = [s / f for s, f in zip(s_times, f_times)]
        memory = max(steps.search_bytes() for _ in range(3)) / steps.float_bytes()  # the largest of 3 draws
        mode = ("sampled (default, `single_path=True`): one scheme and one rounding per slot" if single_path
                else f"mixture (`single_path=False`): all {steps.n_schemes} schemes at both roundings")
        lines.append(f"| {mode} | {statistics.median(f_times):.3f} | {statistics.median(s_times):.3f} | "
                     f"**{statistics.median(ratios):.2f}x** (rounds: {', '.join(f'{r:.2f}' for r in ratios)}) | "
                     f"{memory:.2f}x |")
        print(lines[-1], flush=True)
    lines += ["", f"{steps.n_layers} quantized layers, each with a weight and an activation slot; every slot carries "
              f"{steps.n_schemes} candidate schemes and a continuous bitwidth; the step includes the expected-cost "
              "evaluation and the augmented Lagrangian. Memory ratio: bytes held when backward starts (saved "
              "tensors, parameters, gradients, optimizer state), search over float."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
