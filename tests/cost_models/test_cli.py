"""``hwqnn cost`` and ``hwqnn profiles``."""

from __future__ import annotations

import json

import pytest

from hwqnn.cli import main


def test_profiles_list_show_validate(capsys):
    assert main(["profiles", "list"]) == 0
    out = capsys.readouterr().out
    assert "jetson-orin-nano" in out and "jetson -> jetson-orin-nano" in out
    assert main(["profiles", "show", "jetson"]) == 0
    assert "int: native bits [8]" in capsys.readouterr().out
    assert main(["profiles", "validate"]) == 0


def test_profiles_validate_reports_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\n")
    assert main(["profiles", "validate", str(bad)]) == 2
    assert "missing field" in capsys.readouterr().err


def test_cost_of_a_reference_model(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(["cost", "--model", "resnet18", "--reference", "--target", "bitfusion", "--policy", "w4a4",
                 "--batch", "2", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "target bitfusion, batch 2" in text and "stages.0.body.0" in text and "conv2d" in text
    assert json.loads(out.read_text())["batch_size"] == 2


def test_cost_of_a_zoo_model(capsys):
    models = pytest.importorskip("hwqnn.models")
    name = models.list_models()[0]
    assert main(["cost", "--model", name, "--target", "jetson", "--policy", "w8a8"]) == 0
    assert "target jetson-orin-nano" in capsys.readouterr().out


def test_cost_user_errors_are_one_line(capsys):
    assert main(["cost", "--model", "resnet18", "--reference", "--target", "no-such-device"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown hardware profile 'no-such-device'" in err
    assert main(["cost", "--model", "resnet18", "--reference", "--policy", "w99a8"]) == 2
    assert "weight bits must be in [1, 16]" in capsys.readouterr().err
