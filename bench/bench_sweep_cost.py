"""Cost of a K-point budget sweep (warm-started, loose to tight) against K independent searches.

Both arms run in this one process, one after the other, from the same pretrained float weights, with
the same config; only the sweep's warm starts (and its shorter search / fine-tune after the first point)
differ. Wall-clock and process CPU time are both reported: on a shared machine CPU time is the steadier
of the two. The front each arm finds is compared too (accuracy per point, hypervolume).

    python bench/bench_sweep_cost.py --search-epochs 8 --finetune-epochs 8 --out reports/sweep_cost.md
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from hwqnn.data import load_dataset
from hwqnn.models import create_model
from hwqnn.pareto import pretrain_float, run_sweep
from hwqnn.searching import SearchConfig


def run_arm(model, data, args, config, out: Path, warm: bool, weights: Path, fraction: float = 1.0):
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_sweep(model, data.train, data.test, target=args.target, sweep=args.sweep, baselines=[],
                       config=config, out_dir=out, warm_start=warm, short_fraction=fraction,
                       float_weights=weights, meta={"model": args.model, "num_classes": data.num_classes})
    return result, time.perf_counter() - wall, time.process_time() - cpu


def ok(result) -> pd.DataFrame:
    points = result.points
    return points[(points["status"] == "ok") & (points["kind"] == "search")]


def phase_means(out: Path, names: list[str]) -> str:
    """Mean seconds per phase over the given points of a sweep directory (from each run's metrics.json)."""
    frames = [json.loads((out / "runs" / n / "metrics.json").read_text())["wall_time_s"] for n in names]
    means = pd.DataFrame(frames).mean()
    return ", ".join(f"{k.removesuffix('_s')} {v:.1f}" for k, v in means.items() if k != "total_s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="bitfusion")
    p.add_argument("--model", default="tiny_cnn")
    p.add_argument("--sweep", default="size=0.3x:1.0x:6")
    p.add_argument("--pretrain-epochs", type=int, default=4)
    p.add_argument("--search-epochs", type=int, default=4)
    p.add_argument("--finetune-epochs", type=int, default=4)
    p.add_argument("--short-fraction", type=float, nargs="+", default=[0.25, 0.125],
                   help="one warm-started sweep per value (the independent arm runs once)")
    p.add_argument("--single-path", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="Markdown file for the result (printed as well)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    data = load_dataset("digits", seed=args.seed)
    config = SearchConfig(target=args.target, pretrain_epochs=args.pretrain_epochs, search_epochs=args.search_epochs,
                          finetune_epochs=args.finetune_epochs, single_path=args.single_path, seed=args.seed,
                          batch_size=64)
    torch.manual_seed(args.seed)
    model = create_model(args.model, num_classes=data.num_classes)
    load_before = os.getloadavg()
    sweeps = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "float.pt"
        t0 = time.perf_counter()
        pretrained = pretrain_float(model, data.train, data.test, config, cache=weights)
        pretrain_s = time.perf_counter() - t0
        for fraction in args.short_fraction:
            out = Path(tmp) / f"sweep-{fraction:g}"
            result, wall, cpu = run_arm(model, data, args, config, out, True, weights, fraction)
            sweeps[fraction] = (result, wall, cpu, phase_means(out, list(ok(result)["name"])[1:]))
        out = Path(tmp) / "independent"
        indep, indep_wall, indep_cpu = run_arm(model, data, args, config, out, False, weights)
        indep_phases = phase_means(out, list(ok(indep)["name"]))
    load_after = os.getloadavg()

    k = len(ok(indep))
    # Every arm's first point is the same full search: their mean is the "one search" reference.
    firsts = [r.timings for r in (*(v[0] for v in sweeps.values()), indep)]
    first_name = ok(indep)["name"].iloc[0]
    one_search = sum(t["points"][first_name] for t in firsts) / len(firsts)
    one_search_cpu = sum(t["points_cpu"][first_name] for t in firsts) / len(firsts)
    header = ["measure", *(f"sweep, warm points at {f:g}" for f in sweeps), f"{k} independent searches",
              f"one search (mean of the {len(firsts)} identical first points)"]
    lines = [
        f"# Sweep cost: {k}-point warm-started sweep vs {k} independent searches",
        "",
        "Measured by:",
        "",
        "```",
        "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "```",
        "",
        f"{args.model} on digits (embedded scikit-learn set, {len(data.train)} train / {len(data.test)} test images), "
        f"target `{args.target}`, sweep `{args.sweep}`, {args.threads} torch thread(s), seed {args.seed}. "
        f"Every independent search, and each sweep's first point, searches {args.search_epochs} epochs and "
        f"fine-tunes {args.finetune_epochs}; a sweep's later points warm-start from their looser neighbour and "
        f"search and fine-tune for the stated fraction of those epochs (at least 1). single_path={args.single_path}. "
        f"Every arm starts from the same float weights, pretrained once for {args.pretrain_epochs} epochs in "
        f"{pretrain_s:.1f} s (float accuracy {pretrained.accuracy:.2f}%), not counted in any arm. Arms run one "
        f"after the other in this process. Machine: shared with other jobs, {os.cpu_count()} cores, load average "
        f"{load_before[0]:.1f} before and {load_after[0]:.1f} after, so wall-clock is noisy; process CPU time is "
        f"the steadier measure.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        "| wall-clock (s) | " + " | ".join(f"{v[1]:.1f}" for v in sweeps.values()) + f" | {indep_wall:.1f} | "
        f"{one_search:.1f} |",
        "| process CPU time (s) | " + " | ".join(f"{v[2]:.1f}" for v in sweeps.values()) + f" | {indep_cpu:.1f} | "
        f"{one_search_cpu:.1f} |",
        "| hypervolume (error, size/w8a8; ref. (1, 1.2)) | "
        + " | ".join(f"{v[0].swept_front.hypervolume:.4f}" for v in sweeps.values())
        + f" | {indep.swept_front.hypervolume:.4f} | |",
        "",
    ]
    for fraction, (_, wall, cpu, phases) in sweeps.items():
        lines += [
            f"- warm points at {fraction:g}: sweep / one search: wall-clock **{wall / one_search:.2f}x**, CPU time "
            f"**{cpu / one_search_cpu:.2f}x** (goal: at most 2x); sweep / {k} independent searches: wall-clock "
            f"**{wall / indep_wall:.2f}x**, CPU time "
            f"**{cpu / indep_cpu:.2f}x**; with the pretraining counted once for the sweep and once per independent "
            f"search (as {k} separate `hwqnn search` runs would do): {(wall + pretrain_s) / (indep_wall + k * pretrain_s):.2f}x "
            f"(pretraining measured once and multiplied). Mean seconds per phase of a warm point: {phases}.",
        ]
    lines += [f"- mean seconds per phase of an independent search: {indep_phases}.", "",
              "Accuracy of each budget's policy on the test split:", ""]
    table = pd.DataFrame({"budget": ok(indep)["budget"].tolist()})
    for fraction, (result, *_rest) in sweeps.items():
        table[f"sweep {fraction:g} accuracy (%)"] = _aligned(ok(result), ok(indep), "accuracy")
    table["independent accuracy (%)"] = ok(indep)["accuracy"].round(2).tolist()
    for fraction, (result, *_rest) in sweeps.items():
        table[f"sweep {fraction:g} point (s)"] = [round(result.timings["points"].get(n, float("nan")), 1)
                                                   for n in ok(indep)["name"]]
    table["independent point (s)"] = [round(indep.timings["points"][n], 1) for n in ok(indep)["name"]]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


def _aligned(sweep: pd.DataFrame, indep: pd.DataFrame, column: str) -> list:
    by_name = dict(zip(sweep["name"], sweep[column]))
    return [round(by_name[n], 2) if n in by_name else "" for n in indep["name"]]


if __name__ == "__main__":
    main()
