"""Policy and LayerPolicy: validation, lookup precedence, uniform(), to_precisions(), and atomic YAML I/O."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from cost_models.precision import LayerPrecision
from hwqnn.errors import USER_ERRORS, PolicyError
from hwqnn.policy import FLOAT_LAYER, POLICY_VERSION, LayerPolicy, Policy, atomic_write_text

W4A8 = LayerPolicy("uniform", 4, "uniform", 8)
LAYERS = ["stem", "block.0.conv", "block.1.conv", "head"]


# --- LayerPolicy validation -------------------------------------------------------------------------

@pytest.mark.parametrize("fields, message", [
    (("no_such_scheme", 4, "uniform", 8), r"w_scheme: .*no_such_scheme"),
    (("uniform", 4, "nope", 8), r"a_scheme: .*nope"),
    (("uniform", 0, "uniform", 8), r"w_bits must be an integer in \[1, 16\] for scheme 'uniform', got 0"),
    (("uniform", 17, "uniform", 8), r"w_bits .* got 17"),
    (("uniform", 4, "uniform", 4.5), r"a_bits .* got 4.5"),
    (("uniform", True, "uniform", 8), r"w_bits .* got True"),
    (("uniform", "4", "uniform", 8), r"w_bits .* got '4'"),
    (("float", 8, "uniform", 8), r"w_scheme 'float' needs w_bits 16 or 32, got 8"),
    (("uniform", 8, "float", 4), r"a_scheme 'float' needs a_bits 16 or 32, got 4"),
])
def test_layer_policy_rejects_bad_fields_naming_them(fields, message):
    with pytest.raises(PolicyError, match=message):
        LayerPolicy(*fields)


def test_layer_policy_accepts_float_and_every_registered_scheme():
    from hwqnn.quantizers import list_schemes

    assert FLOAT_LAYER.is_float
    assert LayerPolicy("float", 16, "float", 16).is_float
    assert not LayerPolicy("float", 32, "uniform", 8).is_float
    for scheme in list_schemes():
        assert LayerPolicy(scheme, 4, scheme, 4).w_scheme == scheme


@pytest.mark.parametrize("data, message", [
    ([1, 2], r"layer 'x': expected a mapping"),
    ({"w_scheme": "uniform", "w_bits": 4, "a_scheme": "uniform"}, r"missing fields \['a_bits'\]"),
    ({**W4A8.to_dict(), "g_bits": 3}, r"unknown fields \['g_bits'\]"),
    ({**W4A8.to_dict(), "w_bits": 99}, r"layer 'x': w_bits .* got 99"),
])
def test_layer_policy_from_dict_errors_name_the_layer(data, message):
    with pytest.raises(PolicyError, match=message):
        LayerPolicy.from_dict(data, "layer 'x'")


def test_layer_policy_dict_round_trip():
    assert LayerPolicy.from_dict(W4A8.to_dict()) == W4A8


# --- Policy validation and lookup -------------------------------------------------------------------

def test_policy_rejects_non_layer_policy_values_and_bad_regexes():
    with pytest.raises(PolicyError, match=r"entry 'head' must be a LayerPolicy, got dict"):
        Policy({"head": W4A8.to_dict()})
    with pytest.raises(PolicyError, match=r"pattern 're:block\.\(' is not a valid regex"):
        Policy({"re:block.(": W4A8})


def test_resolve_precedence_exact_then_first_pattern_then_default():
    first, second, exact, default = (LayerPolicy("uniform", b, "uniform", 8) for b in (2, 3, 5, 6))
    policy = Policy({"re:block\\..*": first, "re:.*conv": second, "block.1.conv": exact, "default": default})
    assert policy.resolve("block.1.conv") == exact  # exact beats patterns even when listed after them
    assert policy.resolve("block.0.conv") == first  # first matching pattern in order
    assert policy.resolve("stem.conv") == second
    assert policy.resolve("head") == default
    assert policy.resolve("xblock.0.conv") == second  # patterns must match the whole name


def test_resolve_without_default_names_the_layer():
    with pytest.raises(PolicyError, match="no entry for layer 'head' and no 'default'"):
        Policy({"stem": W4A8}).resolve("head")


def test_check_layers_names_unknown_layers_and_lists_the_models():
    policy = Policy({"stem": W4A8, "block.7.conv": W4A8, "re:nothing.*": W4A8, "default": W4A8})
    with pytest.raises(PolicyError, match=r"does not have: \['block\.7\.conv'\].*'head'"):
        policy.check_layers(LAYERS)


def test_expand_gives_one_explicit_entry_per_layer():
    policy = Policy({"re:block\\..*": W4A8, "default": FLOAT_LAYER}, meta={"source": "test"})
    expanded = policy.expand(LAYERS)
    assert list(expanded.layers) == LAYERS
    assert expanded.layers["block.0.conv"] == W4A8 and expanded.layers["head"] == FLOAT_LAYER
    assert expanded.meta == {"source": "test"}


# --- uniform() and to_precisions() ------------------------------------------------------------------

def test_uniform_strings():
    w4a8 = Policy.uniform("w4a8")
    assert w4a8.layers == {"default": LayerPolicy("uniform", 4, "uniform", 8)}
    assert w4a8.meta == {"uniform": "w4a8"}
    assert Policy.uniform("W8A8").resolve("anything") == LayerPolicy("uniform", 8, "uniform", 8)
    assert Policy.uniform("fp32").resolve("x").is_float
    assert Policy.uniform("fp16").resolve("x") == LayerPolicy("float", 16, "float", 16)
    assert Policy.uniform("w4a4", scheme="pot", a_scheme="uniform").resolve("x") == LayerPolicy("pot", 4, "uniform", 4)
    assert Policy.uniform(W4A8).layers == {"default": W4A8}


@pytest.mark.parametrize("spec", ["w4", "int8", "w0a8", "w4a32", ""])
def test_uniform_rejects_unknown_strings_naming_them(spec):
    with pytest.raises(USER_ERRORS, match=re.escape(repr(spec))):
        Policy.uniform(spec)


def test_to_precisions_gives_the_hardware_view_per_layer():
    policy = Policy({"head": FLOAT_LAYER, "stem": LayerPolicy("uniform", 8, "uniform", 8), "default": W4A8})
    precisions = policy.to_precisions(LAYERS)
    assert list(precisions) == LAYERS
    assert precisions["head"] == LayerPrecision("float", 32, "float", 32)
    assert precisions["stem"] == LayerPrecision("int", 8, "int", 8)
    assert precisions["block.0.conv"] == LayerPrecision("int", 4, "int", 8)


def test_to_precisions_uses_each_schemes_compute_kind():
    binary = Policy({"default": LayerPolicy("binary", 1, "uniform", 8)}).to_precisions(["fc"])["fc"]
    assert (binary.w_kind, binary.w_bits) == ("binary", 1)
    pot = Policy({"default": LayerPolicy("pot", 4, "uniform", 8)}).to_precisions(["fc"])["fc"]
    assert pot.w_kind == "shift"


def test_to_precisions_refuses_unknown_layers():
    with pytest.raises(PolicyError, match="block.9"):
        Policy({"block.9": W4A8, "default": W4A8}).to_precisions(LAYERS)


# --- YAML I/O --------------------------------------------------------------------------------------

def _mixed_policy() -> Policy:
    return Policy({"stem": LayerPolicy("pot", 4, "uniform", 8), "re:block\\.[0-9]+\\.conv": W4A8,
                   "head": FLOAT_LAYER, "default": LayerPolicy("uniform", 8, "uniform", 8)},
                  meta={"target": "jetson", "accuracy": 0.93})


def test_yaml_round_trip_keeps_order_entries_and_meta(tmp_path):
    policy = _mixed_policy()
    path = policy.save(tmp_path / "sub" / "policy.yaml")  # parent folders are created
    loaded = Policy.load(path)
    assert loaded == policy
    assert list(loaded.layers) == list(policy.layers)
    data = yaml.safe_load(path.read_text())
    assert data["version"] == POLICY_VERSION
    assert data["layers"]["head"] == {"w_scheme": "float", "w_bits": 32, "a_scheme": "float", "a_bits": 32}


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "policy.yaml"
    Policy.uniform("w8a8").save(path)
    original = path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["policy.yaml"]

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        _mixed_policy().save(path)
    assert path.read_text() == original  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["policy.yaml"]  # and the temporary file is gone


def test_atomic_write_replaces_existing_file(tmp_path):
    path = tmp_path / "x.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"


@pytest.mark.parametrize("text, message", [
    ("layers: [unclosed", "not valid YAML at line 1"),
    ("just a string", "expected a mapping with a 'layers' key"),
    ("version: 2\nlayers: {default: {w_scheme: uniform, w_bits: 4, a_scheme: uniform, a_bits: 8}}",
     "policy version 2 is not supported"),
    ("layers: {}", "'layers' must be a non-empty mapping"),
    ("layers: {head: {w_scheme: uniform, w_bits: 40, a_scheme: uniform, a_bits: 8}}", r"layer 'head': w_bits"),
    ("!!python/object/apply:os.system ['echo unsafe']", "not valid YAML at line 1, column 1: could not determine a constructor"),
])
def test_load_errors_name_the_file_and_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=message) as info:
        Policy.load(path)
    assert str(path) in str(info.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(PolicyError, match=r"policy file .*missing\.yaml does not exist"):
        Policy.load(tmp_path / "missing.yaml")


POLICY_ALIAS_BOMB = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    + ["layers: {default: {w_scheme: uniform, w_bits: 4, a_scheme: uniform, a_bits: 8}}"]
).encode()
GOOD_POLICY = "layers:\n  default: {w_scheme: uniform, w_bits: 4, a_scheme: uniform, a_bits: 8}\n"


@pytest.mark.parametrize("data, message", [
    (GOOD_POLICY.replace("default", "caf\xe9").encode("latin-1"), "not UTF-8 text: byte 0xe9 at offset 13"),
    (GOOD_POLICY.encode("utf-16"), "not UTF-8 text"),
    (POLICY_ALIAS_BOMB, "line 2, column 10: alias '*a0' is not allowed"),
    (GOOD_POLICY.encode() + b"layers: {}\n", "line 3, column 1: duplicate key 'layers' (first at line 1)"),
    (b"layers:\n  head: {w_scheme: uniform, w_bits: 4, w_bits: 8, a_scheme: uniform, a_bits: 8}\n",
     "duplicate key 'w_bits'"),
    (b"layers:\n  default: {<<: {w_scheme: uniform}, w_bits: 4, a_scheme: uniform, a_bits: 8}\n", "merge keys"),
    (b"meta: " + b"[" * 5000 + b"\n" + GOOD_POLICY.encode(), "nested deeper than 32 levels"),
    (b"meta: [1, 2]\n" + GOOD_POLICY.encode(), "'meta' must be a mapping, got list"),
    (b"", "expected a mapping with a 'layers' key"),
    (GOOD_POLICY.encode() + b"#" * (5 << 20), "larger than 4 MiB"),
    (b"layers: \x00", "character U+0000"),
])
def test_load_refuses_unsafe_or_ambiguous_yaml_in_one_line(tmp_path, data, message):
    path = tmp_path / "policy.yaml"
    path.write_bytes(data)
    with pytest.raises(PolicyError) as info:
        Policy.load(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_policy_alias_bomb_fails_fast_in_bounded_memory(tmp_path):
    import time
    import tracemalloc

    path = tmp_path / "policy.yaml"
    path.write_bytes(POLICY_ALIAS_BOMB)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(PolicyError, match="alias"):
            Policy.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2.0 and peak < 5 * 2**20


def test_cli_reports_a_bad_policy_file_in_one_line(tmp_path, capsys):
    from hwqnn.cli import main

    path = tmp_path / "policy.yaml"
    path.write_bytes(POLICY_ALIAS_BOMB)
    assert main(["cost", "--model", "resnet18", "--reference", "--input-size", "32", "--policy", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "alias '*a0' is not allowed" in captured.err
