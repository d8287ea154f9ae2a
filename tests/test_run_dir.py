"""Run directories: a finished run's policy, weights and metrics are bound by one fingerprint, a new run
never lands on an old one, and corrupt checkpoints or mixed files give one clean line."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch

import hwqnn
from hwqnn.cli import main
from hwqnn.errors import RunDirError
from hwqnn.run_dir import load_run, prepare_run_dir, read_metrics, tidy_for_json

FAST = {"pretrain_epochs": 1, "search_epochs": 1, "finetune_epochs": 1, "batch_size": 64}
META = {"model": "tiny_cnn", "num_classes": 10, "data": "digits"}


def _search(model, data, run_dir, **kwargs):
    train, val = data
    return hwqnn.search(copy.deepcopy(model), train, val, target="bitfusion", run_dir=run_dir, meta=META,
                        **{**FAST, **kwargs})


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, small_digits, float_tiny_cnn):
    """Two finished runs of different policies (w4a4 and w8a8 uniform): their parts must never mix."""
    root = tmp_path_factory.mktemp("runs")
    _search(float_tiny_cnn, small_digits, root / "a", method="uniform", uniform_bits=(4, 4), budgets=[])
    _search(float_tiny_cnn, small_digits, root / "b", method="uniform", uniform_bits=(8, 8), budgets=[])
    return root / "a", root / "b"


@pytest.fixture
def run_a(two_runs, tmp_path):
    target = tmp_path / "a"
    shutil.copytree(two_runs[0], target)
    return target


def _one_error_line(capsys, command: str) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hwqnn {command}: error:"), lines
    assert "Traceback" not in lines[0]
    return lines[0]


def test_a_finished_run_verifies_and_loads(run_a):
    metrics = read_metrics(run_a)
    assert set(metrics["fingerprint"]["parts"]) == {"policy.yaml", "model.pt", "metrics.json"}
    loaded = load_run(run_a)
    assert {p.w_bits for p in loaded.policy.layers.values()} == {4}


@pytest.mark.parametrize("part", ["policy.yaml", "model.pt"])
def test_a_part_of_another_run_is_refused_by_export_and_report(run_a, two_runs, tmp_path, capsys, part):
    shutil.copyfile(two_runs[1] / part, run_a / part)
    with pytest.raises(RunDirError, match=f"{part} changed since the run finished"):
        load_run(run_a)
    assert main(["export", str(run_a), "--no-verify"]) == 2
    assert part in _one_error_line(capsys, "export")
    assert not (run_a / "model.onnx").exists()
    assert main(["report", "--from", str(run_a), "--out", str(tmp_path / "report")]) == 2
    assert part in _one_error_line(capsys, "report")


def test_edited_metrics_are_refused(run_a, capsys):
    metrics = json.loads((run_a / "metrics.json").read_text())
    metrics["quantized_accuracy"] = 99.9
    (run_a / "metrics.json").write_text(json.dumps(metrics))
    assert main(["export", str(run_a), "--no-verify"]) == 2
    assert "metrics.json changed" in _one_error_line(capsys, "export")


def test_a_hand_edited_policy_is_refused(run_a, capsys):
    text = (run_a / "policy.yaml").read_text()
    (run_a / "policy.yaml").write_text(text.replace("w_bits: 4", "w_bits: 2"))
    assert main(["export", str(run_a), "--no-verify"]) == 2
    assert "policy.yaml changed" in _one_error_line(capsys, "export")


def test_a_new_run_refuses_an_existing_run_directory(run_a, small_digits, float_tiny_cnn):
    before = {p.name: p.read_bytes() for p in run_a.iterdir()}
    with pytest.raises(RunDirError, match="already holds a run.*--overwrite"):
        _search(float_tiny_cnn, small_digits, run_a, method="uniform", uniform_bits=(8, 8), budgets=[])
    assert {p.name: p.read_bytes() for p in run_a.iterdir()} == before  # nothing lost


def test_the_cli_refuses_an_existing_run_directory_before_any_work(run_a, capsys):
    assert main(["search", "--target", "bitfusion", "--out", str(run_a), "--threads", "1"]) == 2
    assert "--overwrite" in _one_error_line(capsys, "search")


def test_an_interrupted_overwrite_leaves_no_mixed_run(run_a, small_digits, float_tiny_cnn):
    """The old failure: a re-run wrote policy.yaml, was interrupted, and export paired it with old weights."""

    def interrupt(phase, step):
        if phase == "finetune":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _search(float_tiny_cnn, small_digits, run_a, method="uniform", uniform_bits=(8, 8), budgets=[],
                overwrite=True, on_step=interrupt)
    assert (run_a / "policy.yaml").is_file() and (run_a / "checkpoint.pt").is_file()
    with pytest.raises(RunDirError):
        load_run(run_a)


def test_overwrite_replaces_the_run_and_keeps_other_files(run_a, small_digits, float_tiny_cnn):
    (run_a / "notes.txt").write_text("mine")
    (run_a / ".model.pt.abc123.tmp").write_bytes(b"half a file")
    result = _search(float_tiny_cnn, small_digits, run_a, method="uniform", uniform_bits=(8, 8), budgets=[],
                     overwrite=True)
    assert {p.w_bits for p in load_run(run_a).policy.layers.values()} == {8} == {p.w_bits for p in result.policy.layers.values()}
    assert (run_a / "notes.txt").read_text() == "mine"
    assert not list(run_a.glob(".*.tmp"))


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, "truncate", "missing-keys", "not-a-dict"])
def test_resume_from_a_corrupt_checkpoint_is_one_line(tmp_path, two_runs, capsys, content):
    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)
    checkpoint = run / "checkpoint.pt"
    if content == "truncate":
        torch.save({"phase": "search", "epoch": 0, "model": {"w": torch.zeros(1000)}}, checkpoint)
        checkpoint.write_bytes(checkpoint.read_bytes()[:200])
    elif content == "missing-keys":
        torch.save({"phase": "search", "epoch": 0}, checkpoint)
    elif content == "not-a-dict":
        torch.save([1, 2, 3], checkpoint)
    else:
        checkpoint.write_bytes(content)
    assert main(["search", "--resume", str(run), "--threads", "1"]) == 2
    line = _one_error_line(capsys, "search")
    assert "checkpoint" in line and "--overwrite" in line


def test_prepare_refuses_a_file_and_cleans_temporaries(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="not a directory"):
        prepare_run_dir(tmp_path / "file")
    fresh = prepare_run_dir(tmp_path / "new" / "run")
    assert fresh.is_dir()


def test_metrics_are_strict_json_with_readable_floats(two_runs):
    text = (two_runs[0] / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    metrics = json.loads(text)
    assert metrics["units"]["latency_s"] == "s" and metrics["costs_readable"]["size_bytes"].endswith("B")
    assert tidy_for_json({"a": float("inf"), "b": [float("nan"), 1 / 3], "c": torch.tensor(2.5)}) == \
        {"a": None, "b": [None, 0.3333333], "c": 2.5}


def test_export_into_an_existing_directory(run_a, tmp_path, capsys):
    out = tmp_path / "exports"
    out.mkdir()
    assert main(["export", str(run_a), "--out", str(out), "--no-verify"]) == 0
    assert (out / "model.onnx").is_file()
    assert main(["export", str(run_a), "--out", str(tmp_path / "model.txt"), "--no-verify"]) == 2
    assert ".onnx" in _one_error_line(capsys, "export")
