"""``hwqnn cost`` and ``hwqnn profiles``."""

from __future__ import annotations

import json
import re

import pytest

from hwqnn.cli import main


def test_profiles_list_show_validate(capsys):
    assert main(["profiles", "list"]) == 0
    out = capsys.readouterr().out
    assert "jetson-orin-nano" in out and "jetson -> jetson-orin-nano" in out
    assert main(["profiles", "validate"]) == 0


def test_profiles_show_prints_every_number_with_its_source(capsys):
    assert main(["profiles", "show", "jetson"]) == 0
    out = capsys.readouterr().out
    table, deployment = out.split("\n\nruntime: ")
    lines = table.splitlines()
    assert lines[0].startswith("jetson-orin-nano (roofline): ")
    rows = {line.split()[0]: line for line in lines[3:]}
    assert "20 TOPS" in rows["compute.int.peak.8"] and "derived: NVIDIA Jetson Orin Nano Series Data Sheet" in rows[
        "compute.int.peak.8"]
    assert "68 GB/s" in rows["memory.dram.bandwidth"] and "source: NVIDIA" in rows["memory.dram.bandwidth"]
    assert "default: Horowitz" in rows["energy.int8_mac"]  # the file leaves energies to the defaults
    numbers = [line for line in lines[3:] if line.strip()]
    assert all(re.search(r"(source|derived|default): \S", line) for line in numbers[1:])
    # then what the runtime executes natively, each format with its source
    assert deployment.startswith("TensorRT") and "native int8 (fixed, 8-bit)" in deployment
    assert "int8: source: NVIDIA TensorRT Developer Guide" in deployment


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


def test_unknown_target_lists_profiles_and_aliases_as_plain_text(capsys):
    assert main(["cost", "--model", "resnet18", "--reference", "--target", "foo"]) == 2
    err = capsys.readouterr().err
    assert "unknown hardware profile 'foo'; known profiles: bismo, bitfusion, coral-edgetpu" in err
    assert "(aliases: coral -> coral-edgetpu, jetson -> jetson-orin-nano," in err
    assert not set("[]{}") & set(err)


@pytest.mark.parametrize("args, problem", [
    (["--input-size", "0"], "--input-size must be >= 1"),
    (["--input-size", "-3"], "--input-size must be >= 1"),
    (["--batch", "0"], "--batch must be >= 1"),
    (["--num-classes", "0"], "--num-classes must be >= 1"),
])
def test_cost_refuses_impossible_sizes_in_one_line(capsys, args, problem):
    assert main(["cost", "--model", "resnet18", "--reference", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and problem in captured.err


def test_cost_of_an_image_too_small_for_the_reference_model_is_one_line(capsys):
    assert main(["cost", "--model", "vgg16", "--reference", "--input-size", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot run on a 1x1 image" in err and "Traceback" not in err


def test_cost_json_creates_missing_folders_and_reports_an_unwritable_path(tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "report.json"
    assert main(["cost", "--model", "resnet18", "--reference", "--input-size", "32", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["batch_size"] == 1
    capsys.readouterr()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["cost", "--model", "resnet18", "--reference", "--input-size", "32",
                 "--json", str(blocker / "report.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write --json {blocker / 'report.json'}" in err


GOOD_ROW = "bismo,resnet18,224,1,w2a2,5.0,calib,https://example.org/paper,\n"
HEADER = "device,model,input_size,batch_size,precision,latency_ms,split,source,notes\n"


@pytest.mark.parametrize("data, problem", [
    ((HEADER + GOOD_ROW).encode("utf-16"), "not UTF-8 text"),
    ((HEADER + GOOD_ROW).encode() + b"\xff\xfe", "not UTF-8 text: byte 0xff"),
    (b"", "No columns to parse"),
    (b"device,model\nbismo,resnet18\n", "lack columns input_size, batch_size"),
    ((HEADER + GOOD_ROW.replace(",5.0,", ",nan,")).encode(), "latency_ms must be a positive finite number (lines 2)"),
    ((HEADER + GOOD_ROW.replace(",5.0,", ",inf,")).encode(), "latency_ms must be a positive finite number"),
    ((HEADER + GOOD_ROW.replace(",5.0,", ",-1,")).encode(), "latency_ms must be a positive finite number"),
    ((HEADER + GOOD_ROW.replace(",224,1,", ",abc,1,")).encode(), "input_size must be an integer >= 1 (lines 2)"),
    ((HEADER + GOOD_ROW + GOOD_ROW.replace(",224,1,", ",224,0,")).encode(), "batch_size must be an integer >= 1 "
                                                                              "(lines 3)"),
    ((HEADER + GOOD_ROW.replace(",224,1,", ",224,1.5,")).encode(), "batch_size must be an integer >= 1"),
    ((HEADER + GOOD_ROW.replace("https://example.org/paper", "")).encode(), "every row needs a source"),
    ((HEADER + GOOD_ROW.replace(",calib,", ",train,")).encode(), "split must be calib or holdout"),
    ((HEADER + 'bismo,"resnet18,224\n').encode(), "cannot read measurements"),
    ((HEADER + GOOD_ROW.replace("resnet18", "resnet9000")).encode(), "unknown reference model 'resnet9000'"),
    (bytes(range(256)) * 4, "not UTF-8 text"),
])
def test_calibrate_refuses_bad_measurements_in_one_line(tmp_path, capsys, data, problem):
    csv = tmp_path / "measurements.csv"
    csv.write_bytes(data)
    assert main(["profiles", "calibrate", "bismo", "--measurements", str(csv)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1
    assert problem in captured.err
