"""Every shipped profile validates; malformed profiles get their specific error."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from cost_models import ProfileError, list_profiles, load_profile, profile_aliases
from cost_models.precision import COMPUTE_KINDS
from cost_models.profile_loader import SANE_RANGES
from hardware_profiles import PROFILE_DIR

REQUIRED = {"jetson-nano", "jetson-tx2", "jetson-xavier-nx", "jetson-orin-nano", "jetson-agx-orin", "raspberry-pi-4",
            "coral-edgetpu", "bitfusion", "bismo", "nvidia-t4", "x86-avx2-vnni"}


def test_required_profiles_are_shipped():
    assert REQUIRED <= set(list_profiles())


@pytest.mark.parametrize("name", list_profiles())
def test_every_shipped_profile_validates(name):
    profile = load_profile(name)
    assert profile.name == name
    tables = profile.execution_tables()
    assert (tables.seconds_per_mac > 0).all() and (tables.energy_per_mac > 0).all()
    for kind in COMPUTE_KINDS:  # every kind resolves somewhere at 8 bits
        tables.lookup(kind, kind, 16 if kind == "float" else 8, 16 if kind == "float" else 8)


def _leaves(node, path=""):
    if isinstance(node, dict) and "value" in node:
        yield path, node
    elif isinstance(node, dict):
        for key, child in node.items():
            yield from _leaves(child, f"{path}.{key}" if path else str(key))


@pytest.mark.parametrize("name", list_profiles())
def test_every_number_has_a_source_or_derivation(name):
    data = yaml.safe_load((PROFILE_DIR / f"{name}.yaml").read_text())
    leaves = list(_leaves(data))
    assert leaves
    for path, leaf in leaves:
        assert leaf.get("source") or leaf.get("derived"), path


def test_aliases_resolve():
    assert profile_aliases()["jetson"] == "jetson-orin-nano"
    assert load_profile("jetson") is load_profile("jetson-orin-nano")
    for alias, target in profile_aliases().items():
        assert load_profile(alias).name == target


def test_native_precisions_state_jetson_int8_only_and_t4_int4():
    assert load_profile("jetson-orin-nano").native_precisions()["int"] == (8,)
    assert "int" not in load_profile("jetson-nano").native_precisions()
    assert load_profile("nvidia-t4").native_precisions()["int"] == (4, 8)
    assert load_profile("coral-edgetpu").fallback == "x86-avx2-vnni"


def test_load_by_path_and_unknown_name(tmp_path):
    path = PROFILE_DIR / "bismo.yaml"
    assert load_profile(path).name == "bismo"
    with pytest.raises(ProfileError, match="unknown hardware profile 'no-such-device'.*known profiles"):
        load_profile("no-such-device")
    with pytest.raises(ProfileError, match="no such file"):
        load_profile(tmp_path / "missing.yaml")


# --- malformed profiles -------------------------------------------------------------------------
BASE = yaml.safe_load((PROFILE_DIR / "jetson-nano.yaml").read_text())


def _set(data, dotted, value):
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node[int(key) if key.isdigit() and int(key) in node else key]
    last = keys[-1]
    last = int(last) if last.isdigit() and int(last) in node else last
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()

MALFORMED = [
    # (id, change, expected field, expected problem)
    ("unknown-field", ("colour", "green"), "colour", "unknown field 'colour'"),
    ("missing-field", ("efficiency", _DELETE), "efficiency", "missing field 'efficiency'"),
    ("zero-throughput", ("compute.float.peak.16.value", "0 TFLOPS"), "compute.float.peak.16.value", "must be > 0"),
    ("negative-bandwidth", ("memory.dram.bandwidth.value", "-25.6 GB/s"), "memory.dram.bandwidth.value", "must be > 0"),
    ("bad-unit", ("memory.dram.bandwidth.value", "25.6 parsecs"), "memory.dram.bandwidth.value", "not a unit of bandwidth"),
    ("unit-of-other-dimension", ("layer_overhead.value", "20 GB"), "layer_overhead.value", "not a unit of time"),
    ("wrong-type", ("compute", ["float"]), "compute", "expected a mapping"),
    ("no-source", ("memory.dram.size", {"value": "4 GiB"}), "memory.dram.size.source", "missing field 'source' or 'derived'"),
    ("bare-number", ("efficiency", 0.5), "efficiency", "every number needs a source"),
    ("unknown-type", ("type", "quantum"), "type", "unknown type 'quantum'"),
    ("name-mismatch", ("name", "other"), "name", "must equal the file name"),
    ("efficiency-above-one", ("efficiency.value", 1.5), "efficiency.value", "must be <= 1.0"),
    ("native-bits-not-a-list", ("compute.float.native_bits.value", 16), "compute.float.native_bits.value",
     "expected a non-empty list of integers"),
    ("float-native-bits", ("compute.float.native_bits.value", [8, 16]), "compute.float.native_bits.value",
     "float native bits must be 16 and/or 32"),
    ("missing-peak", ("compute.float.peak.32", _DELETE), "compute.float.peak.32", "missing peak for 32-bit"),
    ("unknown-kind", ("compute.quantum", {"native_bits": {"value": [8], "source": "x"}}), "compute.quantum",
     "unknown field 'quantum'"),
    ("schema-version", ("schema_version", 2), "schema_version", "unsupported schema version"),
    ("bad-emulation", ("compute.int", {"emulated_as": {"value": "shift4", "derived": "x"}}), "compute.int.emulated_as.value",
     "not a native precision"),
    ("level-without-bandwidth", ("memory.dram.bandwidth", _DELETE), "memory.dram.bandwidth", "missing field 'bandwidth'"),
    ("negative-inference-overhead", ("inference_overhead", {"value": "-1 ms", "derived": "x"}),
     "inference_overhead.value", "must be >= 0"),
    ("prior-of-another-dimension", ("layer_overhead.prior", "20 GB"), "layer_overhead.prior.value", "not a unit of time"),
    ("tiling-without-tile", ("tiling", {"units": {"value": 8, "source": "x"}}), "tiling.tile", "missing field 'tile'"),
    ("tile-not-two-integers", ("tiling", {"units": {"value": 8, "source": "x"}, "tile": {"value": [64], "source": "x"}}),
     "tiling.tile.value", "expected [rows, columns] of one output tile"),
]


@pytest.mark.parametrize("change, field, problem", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_profile_names_file_field_and_problem(tmp_path, change, field, problem):
    data = copy.deepcopy(BASE)
    _set(data, *change)
    path = tmp_path / "jetson-nano.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    err = info.value
    assert Path(err.file).name == "jetson-nano.yaml"
    assert err.field == field
    assert problem in err.problem
    assert str(path.name) in str(err) and field in str(err)


def test_malformed_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\ncompute: {int: [8\n")
    with pytest.raises(ProfileError, match="not valid YAML at line 3, column 1") as info:
        load_profile(path)
    assert info.value.file == str(path)


def test_unknown_fallback_device(tmp_path):
    data = copy.deepcopy(yaml.safe_load((PROFILE_DIR / "coral-edgetpu.yaml").read_text()))
    data["fallback"]["value"] = "abacus"
    path = tmp_path / "coral-edgetpu.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match="fallback device 'abacus' cannot be loaded") as info:
        load_profile(path)
    assert info.value.field == "fallback.value"


def test_device_that_cannot_run_float_needs_a_fallback(tmp_path):
    data = copy.deepcopy(yaml.safe_load((PROFILE_DIR / "coral-edgetpu.yaml").read_text()))
    del data["fallback"]
    del data["deployment"]  # (its float layers would need the fallback too: see the next test)
    path = tmp_path / "coral-edgetpu.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=r"the device cannot run int at w1a9 .*declare that kind .* or a .fallback. device") as info:
        load_profile(path)
    assert info.value.field == "compute"


def test_deployment_that_runs_layers_in_float_needs_a_float_peak_or_a_fallback(tmp_path):
    data = copy.deepcopy(yaml.safe_load((PROFILE_DIR / "coral-edgetpu.yaml").read_text()))
    del data["fallback"]
    path = tmp_path / "coral-edgetpu.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=r"run in float32, but compute.float has no native 32-bit peak") as info:
        load_profile(path)
    assert info.value.field == "deployment.float_bits.value"


# --- aliases.yaml -------------------------------------------------------------------------------------
def _alias_dir(tmp_path, text: str) -> Path:
    (tmp_path / "bismo.yaml").write_text((PROFILE_DIR / "bismo.yaml").read_text())
    (tmp_path / "aliases.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("text, problem", [
    ("b: bismo\nb: bismo\n", "duplicate key 'b' (first at line 1)"),
    ("b: &x bismo\nc: *x\n", "alias '*x' is not allowed"),
    ("b: bitfusion\n", "alias 'b' names 'bitfusion', which is not a profile here; known profiles: bismo"),
    ("bismo: bismo\n", "alias 'bismo' is already the name of a profile"),
    ("- bismo\n", "expected a mapping of alias name to profile name"),
    ("b: [bismo]\n", "expected a mapping of alias name to profile name"),
])
def test_bad_aliases_file(tmp_path, text, problem):
    with pytest.raises(ProfileError, match=re.escape(problem)) as info:
        profile_aliases(_alias_dir(tmp_path, text))
    assert info.value.file.endswith("aliases.yaml")


def test_empty_aliases_file_means_no_aliases(tmp_path):
    assert profile_aliases(_alias_dir(tmp_path, "# none yet\n")) == {}


# --- sane ranges and the shipped profiles ---------------------------------------------------------------
def test_every_shipped_number_is_inside_its_sane_range():
    """The ranges refuse typos and overflow, never a real device: every shipped profile loads (checked above)
    and its extreme numbers stay well inside the bounds."""
    profiles = [load_profile(name) for name in list_profiles()]
    peaks = [ops for p in profiles for kind in p.compute.values() for ops in kind.peak_ops.values()]
    bandwidths = [lv.bandwidth for p in profiles for lv in p.memory.values() if lv.bandwidth]
    assert SANE_RANGES["throughput"].low * 1e3 < min(peaks) and max(peaks) < SANE_RANGES["throughput"].high / 1e3
    assert SANE_RANGES["bandwidth"].low * 1e3 < min(bandwidths) and max(bandwidths) < SANE_RANGES["bandwidth"].high


def test_profile_numbers_list_every_quantity_with_its_provenance():
    profile = load_profile("coral-edgetpu")
    numbers = {n.field: n for n in profile.numbers()}
    assert numbers["compute.int.peak.8"].value == "4 TOPS"
    assert numbers["compute.int.peak.8"].provenance.startswith("source: coral.ai")
    assert numbers["fallback"].value == "x86-avx2-vnni"
    assert numbers["memory.sram.holds_weights"].value == "true"
    assert numbers["energy.int8_mac"].provenance.startswith("derived: ")  # written in the file
    assert numbers["energy.float32_mac"].provenance.startswith("default: Horowitz")  # left to the default
    assert all(n.provenance for n in numbers.values())


def test_calibrated_numbers_keep_their_prior_and_the_prior_profile_restores_them():
    nano = load_profile("jetson-nano")  # shipped calibrated (cost_models/data/measurements.csv)
    assert nano.priors["efficiency"] == 0.5 and nano.efficiency != 0.5
    prior = nano.prior_profile()
    assert prior.efficiency == 0.5 and prior.layer_overhead_s == pytest.approx(20e-6)
    assert prior.inference_overhead_s == 0.0 and prior.priors == {} and prior.prior_profile() is prior


def test_inference_overhead_and_tiling_are_read(tmp_path):
    data = copy.deepcopy(BASE)
    data["inference_overhead"] = {"value": "150 us", "derived": "test"}
    data["tiling"] = {"units": {"value": 2, "source": "test"}, "tile": {"value": [128, 64], "source": "test"}}
    path = tmp_path / "jetson-nano.yaml"
    path.write_text(yaml.safe_dump(data))
    profile = load_profile(path)
    assert profile.inference_overhead_s == pytest.approx(150e-6)
    assert (profile.tiling.units, profile.tiling.tile_m, profile.tiling.tile_n) == (2, 128, 64)
    assert "inference overhead 150 us" in profile.summary() and "128x64 output tiles over 2 units" in profile.summary()
