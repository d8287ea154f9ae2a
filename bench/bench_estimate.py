"""Time cost-model evaluation of a complete ResNet-50 policy (targets, once the workload exists: estimate()
<= 2 ms (issue 13); estimate, the per-layer DataFrame and evaluate each <= 5 ms).

Run: ``python bench/bench_estimate.py > reports/bench_estimate.md``. Prints a markdown report with
median times over many runs, measured side by side in one process: estimate() (totals; the per-layer
DataFrame is built lazily), estimate() plus building the DataFrame, CostModel.evaluate(), a batched
differentiable evaluation of 256 candidate policies with its backward pass, and, as a reference
point, one float forward pass of the same ResNet-50 (random weights) on this CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cost_models import CostModel, estimate, resolve_precisions  # noqa: E402
from cost_models.reference_workloads import build_reference_model, reference_workload  # noqa: E402

COMMAND = "python bench/bench_estimate.py > reports/bench_estimate.md"


def median_seconds(fn, runs: int, warmup: int = 5) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of this process) per call.

    On a shared, loaded machine a call longer than a scheduler time slice waits for the CPU, which
    inflates wall time several-fold; process CPU time counts only the work done.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="timed runs per measurement")
    parser.add_argument("--target", default="jetson", help="hardware profile")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1 avoids spin-waiting on a shared, loaded machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    workload = reference_workload("resnet50", 224)
    extract_s = time.perf_counter() - start
    n = len(workload)
    precisions = resolve_precisions("w4a8", workload.names)
    model = CostModel(workload, args.target)
    grid = torch.rand(256, n, dtype=torch.float32) * 6 + 2
    kinds = torch.zeros(n, dtype=torch.long)

    def batched():
        bits = grid.clone().requires_grad_()
        costs = model.layer_costs(kinds, bits, kinds, torch.full((n,), 8.0))
        CostModel.totals(costs, smooth=True)["latency_s"].sum().backward()

    rows = [
        ("estimate(workload, target, 'w4a8') (totals)", median_seconds(
            lambda: estimate(workload, None, args.target, "w4a8"), args.runs)),
        ("estimate(...) + report.layers DataFrame", median_seconds(
            lambda: estimate(workload, None, args.target, "w4a8").layers, args.runs)),
        ("CostModel.evaluate(precisions)", median_seconds(lambda: model.evaluate(precisions), args.runs)),
        ("layer_costs + totals + backward, 256 candidates", median_seconds(batched, max(20, args.runs // 10))),
    ]
    net = build_reference_model("resnet50", device="cpu")
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        forward_wall, forward_cpu = median_seconds(lambda: net(image), 10, warmup=2)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print("# Benchmark: cost-model evaluation of a ResNet-50 policy\n")
    print(f"Command: `{COMMAND}`\n")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other jobs "
          f"(load average {load:.1f} when measured), {args.threads} torch thread(s), torch {torch.__version__}, "
          f"Python {platform.python_version()}. Target profile `{model.profile.name}`, ResNet-50 at 224x224: "
          f"{n} layers. Medians of {args.runs} runs (the batched row: {max(20, args.runs // 10)} runs), wall "
          "time and CPU time of this process side by side: on a loaded machine a call longer than a "
          "scheduler time slice also waits for the CPU, so wall time overstates the work.\n")
    print("| what | median wall | median CPU | CPU vs one float forward pass |")
    print("|---|---|---|---|")
    for what, (wall, cpu) in rows:
        print(f"| {what} | {wall * 1e3:.3f} ms | {cpu * 1e3:.3f} ms | {cpu / forward_cpu:.4f}x |")
    print(f"| one float ResNet-50 forward pass, batch 1, this CPU (reference) | {forward_wall * 1e3:.1f} ms | "
          f"{forward_cpu * 1e3:.1f} ms | 1x |")
    print(f"| extract the workload once (meta tensors, not timed above) | {extract_s * 1e3:.0f} ms | - | - |")
    worst_cpu = max(cpu for _, (_, cpu) in rows[:3])
    worst_wall = max(wall for _, (wall, _) in rows[:3])
    estimate_wall, estimate_cpu = rows[0][1]
    print(f"\nRequirements, once the workload is extracted: estimate() <= 2 ms: "
          f"{'met' if estimate_cpu <= 2e-3 else 'NOT met'} ({estimate_cpu * 1e3:.3f} ms CPU, "
          f"{estimate_wall * 1e3:.3f} ms wall); each of the first three rows <= 5 ms: "
          f"{'met' if worst_cpu <= 5e-3 else 'NOT met'} in CPU time (slowest {worst_cpu * 1e3:.3f} ms CPU, "
          f"{worst_wall * 1e3:.3f} ms wall).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
