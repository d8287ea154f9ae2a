"""``hwqnn export RUN_DIR``: write a finished run's quantized model as a Q/DQ ONNX file plus a JSON sidecar."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .. import ExportError, HwqnnError

log = logging.getLogger(__name__)

FORMATS = ("onnx",)
EXAMPLE_BATCH = 32


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a finished run as ONNX with QuantizeLinear/DequantizeLinear Q/DQ",
        description="Write RUN_DIR's quantized model as ONNX with explicit Q/DQ quantization, plus a JSON sidecar "
                    "(policy, per-tensor scales and representation, per layer whether the run's target runs it "
                    "natively, emulated or in float, TensorRT's Q/DQ rule check, and the bytes the target stores).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (policy.yaml, metrics.json, model.pt)")
    p.add_argument("--format", default="onnx", choices=FORMATS, help="output format (default: onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 13..21 (default: 17; --int4 selects 21)")
    p.add_argument("--int4", action="store_true", help="store tensors whose codes fit 4 bits as INT4 (opset 21)")
    p.add_argument("--out", default=None, help="output file (default: RUN_DIR/model.onnx); the sidecar "
                                                "MODEL.quant.json is written beside it")
    p.add_argument("--target", default=None,
                   help="judge deployability and size for this profile instead of the run's own target")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip running the file in ONNX Runtime against PyTorch")
    p.set_defaults(func=run)


def run(args) -> int:
    import cost_models

    from .. import export_onnx, load_run

    if args.format not in FORMATS:
        raise ExportError(f"unknown export format {args.format!r}; supported: {', '.join(FORMATS)}")
    loaded = load_run(args.run_dir)
    # the run's config names its target as the search loaded it (a shipped name, or a YAML path)
    spec = args.target or loaded.metrics.get("config", {}).get("target") or loaded.metrics.get("target")
    target = cost_models.load_profile(spec) if spec else None
    example = _example_input(loaded.metrics, loaded.example_input)
    out = _output_path(args.out, loaded.path)
    report = export_onnx(loaded.model, example, out, opset=args.opset, int4=args.int4, verify=args.verify,
                         target=target)
    print(report.summary())
    print(f"wrote {report.path} and {report.sidecar_path}")
    return 0


def _output_path(out: str | None, run_dir: Path) -> Path:
    """``--out`` as a file path: a directory (existing, or written with a trailing slash) gets model.onnx inside."""
    if not out:
        return run_dir / "model.onnx"
    path = Path(out)
    if path.is_dir() or out.endswith(("/", "\\")):
        return path / "model.onnx"
    if path.suffix.lower() != ".onnx":
        raise ExportError(f"--out {out}: expected a .onnx file name or a directory")
    return path


def _example_input(metrics: dict, fallback: torch.Tensor) -> torch.Tensor:
    """A batch of the run's test data (the example fixes data-dependent branches and checks the grids);
    Gaussian noise of the right shape when the data cannot be loaded."""
    from .. import fixed_sample, load_dataset

    name = metrics.get("data")
    if name:
        try:
            data = load_dataset(name, metrics.get("data_dir"), seed=int(metrics.get("seed", 0)),
                                allow_pickle=bool(metrics.get("allow_pickle")))
            return fixed_sample(data.test, EXAMPLE_BATCH)[0].float()  # not the first: the files are class-sorted
        except HwqnnError as exc:
            log.warning("cannot load the run's data '%s' (%s); exporting with random inputs instead", name, exc)
    generator = torch.Generator().manual_seed(0)
    return torch.randn(EXAMPLE_BATCH, *fallback.shape[1:], generator=generator)
