"""``hwqnn export RUN_DIR``: writes model.onnx and model.quant.json for a finished run."""

from __future__ import annotations

import json

import numpy as np
import onnx
import torch
from export_helpers import digits_split, write_run_dir

from hwqnn.cli import main
from hwqnn.export.onnx_qdq import run_onnx
from hwqnn.policy import LayerPolicy, Policy
from hwqnn.run_dir import load_run


def test_export_writes_onnx_and_sidecar_into_the_run_dir(tmp_path, capsys):
    policy = Policy({"features.0.0": LayerPolicy("float", 32, "float", 32),
                     "head": LayerPolicy("binary", 1, "uniform", 8),
                     "default": LayerPolicy("uniform", 4, "pot", 4)})
    run_dir, _ = write_run_dir(tmp_path / "run", policy=policy)
    assert main(["export", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "packed size" in out and "TensorRT" in out
    onnx.checker.check_model(onnx.load(run_dir / "model.onnx"), full_check=True)
    sidecar = json.loads((run_dir / "model.quant.json").read_text())
    assert sidecar["policy"]["layers"] == Policy.load(run_dir / "policy.yaml").expand(
        [row["layer"] for row in sidecar["layers"]]).to_dict()["layers"]
    by_layer = {row["layer"]: row for row in sidecar["layers"]}
    assert by_layer["features.0.0"]["w_representation"] == "float"
    assert by_layer["head"]["w_representation"] == "qdq-int8"
    assert by_layer["head"]["a_representation"] == "qdq-uint8"  # post-ReLU 8-bit: the unsigned grid
    # The file computes what the run's model computes on real digits.
    loaded = load_run(run_dir)
    _, test, _ = digits_split()
    with torch.no_grad():
        want = loaded.model(test).numpy()
    got = run_onnx(run_dir / "model.onnx", test.numpy())
    assert np.mean(got.argmax(1) == want.argmax(1)) == 1.0


def test_export_int4_to_another_path(tmp_path):
    run_dir, _ = write_run_dir(tmp_path / "run")
    out = tmp_path / "deploy" / "net.onnx"
    assert main(["export", str(run_dir), "--int4", "--out", str(out), "--opset", "17"]) == 0
    model = onnx.load(out)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 21
    assert (tmp_path / "deploy" / "net.quant.json").is_file()
    assert not (run_dir / "model.onnx").exists()
