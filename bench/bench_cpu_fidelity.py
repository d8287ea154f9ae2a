"""Does the cost model predict this CPU? Calibrate on reference models, predict held-out zoo models (issue 13).

Run: ``python bench/bench_cpu_fidelity.py > reports/cpu_fidelity.md`` (not collected by pytest; a few
minutes on one thread). Steps, all on this machine with ONNX Runtime's CPU execution provider:

1. ``hwqnn.measure_latencies`` times reference models (``--calib-models`` at ``--calib-size`` pixels) and
   the per-layer microbenchmarks (``cost_models.reference_workloads.MICROBENCHMARK_SIZES``: stacks of one
   conv / depthwise conv / linear / matmul shape at a tiny, a small and a large size) as fp32 graphs and as hwqnn's
   w8a8 export for ``x86-avx2-vnni``, and ``cost_models.calibrate`` fits that profile to those rows (the
   calibrated parameters are used even where the fit would not be written). For comparison the same fit on
   the whole-model rows alone is reported as ``calibrated (models only)``.
2. Zoo models never used in the fit, at several widths and batch sizes, are exported the same way and
   timed; the cost model predicts each (the exported policy: w8a8 restricted to the target, or fp32) with
   the shipped and with the calibrated profile.
Every graph's ``--repeats`` runs are timed ``--rounds`` times and the round with the lowest median is kept
(calibration and held-out graphs alike), so a round in which other processes on a shared machine took the
core away is not reported as the latency.

3. Per precision and overall: Spearman rank correlation and median absolute percentage error, and the
   error of the predicted w8a8/fp32 speed-up per model.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cost_models  # noqa: E402
from hwqnn import apply_policy, create_model, measure_latencies, model_spec  # noqa: E402
from hwqnn.deployment import restrict_to_target  # noqa: E402
from hwqnn.measure import export_graph, time_graph  # noqa: E402
from hwqnn.models.resnet import CifarResNet  # noqa: E402

COMMAND = "python bench/bench_cpu_fidelity.py > reports/cpu_fidelity.md"
BASE = "x86-avx2-vnni"
#: (label, zoo model, constructor keyword arguments): never used in calibration.
HELD_OUT = [
    ("resnet20", "resnet20", {}),
    ("resnet32", "resnet32", {}),
    ("mobilenet_v2_tiny x0.5", "mobilenet_v2_tiny", {"width_mult": 0.5}),
    ("mobilenet_v2_tiny", "mobilenet_v2_tiny", {}),
    ("mobilenet_v2_tiny x2", "mobilenet_v2_tiny", {"width_mult": 2.0}),
    ("vit_tiny", "vit_tiny", {}),
    ("vit_mha_tiny", "vit_mha_tiny", {}),
    ("einsum_vit_tiny", "einsum_vit_tiny", {}),
    ("tiny_cnn", "tiny_cnn", {}),
    ("branchy_cnn", "branchy_cnn", {}),
    ("functional_cnn", "functional_cnn", {}),
    ("gru_tiny", "gru_tiny", {}),
]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def predicted_ms(model: torch.nn.Module, example: torch.Tensor, precision: str, profile, batch: int) -> float:
    """The cost model's latency of the graph that was timed: the w8a8 policy as restricted to the target."""
    quantized = _quiet(apply_policy, copy.deepcopy(model), "w8a8", example[:2])
    if precision == "w8a8":
        restrict_to_target(quantized, cost_models.load_profile(BASE))
        policy = quantized.current_policy()
    else:
        policy = "fp32"
    report = cost_models.estimate(quantized.workload, None, profile, policy=policy, batch_size=batch)
    return report.latency_s * 1e3


def held_out_rows(profiles: dict, batches: list[int], threads: int, repeats: int, rounds: int) -> pd.DataFrame:
    base = cost_models.load_profile(BASE)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, kwargs in HELD_OUT:
            torch.manual_seed(0)
            if name == "resnet32":  # the zoo's ResNet at another depth
                model, shape = CifarResNet(depth=32).eval(), model_spec("resnet20").input_shape
            else:
                model, shape = create_model(name, **kwargs).eval(), model_spec(name).input_shape
            example = torch.randn(max(batches), *shape)
            for precision in ("fp32", "w8a8"):
                path = _quiet(export_graph, model, example, precision, Path(tmp) / f"{label}_{precision}.onnx", base)
                for batch in batches:
                    measured = float(np.median(time_graph(path, example[:batch].numpy(), threads=threads,
                                                          repeats=repeats, rounds=rounds)))
                    row = {"model": label, "precision": precision, "batch": batch, "measured_ms": measured}
                    for key, profile in profiles.items():
                        row[f"{key}_ms"] = predicted_ms(model, example, precision, profile, batch)
                    rows.append(row)
            print(f"  measured {label}", file=sys.stderr)
    return pd.DataFrame(rows)


def scores(frame: pd.DataFrame, key: str) -> dict:
    predicted, measured = frame[f"{key}_ms"].to_numpy(), frame["measured_ms"].to_numpy()
    return {"rows": len(frame), "spearman": float(spearmanr(predicted, measured).statistic),
            "mdape_pct": float(np.median(np.abs(predicted / measured - 1)) * 100)}


def speedup_errors(frame: pd.DataFrame, key: str) -> pd.Series:
    """Per (model, batch): predicted w8a8/fp32 speed-up over measured, minus 1, in percent."""
    wide = frame.pivot_table(index=["model", "batch"], columns="precision", values=["measured_ms", f"{key}_ms"])
    measured = wide["measured_ms"]["fp32"] / wide["measured_ms"]["w8a8"]
    predicted = wide[f"{key}_ms"]["fp32"] / wide[f"{key}_ms"]["w8a8"]
    return (predicted / measured - 1) * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calib-models", default="resnet18,mobilenet_v2,squeezenet1_1,mobilenet_v1,resnet34,deit_tiny")
    parser.add_argument("--calib-size", type=int, default=64)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3,
                        help="time each graph's runs this many times and keep the round with the lowest median "
                             "(drops rounds disturbed by other processes on a shared machine)")
    parser.add_argument("--no-micro", action="store_true", help="calibrate on the whole models only")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    calib = _quiet(measure_latencies, args.calib_models.split(","), base=BASE, input_size=args.calib_size,
                   batch_sizes=batches, threads=args.threads, repeats=args.repeats,
                   microbenchmarks=not args.no_micro, rounds=args.rounds)
    micro = sorted(set(calib.models["model"]) - set(args.calib_models.split(",")))
    assert not micro or not set(micro) & {name for _, name, _ in HELD_OUT}, "a held-out model was calibrated on"
    calibrated, report = cost_models.calibrate(BASE, calib.models)
    profiles = {"shipped": cost_models.load_profile(BASE), "calibrated": calibrated}
    if micro:
        models_only, models_report = cost_models.calibrate(
            BASE, calib.models[calib.models["model"].isin(args.calib_models.split(","))])
        profiles["calibrated (models only)"] = models_only
    frame = held_out_rows(profiles, batches, args.threads, args.repeats, args.rounds)

    print("# Cost-model fidelity on this CPU (ONNX Runtime), held-out zoo models (issue 13)\n")
    print(f"Made by `{COMMAND}` ({args.threads} thread(s), median of {args.repeats} runs per graph, the round "
          f"with the lowest median of {args.rounds} (calibration and held-out rows alike); "
          f"calibrated on {args.calib_models} at {args.calib_size} px, batches {args.batches}"
          + (f", and the per-layer microbenchmarks {', '.join(micro)} (each a stack of "
             f"{cost_models.reference_workloads.MICRO_DEPTH} layers of one shape, at the input sizes of "
             f"MICROBENCHMARK_SIZES)" if micro else "") + ").\n")
    print(f"Calibration: {report.summary()}\n")
    if micro:
        print(f"Calibration on the whole-model rows alone (`calibrated (models only)`): {models_report.summary()}\n")
    for key, profile in profiles.items():
        lines = [line.strip() for line in profile.summary().splitlines()
                 if line.strip().startswith(("efficiency", "conversion bytes"))]
        print(f"- {key}: " + "; ".join(lines))
    print()
    print("| profile | precision | rows | Spearman | median abs. error |\n|---|---|---:|---:|---:|")
    for key in profiles:
        for precision in ("fp32", "w8a8", "all"):
            part = frame if precision == "all" else frame[frame["precision"] == precision]
            s = scores(part, key)
            print(f"| {key} | {precision} | {s['rows']} | {s['spearman']:.3f} | {s['mdape_pct']:.1f}% |")
    print("\nPredicted w8a8/fp32 speed-up vs measured (median |error|): " + ", ".join(
        f"{key} {np.median(np.abs(speedup_errors(frame, key))):.1f}%" for key in profiles) + "\n")
    columns = list(frame.columns)
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for record in frame.itertuples(index=False):
        print("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in record) + " |")


if __name__ == "__main__":
    main()
