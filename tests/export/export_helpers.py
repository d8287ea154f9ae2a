"""Shared helpers of the export tests: build a calibrated quantized zoo model, export it, compare it."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hwqnn.data import load_dataset
from hwqnn.export import ExportReport, export_onnx
from hwqnn.export.onnx_qdq import run_onnx
from hwqnn.models import create_model, model_spec
from hwqnn.policy import LayerPolicy, Policy
from hwqnn.qag import QuantizedModel, apply_policy

#: Bits each scheme is tested at (binary and ternary have fixed bits; residual at 2 binary passes).
SCHEME_BITS = {"binary": 1, "ternary": 2, "uniform": 4, "ul2q": 4, "pot": 4, "zoom": 4, "clip": 4, "residual": 2}
#: Per-sample tolerance: a sample "matches" when every logit is within this of PyTorch's, relative to
#: the largest logit magnitude of the batch.
SAMPLE_RTOL = 1e-5
#: Random 3x32x32 inputs used for the models that expect CIFAR-sized images (no download in tests).
RANDOM_TEST_SIZE = 64


@functools.lru_cache(maxsize=1)
def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    data = load_dataset("digits", seed=0)
    return data.train.tensors[0], data.test.tensors[0], data.test.tensors[1]


def inputs_for(model_name: str, size: int = RANDOM_TEST_SIZE) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(calibration batch, test inputs, what they are) for a zoo model."""
    shape = model_spec(model_name).input_shape
    if tuple(shape) == (1, 8, 8):
        train, test, _ = digits_split()
        return train[:128], test, "digits test set (360 images)"
    generator = torch.Generator().manual_seed(1)
    calibration = torch.randn(32, *shape, generator=generator)
    return calibration, torch.randn(size, *shape, generator=generator), f"{size} N(0, 1) random {tuple(shape)} inputs"


def randomize_norms(model: torch.nn.Module, generator: torch.Generator) -> torch.nn.Module:
    """Give every norm layer random statistics and affine parameters, as training would.

    At initialisation BatchNorm is the identity, so a layer's outputs stay on the lattice of the
    previous quantizer's levels times the weight scales; the next quantizer's max-based step then puts
    many values exactly on rounding ties, where float noise decides (PyTorch and ONNX Runtime sum in
    different orders). Trained networks do not do that; random statistics break the lattice the same way.
    """
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
            with torch.no_grad():
                if getattr(module, "running_mean", None) is not None:
                    module.running_mean.normal_(0.0, 0.1, generator=generator)
                    module.running_var.uniform_(0.5, 2.0, generator=generator)
                if module.weight is not None:
                    module.weight.uniform_(0.5, 1.5, generator=generator)
                    module.bias.normal_(0.0, 0.1, generator=generator)
    return model


def quantized_zoo_model(model_name: str, policy: Policy | LayerPolicy, calibration: torch.Tensor,
                        seed: int = 0) -> QuantizedModel:
    """A zoo model (random weights and norm statistics) under ``policy``, calibrated on one batch, in eval mode."""
    torch.manual_seed(seed)
    policy = policy if isinstance(policy, Policy) else Policy({"default": policy})
    model = randomize_norms(create_model(model_name), torch.Generator().manual_seed(seed)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # branchy_cnn's fx fallback warns by design
        model = apply_policy(model, policy, calibration[:2])
    model.calibrate([calibration])
    return model.eval()


def scheme_policy(scheme: str, bits: int | None = None) -> LayerPolicy:
    bits = bits or SCHEME_BITS[scheme]
    return LayerPolicy(scheme, bits, scheme, bits)


@dataclass
class Agreement:
    """ONNX Runtime (graph as written) against PyTorch on a test set."""

    top1: float
    matching_samples: float
    max_abs_diff: float
    max_abs_output: float


def compare(model: QuantizedModel, path: Path, inputs: torch.Tensor, *, optimized: bool = False) -> Agreement:
    with torch.no_grad():
        want = model(inputs).numpy()
    got = run_onnx(path, inputs.numpy(), optimized=optimized)
    scale = float(np.abs(want).max())
    per_sample = np.abs(got - want).max(axis=1)
    return Agreement(top1=float((got.argmax(1) == want.argmax(1)).mean()),
                     matching_samples=float((per_sample <= SAMPLE_RTOL * scale).mean()),
                     max_abs_diff=float(per_sample.max()), max_abs_output=scale)


def export_zoo(model_name: str, policy, tmp_path: Path, **kwargs) -> tuple[QuantizedModel, ExportReport, torch.Tensor]:
    """Build, calibrate and export a zoo model; return it, the report, and its test inputs."""
    calibration, test, _ = inputs_for(model_name)
    model = quantized_zoo_model(model_name, policy, calibration)
    # branchy_cnn branches on the batch mean: export with the whole test batch so ONNX keeps its branch.
    example = test if model_name == "branchy_cnn" else test[:8]
    report = export_onnx(model, example, tmp_path / f"{model_name}.onnx", **kwargs)
    return model, report, test


def write_run_dir(path: Path, model_name: str = "tiny_cnn", policy: Policy | None = None) -> tuple[Path, QuantizedModel]:
    """A finished run directory as ``hwqnn search`` leaves it (policy.yaml, metrics.json, model.pt)."""
    from hwqnn.run_dir import atomic_torch_save, write_finished_run

    policy = policy or Policy({"default": LayerPolicy("uniform", 4, "uniform", 8)})
    calibration, _, _ = inputs_for(model_name)
    model = quantized_zoo_model(model_name, policy, calibration)
    path.mkdir(parents=True, exist_ok=True)
    policy.save(path / "policy.yaml")
    spec = model_spec(model_name)
    atomic_torch_save(model.state_dict(), path / "model.pt")
    write_finished_run(path, {"model": model_name, "num_classes": 10, "seed": 0,
                              "input_shape": list(spec.input_shape), "data": spec.default_data})
    return path, model
