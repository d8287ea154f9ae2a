"""``hwqnn report``: a self-contained HTML page (and a Markdown twin) comparing targets, for hardware teams."""

from __future__ import annotations

from pathlib import Path

from .. import HwqnnError
from ._parsing import HelpFormatter
from .cmd_pareto import add_study_arguments, command_line, prepare_study


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="compare targets: Pareto fronts, policies, per-layer costs (HTML)",
                              formatter_class=HelpFormatter)
    p.add_argument("--targets", default=None,
                   help="comma-separated hardware profiles to sweep (e.g. jetson-orin-nano,raspberry-pi-4,bitfusion)")
    p.add_argument("--from", dest="sources", nargs="+", default=None, metavar="DIR",
                   help="build from existing sweep directories (hwqnn pareto) or run directories (hwqnn search) "
                        "without retraining")
    p.add_argument("--out", required=True, help="report directory (report.html, report.md, figures/, csv/)")
    p.add_argument("--sweep", default="auto:4",
                   help="sweep per target: METRIC=LOW:HIGH:COUNT, or auto[:COUNT] (latency where lower bits "
                        "make the device faster, size elsewhere)")
    p.add_argument("--work", default=None, metavar="DIR",
                   help="where the sweeps (run directories, weights) go (default: OUT/sweeps); rebuild with --from DIR")
    p.add_argument("--title", default=None)
    p.add_argument("--notes", default=None, metavar="FILE",
                   help="text file whose paragraphs (blank-line separated) go into a Notes section")
    add_study_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import cost_models

    from .. import build_report, run_report

    notes = read_notes(args.notes)
    if args.sources:
        if args.targets:
            raise HwqnnError("--from builds from existing directories and --targets runs new sweeps; pass one of them")
        page = build_report(args.sources, args.out, command=command_line(), title=args.title, notes=notes)
    else:
        if not args.targets:
            raise HwqnnError("hwqnn report needs --targets T1,T2,... (to run sweeps) or --from DIR... "
                             "(to build from existing sweep or run directories)")
        # resolved once, here: an unknown target fails before any data is loaded, and a profile file's own
        # numbers (not a shipped profile of the same name) price every sweep
        profiles = [cost_models.load_profile(t.strip()) for t in args.targets.split(",") if t.strip()]
        study = prepare_study(args)
        names = ", ".join(p.name for p in profiles)
        print(f"hwqnn report: {study.model_name} for {names}, sweep {args.sweep}, into {args.out}")
        page = run_report(study.model, study.train, study.val, targets=profiles, out_dir=args.out, sweep=args.sweep,
                          config=study.config, meta=study.meta, command=command_line(), notes=notes,
                          title=args.title, pretrain_data=study.pretrain, work_dir=args.work, **study.sweep_options)
    print(f"report: {page}\nmarkdown twin: {Path(page).with_suffix('.md')}")
    return 0


def read_notes(path: str | None) -> list[str]:
    if path is None:
        return []
    file = Path(path)
    if not file.is_file():
        raise HwqnnError(f"--notes {path}: no such file; pass a text file of blank-line separated paragraphs")
    return [p.strip().replace("\n", " ") for p in file.read_text().split("\n\n") if p.strip()]
