"""``hwqnn profiles list|show|validate|calibrate|measure``: inspect, check, calibrate and measure profiles."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm.auto import tqdm

from cost_models import (
    MEASUREMENTS_CSV,
    MICROBENCHMARK_SIZES,
    ProfileError,
    calibrate,
    list_profiles,
    list_reference_models,
    load_profile,
    profile_aliases,
)

from .. import measure_latencies, write_measurements
from ._arg_types import comma_list, int_at_least, int_list
from ._parsing import HelpFormatter


def register(subparsers) -> None:
    p = subparsers.add_parser("profiles", help="list, show, validate or calibrate hardware profiles")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="shipped profiles and aliases").set_defaults(func=run_list)
    show = sub.add_parser("show", help="one profile's numbers, each with its source")
    show.add_argument("profile", help="name, alias or YAML path")
    show.set_defaults(func=run_show)
    check = sub.add_parser("validate", help="validate profiles (all shipped ones by default)")
    check.add_argument("profiles", nargs="*", help="names or YAML paths")
    check.set_defaults(func=run_validate)
    fit = sub.add_parser("calibrate", help="fit efficiency, overhead and bandwidth derating to measurements",
                         formatter_class=HelpFormatter)
    fit.add_argument("profile", help="name, alias or YAML path")
    fit.add_argument("--measurements", default=str(MEASUREMENTS_CSV), help="CSV of measured latencies")
    fit.add_argument("--out", default=None, help="write the calibrated profile here (its name becomes the file stem)")
    fit.set_defaults(func=run_calibrate)
    meas = sub.add_parser(
        "measure", formatter_class=HelpFormatter,
        help="time reference models on this machine in ONNX Runtime, and calibrate a profile for it",
        description="Time reference models (random weights) on this machine in ONNX Runtime: the float graph "
                    "and hwqnn's w8a8 Q/DQ export for the base profile's runtime. Writes OUT/measurements.csv "
                    "(median and 10th/90th percentiles), OUT/layers.csv with --layers (each graph node's "
                    "median kernel time), and OUT/NAME.yaml: the base profile calibrated to these rows, when "
                    "that beats it on models left out of the fit.")
    meas.add_argument("--base", default="x86-avx2-vnni", help="profile to calibrate (its runtime's formats set "
                      "the export)")
    meas.add_argument("--models", type=comma_list, default=["resnet18", "mobilenet_v2", "squeezenet1_1", "deit_tiny"],
                      help=f"comma-separated reference models ({', '.join(list_reference_models())})")
    meas.add_argument("--input-size", type=int_at_least(16), default=224, help="square input side in pixels")
    meas.add_argument("--batch-sizes", type=int_list, default=[1], help="comma-separated batch sizes")
    meas.add_argument("--precisions", type=comma_list, default=["fp32", "w8a8"], help="fp32 and/or w8a8")
    meas.add_argument("--threads", type=int_at_least(1), default=1, help="ONNX Runtime intra-op threads")
    meas.add_argument("--repeats", type=int_at_least(3), default=10, help="timed runs per graph and batch size")
    meas.add_argument("--warmup", type=int_at_least(0), default=3, help="untimed runs first")
    meas.add_argument("--layers", action="store_true", help="also profile each graph node (ORT's profiler)")
    meas.add_argument("--microbenchmarks", action="store_true",
                      help="also time small stacks of one conv/depthwise/linear/matmul shape each, at several sizes "
                           "(fp32 and int8): rows of small work that pin the per-layer costs the fit finds")
    meas.add_argument("--rounds", type=int_at_least(1), default=1,
                      help="time each graph this many times and keep the least disturbed round (a shared machine)")
    meas.add_argument("--name", default="this-machine", help="name (file stem) of the calibrated profile")
    meas.add_argument("--out", required=True, help="folder for the CSVs and the calibrated profile")
    meas.set_defaults(func=run_measure)


def run_list(args) -> int:
    for name in list_profiles():
        profile = load_profile(name)
        print(f"{name:20s} {profile.type:10s} {profile.description}")
    aliases = profile_aliases()
    if aliases:
        print("aliases: " + ", ".join(f"{a} -> {t}" for a, t in sorted(aliases.items())))
    return 0


def run_show(args) -> int:
    profile = load_profile(args.profile)
    print(f"{profile.name} ({profile.type}): {profile.description}")
    print(f"file: {profile.file}")
    print()
    print(numbers_table(profile.numbers()))
    if profile.deployment is not None:
        print()
        print(profile.deployment.describe())
        for fmt in profile.deployment.formats:
            print(f"  {fmt.name}: {fmt.source}")
    return 0


def numbers_table(numbers) -> str:
    """Field, value and provenance columns; the provenance (a sentence) is last and left unpadded."""
    rows = [("field", "value", "source")] + [(n.field, n.value, n.provenance) for n in numbers]
    field_width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    return "\n".join(f"{f:<{field_width}}  {v:<{value_width}}  {p}".rstrip() for f, v, p in rows)


def run_validate(args) -> int:
    failed = 0
    for name in args.profiles or list_profiles():
        try:
            profile = load_profile(name)
        except ProfileError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            continue
        print(f"ok: {profile.name} ({profile.file})")
    return 2 if failed else 0


def run_measure(args) -> int:
    batch_sizes = args.batch_sizes
    graphs = len(args.models) + (len(MICROBENCHMARK_SIZES) if args.microbenchmarks else 0)
    with tqdm(total=graphs * len(args.precisions) * len(batch_sizes), desc="measure", unit="graph") as bar:
        def progress(done, total, what):
            bar.set_postfix_str(what)
            bar.update(1)

        result = measure_latencies(args.models, base=args.base, input_size=args.input_size, batch_sizes=batch_sizes,
                                   precisions=args.precisions, threads=args.threads, repeats=args.repeats,
                                   warmup=args.warmup, per_layer=args.layers, progress=progress,
                                   microbenchmarks=args.microbenchmarks, rounds=args.rounds)
    paths = write_measurements(result, args.out)
    columns = ["model", "batch_size", "precision", "latency_ms", "latency_p10_ms", "latency_p90_ms"]
    print(result.models[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    _, report = calibrate(args.base, paths["models"], out_path=Path(args.out) / f"{args.name}.yaml")
    print(report.summary())  # says where the profile was written, or why it was not
    return 0


def run_calibrate(args) -> int:
    _, report = calibrate(args.profile, args.measurements, out_path=args.out)
    print(report.summary())
    print(report.rows.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out and not report.out_path:  # the fit did not beat the shipped profile on unseen models
        print(f"hwqnn profiles calibrate: {report.extra['not_written']}", file=sys.stderr)
        return 1
    return 0
