"""``hwqnn profiles list|show|validate|calibrate``: inspect, check and calibrate hardware profiles."""

from __future__ import annotations

import sys

from cost_models import MEASUREMENTS_CSV, ProfileError, calibrate, list_profiles, load_profile, profile_aliases

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


def run_calibrate(args) -> int:
    _, report = calibrate(args.profile, args.measurements, out_path=args.out)
    print(report.summary())
    print(report.rows.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out and not report.out_path:  # the fit did not beat the shipped profile on unseen models
        print(f"hwqnn profiles calibrate: {report.extra['not_written']}", file=sys.stderr)
        return 1
    return 0
