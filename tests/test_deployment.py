"""Deployment: which (scheme, bits) a target's runtime runs natively, how it is priced, and the search
space restricted to it."""

from __future__ import annotations

import pytest
import torch
import yaml

import cost_models
from cost_models import ProfileError
from hwqnn.deployment import (
    EMULATED,
    FLOAT,
    NATIVE,
    deployable_bits,
    place_layer,
    price_tensor,
    restrict_to_target,
)
from hwqnn.errors import DeploymentError
from hwqnn.models import create_model
from hwqnn.policy import LayerPolicy, Policy
from hwqnn.qag import convert


@pytest.fixture(scope="module")
def jetson():
    return cost_models.load_profile("jetson-orin-nano")


def test_every_shipped_profile_declares_its_runtime():
    for name in cost_models.list_profiles():
        profile = cost_models.load_profile(name)
        assert profile.deployment is not None, name
        for fmt in profile.deployment.formats:
            assert fmt.source.strip(), f"{name}: format {fmt.name} has no source"


@pytest.mark.parametrize(("scheme", "bits", "container"), [("pot", 3, 8), ("pot", 4, 8), ("ternary", 2, 8),
                                                            ("binary", 1, 8), ("uniform", 8, 8), ("clip", 5, 8)])
def test_schemes_that_map_exactly_into_symmetric_int8_are_native_on_tensorrt(jetson, scheme, bits, container):
    price = price_tensor(scheme, "weight", bits, jetson.deployment)
    assert (price.status, price.kind, price.bits, price.format) == (NATIVE, "int", container, "int8")


@pytest.mark.parametrize(("scheme", "bits", "role"), [("zoom", 4, "weight"), ("residual", 3, "weight"), ("pot", 5, "weight"),
                                                      ("uniform", 8, "activation"), ("ternary", 2, "activation")])
def test_what_tensorrt_cannot_run_as_int8_runs_in_fp16(jetson, scheme, bits, role):
    price = price_tensor(scheme, role, bits, jetson.deployment)
    assert (price.status, price.kind, price.bits) == (FLOAT, "float", 16)
    assert price.note  # says why


def test_unsigned_activations_need_7_bits_in_symmetric_int8_but_not_in_asymmetric_int8(jetson):
    coral = cost_models.load_profile("coral-edgetpu")
    assert max(deployable_bits("uniform", "activation", (2, 8), jetson.deployment)) == 7
    assert max(deployable_bits("uniform", "activation", (2, 8), coral.deployment)) == 8
    assert deployable_bits("zoom", "activation", (2, 8), coral.deployment)  # zero points allowed on activations
    assert not deployable_bits("zoom", "weight", (2, 8), coral.deployment)  # but not on weights (TFLite spec)


def test_a_layer_with_one_float_operand_runs_in_float(jetson):
    placement = place_layer(LayerPolicy("pot", 3, "zoom", 6), jetson.deployment)
    assert placement.status == FLOAT and placement.precision.w_kind == "float" and placement.precision.w_bits == 16


def test_int4_only_where_both_operands_fit_int4():
    t4 = cost_models.load_profile("nvidia-t4")
    both = place_layer(LayerPolicy("uniform", 4, "uniform", 3), t4.deployment)
    assert (both.status, both.format, both.precision.w_bits, both.precision.a_bits) == (NATIVE, "int4", 4, 4)
    mixed = place_layer(LayerPolicy("uniform", 4, "uniform", 6), t4.deployment)
    assert (mixed.status, mixed.format) == (NATIVE, "int8")


def test_bit_flexible_targets_keep_every_scheme_at_its_own_bits():
    spec = cost_models.load_profile("bitfusion").deployment
    for scheme in ("uniform", "zoom", "pot", "residual", "ul2q", "clip"):
        assert deployable_bits(scheme, "weight", (2, 8), spec) == tuple(range(2, 9))
    price = price_tensor("pot", "weight", 3, spec)
    assert (price.status, price.kind, price.bits) == (NATIVE, "shift", 3)
    assert price_tensor("zoom", "weight", 4, spec).side_bytes == 5  # scale + a one-byte zero point per channel
    assert price_tensor("residual", "weight", 3, spec).side_bytes == 8 * 4  # a 2^3-entry lookup table per channel


def test_a_device_without_float_emulates_what_its_format_cannot_hold():
    spec = cost_models.load_profile("bismo").deployment
    assert spec.otherwise == "emulated"
    assert place_layer(LayerPolicy("pot", 3, "uniform", 4), spec).status == NATIVE


def test_otherwise_emulated_prices_the_wider_container(tmp_path):
    path = _profile_with(tmp_path, lambda d: d["deployment"].update(otherwise={"value": "emulated", "source": "x"}))
    spec = cost_models.load_profile(path).deployment
    price = price_tensor("zoom", "weight", 4, spec)
    assert (price.status, price.kind, price.bits) == (EMULATED, "int", 4)  # the execution tables widen it


def test_policy_costs_follow_the_runtime(jetson):
    model = create_model("tiny_cnn")
    q = convert(model, torch.randn(2, 1, 8, 8))
    cost_model = cost_models.CostModel(q.workload, jetson)
    names = q.layer_names
    w8a8 = cost_model.evaluate(cost_models.resolve_precisions("w8a8", names))
    # pot at 3 bits and ternary run as int8 on TensorRT: same latency and size as w8a8
    pot = Policy({"default": LayerPolicy("pot", 3, "uniform", 7)})
    ternary = Policy({"default": LayerPolicy("ternary", 2, "clip", 4)})
    for policy in (pot, ternary):
        report = cost_model.evaluate(cost_models.resolve_precisions(policy, names, jetson))
        assert report.latency_s == pytest.approx(w8a8.latency_s)
        assert report.size_bytes == pytest.approx(w8a8.size_bytes)
    # zoom is not TensorRT int8: priced as the fp16 it runs in, slower than w8a8
    zoom = cost_model.evaluate(cost_models.resolve_precisions(Policy.uniform("w4a4", scheme="zoom"), names, jetson))
    assert zoom.latency_s > w8a8.latency_s and zoom.size_bytes > w8a8.size_bytes


def test_restricted_slots_give_undeployable_schemes_no_probability(jetson):
    q = convert(create_model("tiny_cnn"), torch.randn(2, 1, 8, 8))
    restrict_to_target(q, jetson)
    q.set_search()
    for _, role, slot in q.slots():
        probs = dict(zip(slot.scheme_names, slot.probabilities().tolist()))
        assert probs["zoom"] == 0.0 and probs["residual"] == 0.0
        if role == "activation":
            assert probs["ternary"] == 0.0 and probs["pot"] == 0.0
            assert slot.bits_range[1] == 7
        assert slot.argmax_scheme() not in ("zoom", "residual")
    out = q(torch.randn(4, 1, 8, 8))
    out.sum().backward()  # gradients flow through the masked mixture
    assert all(torch.isfinite(p.grad).all() for p in q.parameters() if p.grad is not None)


def test_a_target_without_native_integers_is_a_clear_error():
    q = convert(create_model("tiny_cnn"), torch.randn(2, 1, 8, 8))
    with pytest.raises(DeploymentError, match="jetson-nano: no layer of the model.*--allow-emulated"):
        restrict_to_target(q, cost_models.load_profile("jetson-nano"))
    restrict_to_target(q, cost_models.load_profile("jetson-nano"), allow_emulated=True)  # priced as fp16


def _profile_with(tmp_path, edit) -> str:
    source = cost_models.load_profile("nvidia-t4")
    data = yaml.safe_load(open(source.file))
    edit(data)
    path = tmp_path / "my-gpu.yaml"
    data["name"] = "my-gpu"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_a_format_without_a_peak_is_a_profile_error_naming_the_field(tmp_path):
    def drop_int4_peak(data):
        data["compute"]["int"]["native_bits"]["value"] = [8]
        del data["compute"]["int"]["peak"][4]

    with pytest.raises(ProfileError, match=r"deployment\.formats\[0\]\.value\.bits.*no native 4-bit peak"):
        cost_models.load_profile(_profile_with(tmp_path, drop_int4_peak))


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d["deployment"]["formats"][0].pop("source"), r"deployment\.formats\[0\]\.source"),
    (lambda d: d["deployment"]["formats"][0]["value"].update(precision="flexible"), r"precision"),
    (lambda d: d["deployment"]["formats"][0]["value"].update(weight="sometimes"), r"value\.weight"),
    (lambda d: d["deployment"].update(storage={"value": "zipped", "source": "x"}), r"deployment\.storage"),
    (lambda d: d["deployment"].update(float_bits={"value": 8, "source": "x"}), r"deployment\.float_bits"),
])
def test_bad_deployment_sections_name_the_field(tmp_path, edit, field):
    with pytest.raises(ProfileError, match=field):
        cost_models.load_profile(_profile_with(tmp_path, edit))


def test_a_layer_the_runtime_has_no_format_for_stays_float(caplog):
    class TokenClassifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(50, 16)
            self.head = torch.nn.Linear(16, 4)

        def forward(self, ids):
            return self.head(self.embed(ids).mean(1))

    q = convert(TokenClassifier(), torch.randint(0, 50, (2, 12)))
    kept = restrict_to_target(q, cost_models.load_profile("jetson-orin-nano"))  # int8 formats: conv, linear, matmul
    assert kept == ["embed"] and "stay float" in caplog.text
    assert all(s.pinned_float for s in q.layer("embed").slots)
    assert not q.layer("head").weight_slot.pinned_float
