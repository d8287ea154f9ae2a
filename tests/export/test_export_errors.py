"""Clear errors: malformed run directories, policies that do not match the model, missing packages,
models that are not fixed QuantizedModels, and bad arguments."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from export_helpers import quantized_zoo_model, scheme_policy, write_run_dir

from hwqnn.cli import main
from hwqnn.errors import ExportError, RunDirError
from hwqnn.export import export_onnx
from hwqnn.models import create_model
from hwqnn.policy import LayerPolicy, Policy
from hwqnn.run_dir import load_run, write_finished_run


@pytest.fixture(scope="module")
def run_template(tmp_path_factory):
    path, _ = write_run_dir(tmp_path_factory.mktemp("template") / "run")
    return path


def _copy(template, tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    for item in template.iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    return target


def test_missing_run_directory(tmp_path, capsys):
    with pytest.raises(RunDirError, match="does not exist"):
        load_run(tmp_path / "nope")
    assert main(["export", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwqnn export: error:") and "does not exist" in err and err.count("\n") == 1


def _resign(run_dir: Path) -> None:
    """Write a fresh fingerprint over the damaged files, to reach the checks behind the fingerprint."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.pop("fingerprint", None)
    write_finished_run(run_dir, metrics)


@pytest.mark.parametrize(("damage", "resign", "words"), [
    (lambda d: (d / "model.pt").unlink(), False, "missing model.pt"),
    (lambda d: (d / "metrics.json").write_text("{not json"), False, "not valid JSON"),
    (lambda d: (d / "metrics.json").write_bytes(b"\xff\xfe{}"), False, "not valid JSON"),
    (lambda d: (d / "metrics.json").write_text("[1, 2]"), False, "holds a list"),
    (lambda d: (d / "metrics.json").write_text(json.dumps({"model": "tiny_cnn"})), False, "no run fingerprint"),
    (lambda d: (d / "metrics.json").write_text(json.dumps({"model": "tiny_cnn"})), True, "lacks 'num_classes'"),
    (lambda d: (d / "policy.yaml").write_text("layers: [1, 2]"), False, "policy.yaml changed"),
    (lambda d: (d / "policy.yaml").write_text("layers: [1, 2]"), True, "non-empty mapping"),
    (lambda d: (d / "model.pt").write_bytes(b"garbage"), False, "model.pt changed"),
    (lambda d: (d / "model.pt").write_bytes(b"garbage"), True, "does not load"),
])
def test_malformed_run_directory(run_template, tmp_path, capsys, damage, resign, words):
    run_dir = _copy(run_template, tmp_path)
    damage(run_dir)
    if resign:
        _resign(run_dir)
    with pytest.raises(RunDirError, match=words):
        load_run(run_dir)
    assert main(["export", str(run_dir)]) == 2
    assert words in capsys.readouterr().err


def test_policy_whose_layers_do_not_match_the_model(run_template, tmp_path, capsys):
    run_dir = _copy(run_template, tmp_path)
    Policy({"features.9.conv": LayerPolicy("uniform", 4, "uniform", 4),
            "default": LayerPolicy("uniform", 4, "uniform", 8)}).save(run_dir / "policy.yaml")
    _resign(run_dir)
    with pytest.raises(RunDirError, match=r"does not match model 'tiny_cnn'.*features\.9\.conv"):
        load_run(run_dir)
    assert main(["export", str(run_dir)]) == 2
    assert "features.9.conv" in capsys.readouterr().err


def test_a_float_model_is_not_exported(tmp_path):
    with pytest.raises(ExportError, match="expects a hwqnn QuantizedModel.*got TinyCNN"):
        export_onnx(create_model("tiny_cnn"), torch.zeros(2, 1, 8, 8), tmp_path / "m.onnx")


def test_a_model_still_searching_is_not_exported(tmp_path):
    model = quantized_zoo_model("tiny_cnn", scheme_policy("uniform"), torch.randn(8, 1, 8, 8)).set_search()
    with pytest.raises(ExportError, match="search mode.*fixed policy"):
        export_onnx(model, torch.zeros(2, 1, 8, 8), tmp_path / "m.onnx")


def test_wrong_example_input_and_opset(tmp_path):
    model = quantized_zoo_model("tiny_cnn", scheme_policy("uniform"), torch.randn(8, 1, 8, 8))
    with pytest.raises(ExportError, match="fails on the example input"):
        export_onnx(model, torch.zeros(2, 3, 32, 32), tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="opset must be an integer in \\[13, 21\\].*got 11"):
        export_onnx(model, torch.zeros(2, 1, 8, 8), tmp_path / "m.onnx", opset=11)
    assert not (tmp_path / "m.onnx").exists()


def test_missing_onnx_package_gives_the_install_hint(tmp_path, monkeypatch):
    model = quantized_zoo_model("tiny_cnn", scheme_policy("uniform"), torch.randn(8, 1, 8, 8))
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ExportError, match=r"pip install 'hwqnn\[export\]'"):
        export_onnx(model, torch.zeros(2, 1, 8, 8), tmp_path / "m.onnx")


def test_missing_onnxruntime_is_only_needed_to_verify(tmp_path, monkeypatch):
    model = quantized_zoo_model("tiny_cnn", scheme_policy("uniform"), torch.randn(8, 1, 8, 8))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ExportError, match=r"onnxruntime.*pip install 'hwqnn\[export\]'.*verify=False"):
        export_onnx(model, torch.zeros(2, 1, 8, 8), tmp_path / "m.onnx")
    report = export_onnx(model, torch.zeros(2, 1, 8, 8), tmp_path / "m.onnx", verify=False)
    assert report.max_abs_diff is None and report.path.is_file()
