"""A profile file is resolved once and its own numbers price everything: search, pareto, report and
``report --from``, even when it carries the name of a shipped profile (the old failure: an 8000x slower
custom bitfusion showed the shipped numbers)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import cost_models
import hardware_profiles
from hwqnn.cli import main

FLAGS = ["--pretrain-epochs", "1", "--epochs", "1", "--batch-size", "128", "--threads", "1", "--train-limit", "256"]


@pytest.fixture(scope="module")
def slow_bitfusion(tmp_path_factory) -> Path:
    """The shipped bitfusion, same name, with 8190x less compute and 8000x less DRAM bandwidth."""
    text = (Path(hardware_profiles.__file__).parent / "bitfusion.yaml").read_text()
    assert "8.19 TOPS" in text and "12 GB/s" in text
    path = tmp_path_factory.mktemp("profiles") / "bitfusion.yaml"  # a profile is named after its file
    path.write_text(text.replace("8.19 TOPS", "0.001 TOPS").replace("12 GB/s", "0.0015 GB/s"))
    return path


def _latency(target, policy: str) -> float:
    from hwqnn.models import create_model

    model = create_model("tiny_cnn", num_classes=10)
    import torch

    return cost_models.estimate(model, torch.zeros(1, 1, 8, 8), target, policy).latency_s


def test_the_custom_profile_is_much_slower(slow_bitfusion):
    assert _latency(str(slow_bitfusion), "w8a8") > 100 * _latency("bitfusion", "w8a8")


def test_pareto_prices_with_the_file_not_the_shipped_profile(slow_bitfusion, tmp_path, capsys):
    out = tmp_path / "front"
    assert main(["pareto", "--target", str(slow_bitfusion), "--sweep", "latency=0.9x:1.0x:2", "--baselines", "w8a8",
                 "--out", str(out), *FLAGS]) == 0
    points = pd.read_csv(out / "points.csv").set_index("name")
    assert points.loc["w8a8", "latency_s"] == pytest.approx(_latency(str(slow_bitfusion), "w8a8"), rel=1e-5)


def test_report_targets_use_the_file(slow_bitfusion, tmp_path, capsys):
    out, work = tmp_path / "report", tmp_path / "work"
    assert main(["report", "--targets", f"{slow_bitfusion},raspberry-pi-4", "--sweep", "latency=0.9x:1.0x:2",
                 "--baselines", "w8a8", "--out", str(out), "--work", str(work), *FLAGS]) == 0
    points = pd.read_csv(work / "bitfusion" / "points.csv").set_index("name")
    assert points.loc["w8a8", "latency_s"] == pytest.approx(_latency(str(slow_bitfusion), "w8a8"), rel=1e-5)
    page = (out / "report.md").read_text()
    assert "0.001 TOPS" in page and "8.19 TOPS" not in page


def test_two_targets_of_one_name_are_refused(slow_bitfusion, tmp_path, capsys):
    assert main(["report", "--targets", f"{slow_bitfusion},bitfusion", "--out", str(tmp_path / "r"), *FLAGS]) == 2
    assert "both named 'bitfusion'" in capsys.readouterr().err


def test_report_from_a_run_made_with_the_file(slow_bitfusion, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["search", "--target", str(slow_bitfusion), "--budget", "size=0.5x", "--out", str(run),
                 "--pretrain-epochs", "1", "--epochs", "1", "--threads", "1"]) == 0
    assert main(["report", "--from", str(run), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "report.md").read_text()
    assert "0.001 TOPS" in page and "8.19 TOPS" not in page
