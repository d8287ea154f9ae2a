"""Malformed hardware profiles through the real CLI: always exit code 2, one stderr line, never a NaN.

Each variant is built from the shipped jetson-orin-nano profile (a changed field, or raw bytes), saved
under the profile's own file name, and run through ``hwqnn profiles validate`` and ``hwqnn cost``.
"""

from __future__ import annotations

import copy
import random
import re
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from cost_models import CostModel, ProfileError, load_profile
from cost_models.reference_workloads import reference_workload
from hardware_profiles import PROFILE_DIR
from hwqnn.cli import main

NAME = "jetson-orin-nano"
BASE_TEXT = (PROFILE_DIR / f"{NAME}.yaml").read_text(encoding="utf-8")
BASE = yaml.safe_load(BASE_TEXT)
#: The efficiency line's start as shipped (its value is calibrated, so it is looked up, not spelled out).
EFFICIENCY = re.search(r"^efficiency: \{value: [^,]+,", BASE_TEXT, re.MULTILINE).group(0)
NOT_A_NUMBER = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)
_DELETE = object()


def _changed(dotted: str, value) -> bytes:
    """The base profile with one dotted field set (or deleted), as YAML bytes."""
    data = copy.deepcopy(BASE)
    *parents, last = [int(k) if k.isdigit() else k for k in dotted.split(".")]
    node = data
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return yaml.safe_dump(data, sort_keys=False).encode()


def _quantity(value) -> dict:
    return {"value": value, "derived": "fuzz"}


def _text(old: str, new: str) -> bytes:
    """The base profile's text with one exact substring replaced (for what yaml.safe_dump cannot write)."""
    assert old in BASE_TEXT, old
    return BASE_TEXT.replace(old, new, 1).encode()


ALIAS_BOMB = "\n".join(
    [f"name: {NAME}", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
).encode()
DEEP = ("description: " + "[" * 200 + "]" * 200 + "\n").encode()
VERY_DEEP = ("description: " + "[" * 100_000 + "\n").encode()

VARIANTS: dict[str, bytes] = {
    # numbers out of range: subnormal, huge, NaN, infinite, zero, negative
    "denormal-int-peak": _changed("compute.int.peak.8.value", 1e-310),
    "denormal-float-peak": _changed("compute.float.peak.32.value", 5e-324),
    "tiny-bandwidth": _changed("memory.dram.bandwidth.value", "1e-300 B/s"),
    "huge-peak": _changed("compute.float.peak.16.value", "1e30 TOPS"),
    "overflowing-peak": _changed("compute.float.peak.16.value", "1e999 TOPS"),
    "negative-peak": _changed("compute.int.peak.8.value", "-20 TOPS"),
    "huge-mac-energy": _changed("energy", {"int8_mac": _quantity(1e300)}),
    "huge-mac-energy-with-unit": _changed("energy", {"float32_mac": _quantity("1e300 pJ")}),
    "huge-byte-energy": _changed("memory.dram.energy_per_byte", _quantity("1e300 pJ/B")),
    "zero-byte-energy": _changed("memory.dram.energy_per_byte", _quantity(0)),
    "nan-peak": _changed("compute.int.peak.8.value", float("nan")),
    "nan-literal-efficiency": _text(EFFICIENCY, "efficiency: {value: .NaN,"),
    "inf-bandwidth": _changed("memory.dram.bandwidth.value", float("inf")),
    "minus-inf-overhead": _changed("layer_overhead.value", float("-inf")),
    "zero-efficiency": _changed("efficiency.value", 0),
    "subnormal-efficiency": _changed("efficiency.value", 1e-310),
    "efficiency-above-one": _changed("efficiency.value", 1.5),
    "subnormal-derating": _changed("bandwidth_derating.value", 4e-320),
    "negative-overhead": _changed("layer_overhead.value", "-5 us"),
    "huge-overhead": _changed("layer_overhead.value", "1e9 s"),
    "zero-sram-size": _changed("memory.sram.size.value", 0),
    "bad-unit": _changed("memory.dram.bandwidth.value", "68 furlongs"),
    # wrong types
    "string-for-number": _changed("compute.int.peak.8.value", "fast"),
    "bool-for-number": _changed("efficiency.value", True),
    "list-for-number": _changed("memory.dram.bandwidth.value", [1, 2]),
    "map-for-number": _changed("efficiency.value", {"a": 1}),
    "list-for-map": _changed("memory", ["dram"]),
    "string-for-map": _changed("compute", "int8"),
    "list-for-quantity": _changed("efficiency", [0.4]),
    "source-not-a-string": _changed("efficiency", {"value": 0.4, "source": ["a", "b"]}),
    "float-peak-key": _changed("compute.int.peak", {8.5: _quantity("20 TOPS")}),
    "bool-peak-key": _changed("compute.int.peak", {True: _quantity("20 TOPS")}),
    "null-peak-key": _changed("compute.int.peak", {None: _quantity("20 TOPS")}),
    "word-peak-key": _changed("compute.int.peak", {"eight": _quantity("20 TOPS")}),
    "list-peak-key": _text("      8: {value: 20 TOPS,", "      ? [8]\n      : {value: 20 TOPS,"),
    "peak-key-twice": _changed("compute.int.peak", {8: _quantity("20 TOPS"), "8": _quantity("20 TOPS")}),
    "native-bits-strings": _changed("compute.int.native_bits.value", ["8"]),
    "native-bits-fraction": _changed("compute.int.native_bits.value", [8.5]),
    "native-bits-huge": _changed("compute.int.native_bits.value", [1000]),
    "type-is-a-list": _changed("type", ["roofline"]),
    "schema-version-list": _changed("schema_version", [1]),
    "name-is-a-number": _changed("name", 5),
    "description-null": _changed("description", None),
    "emulated-as-number": _changed("compute.float", {"emulated_as": _quantity(42)}),
    "emulated-as-unknown": _changed("compute.float", {"emulated_as": _quantity("int99")}),
    "bit-brick-on-roofline": _changed("bit_brick", _quantity(2)),
    "unknown-energy-key": _changed("energy", {"int4_mac": _quantity("1 pJ")}),
    # missing sections
    "missing-compute": _changed("compute", _DELETE),
    "missing-memory": _changed("memory", _DELETE),
    "missing-name": _changed("name", _DELETE),
    "missing-dram": _changed("memory.dram", _DELETE),
    "empty-compute": _changed("compute", {}),
    # fallback
    "unknown-fallback": _changed("fallback", {"value": "no-such-device", "source": "fuzz"}),
    "self-fallback": _changed("fallback", {"value": NAME, "source": "fuzz"}),
    "chained-fallback": _changed("fallback", {"value": "coral-edgetpu", "source": "fuzz"}),
    "fallback-not-a-string": _changed("fallback", {"value": ["x86-avx2-vnni"], "source": "fuzz"}),
    # YAML that safe_load would accept or choke on
    "duplicate-top-key": _text("type: roofline\n", "type: roofline\ntype: bitbrick\n"),
    "duplicate-nested-key": _text("      8: {value: 20 TOPS,", "      8: {value: 1 TOPS, source: a}\n      8: {value: 20 TOPS,"),
    "alias-bomb": ALIAS_BOMB,
    "simple-alias": _text(EFFICIENCY, "efficiency: {value: &e 0.4, other: *e,"),
    "merge-key": _text(EFFICIENCY, "efficiency: {<<: {value: 0.4}, value: 0.4,"),
    "deep-nesting": DEEP,
    "very-deep-nesting": VERY_DEEP,
    "python-tag": b"!!python/object/apply:os.system ['echo unsafe']\n",
    "unclosed-bracket": _text("peak:\n      8: {value: 20 TOPS,", "peak:\n      8: [{value: 20 TOPS,"),
    "tab-indentation": _text("\n  int:", "\n\tint:"),
    "huge-integer": _text(EFFICIENCY, "efficiency: {value: " + "9" * 5000 + ","),
    "huge-hex-integer": _text(EFFICIENCY, "efficiency: {value: 0x" + "f" * 5000 + ","),
    "integer-beyond-float": _changed("compute.int.peak.8.value", 2**1023 + 2**1022),
    "impossible-timestamp": _text(EFFICIENCY, "efficiency: {value: !!timestamp 2020-13-45,"),
    "binary-tag": _text(EFFICIENCY, "efficiency: {value: !!binary AAAA,"),
    "set-tag": _text(EFFICIENCY, "efficiency: {value: !!set {a},"),
    "integer-top-level-key": _text("type: roofline\n", "type: roofline\n7: seven\n"),
    # bytes that are not a YAML profile at all
    "latin-1-bytes": _text("NVIDIA Jetson Orin Nano 8 GB", "NVIDIA Jetson Orin Nano 8 GB caf\xe9").decode().encode("latin-1"),
    "utf-16": BASE_TEXT.encode("utf-16"),
    "nul-byte": _text("roofline", "roof\x00line"),
    "control-character": _text("roofline", "roof\x07line"),
    "empty-file": b"",
    "comments-only": b"# nothing here\n\n",
    "top-level-list": b"- name: jetson-orin-nano\n",
    "top-level-scalar": b"jetson-orin-nano\n",
    "binary-garbage": random.Random(0).randbytes(4096),
    "over-one-mebibyte": BASE_TEXT.encode() + b"#" * (1 << 20) + b"\n",
}


def _one_error_line(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    for stream in (captured.out, captured.err):
        assert "Traceback" not in stream
    assert captured.err.count("\n") == 1 and captured.err.endswith("\n"), captured.err
    assert not NOT_A_NUMBER.search(captured.out), captured.out
    return captured.out, captured.err


def _write(tmp_path: Path, variant: str) -> Path:
    path = tmp_path / f"{NAME}.yaml"
    path.write_bytes(VARIANTS[variant])
    return path


def test_the_corpus_is_large_and_every_variant_differs_from_the_shipped_file():
    assert len(VARIANTS) >= 40
    assert all(data != BASE_TEXT.encode() for data in VARIANTS.values())


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_validate_refuses_with_one_line(tmp_path, capsys, variant):
    path = _write(tmp_path, variant)
    assert main(["profiles", "validate", str(path)]) == 2
    out, err = _one_error_line(capsys)
    assert out == ""
    assert err.startswith("error: profile ") and str(path) in err


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cost_refuses_with_one_line(tmp_path, capsys, variant):
    path = _write(tmp_path, variant)
    assert main(["cost", "--model", "resnet18", "--reference", "--input-size", "32", "--target", str(path)]) == 2
    out, err = _one_error_line(capsys)
    assert out == ""
    assert err.startswith("hwqnn cost: error: ")


@pytest.mark.parametrize("variant", ["denormal-int-peak", "huge-mac-energy", "nan-peak", "subnormal-efficiency"])
def test_the_error_names_the_dotted_field(tmp_path, variant):
    fields = {"denormal-int-peak": "compute.int.peak.8.value", "huge-mac-energy": "energy.int8_mac.value",
              "nan-peak": "compute.int.peak.8.value", "subnormal-efficiency": "efficiency.value"}
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, variant))
    assert info.value.field == fields[variant]


@pytest.mark.parametrize("variant, problem", [
    ("denormal-int-peak", "is below 1 kOPS"),
    ("huge-mac-energy", "must be <= 1 uJ"),
    ("nan-peak", "is not finite"),
    ("zero-efficiency", "must be > 0"),
    ("float-peak-key", "unknown field 8.5; allowed fields here (bitwidths): 8"),
    ("peak-key-twice", "the peak for 8-bit is given twice"),
    ("unknown-fallback", "fallback device 'no-such-device' cannot be loaded"),
    ("chained-fallback", "has a fallback of its own ('x86-avx2-vnni')"),
    ("duplicate-top-key", "not valid YAML at line 5, column 1: duplicate key 'type' (first at line 4)"),
    ("alias-bomb", "alias '*a0' is not allowed"),
    ("merge-key", "merge keys ('<<') are not allowed"),
    ("deep-nesting", "nested deeper than 32 levels"),
    ("very-deep-nesting", "nested deeper than 32 levels"),
    ("latin-1-bytes", "not UTF-8 text: byte 0xe9 at offset"),
    ("binary-garbage", "not UTF-8 text"),
    ("nul-byte", "is not allowed in YAML"),
    ("empty-file", "the file is empty"),
    ("over-one-mebibyte", "larger than 1 MiB"),
    ("python-tag", "could not determine a constructor"),
    ("huge-integer", "integer too large (more than 1024 bits"),
    ("huge-hex-integer", "integer too large (more than 1024 bits"),
    ("impossible-timestamp", "cannot read this timestamp value: month must be in 1..12"),
])
def test_the_error_says_what_is_wrong(tmp_path, variant, problem):
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, variant))
    assert problem in str(info.value)


def test_alias_bomb_fails_fast_in_bounded_memory(tmp_path):
    path = _write(tmp_path, "alias-bomb")
    assert len(VARIANTS["alias-bomb"]) < 2048  # 9**10 strings if expanded
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ProfileError, match="alias"):
            load_profile(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2.0
    assert peak < 5 * 2**20


def test_fallback_cycle_is_refused(tmp_path, capsys):
    other = copy.deepcopy(BASE)
    other["name"] = "jetson-twin"
    other["fallback"] = {"value": NAME, "source": "fuzz"}
    (tmp_path / "jetson-twin.yaml").write_text(yaml.safe_dump(other))
    path = tmp_path / f"{NAME}.yaml"
    path.write_bytes(_changed("fallback", {"value": "jetson-twin", "source": "fuzz"}))
    assert main(["profiles", "validate", str(path)]) == 2
    _, err = _one_error_line(capsys)
    assert f"a cycle {NAME} -> jetson-twin -> {NAME}" in err


def test_a_fallback_next_to_the_file_is_used(tmp_path):
    (tmp_path / "x86-avx2-vnni.yaml").write_text((PROFILE_DIR / "x86-avx2-vnni.yaml").read_text())
    path = tmp_path / f"{NAME}.yaml"
    path.write_bytes(_changed("fallback", {"value": "x86-avx2-vnni", "source": "fuzz"}))
    profile = load_profile(path)
    assert Path(profile.fallback_profile.file).parent == tmp_path


def test_search_refuses_a_bad_profile_before_training(tmp_path, capsys):
    path = _write(tmp_path, "denormal-int-peak")
    code = main(["search", "--target", str(path), "--epochs", "1", "--out", str(tmp_path / "run")])
    assert code == 2
    _, err = _one_error_line(capsys)
    assert "compute.int.peak.8.value" in err


def test_cost_model_refuses_a_hand_made_profile_whose_costs_overflow():
    from dataclasses import replace

    broken = replace(load_profile("bitfusion"), efficiency=1e-310, _cache={})
    with pytest.raises(ProfileError, match=r"at batch 1 on bitfusion are not finite .*worst-case latency inf"):
        CostModel(reference_workload("resnet18", 32), broken)
