"""apply_policy: uniform strings, YAML policies, per-layer overrides, errors, current_policy, and that the
float model is left untouched while the applied model's state_dict reloads with weights_only=True."""

from __future__ import annotations

import copy
import io

import pytest
import torch

import hwqnn
from hwqnn import LayerPolicy, Policy
from hwqnn.errors import PolicyError
from hwqnn.models import create_model

W4A8 = LayerPolicy("uniform", 4, "uniform", 8)
FLOAT = LayerPolicy("float", 32, "float", 32)


def _fixed_state(qmodel) -> dict[str, tuple]:
    """layer -> (w mode, w scheme, w bits, a mode, a scheme, a bits)."""
    out = {}
    for op in qmodel.quant_ops():
        w, a = op.weight_slot, op.act_slot
        out[op.layer_name] = (w.mode, w.fixed_scheme, w.fixed_bits, a.mode, a.fixed_scheme, a.fixed_bits)
    return out


@pytest.mark.parametrize("spec, w_bits, a_bits", [("w8a8", 8, 8), ("w4a4", 4, 4), ("w2a8", 2, 8)])
def test_uniform_string_fixes_every_slot(zoo, quiet_convert, spec, w_bits, a_bits):
    model, example = zoo("tiny_cnn")
    qmodel = hwqnn.apply_policy(model, spec, example).eval()
    assert set(_fixed_state(qmodel).values()) == {("fixed", "uniform", w_bits, "fixed", "uniform", a_bits)}
    with torch.no_grad():
        out, ref = qmodel(example), model(example)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert not torch.equal(out, ref)


def test_fewer_bits_move_the_output_further_from_float(zoo):
    model, example = zoo("tiny_cnn", batch_size=8)
    with torch.no_grad():
        ref = model(example)
        err8 = (hwqnn.apply_policy(model, "w8a8", example).eval()(example) - ref).abs().mean()
        err2 = (hwqnn.apply_policy(model, "w2a2", example).eval()(example) - ref).abs().mean()
    assert err8 < err2


def test_fp32_string_keeps_the_float_model(zoo):
    model, example = zoo("tiny_cnn")
    qmodel = hwqnn.apply_policy(model, "fp32", example).eval()
    assert {op.weight_slot.mode for op in qmodel.quant_ops()} == {"float"}
    with torch.no_grad():
        torch.testing.assert_close(qmodel(example), model(example), atol=1e-6, rtol=0)


def test_yaml_policy_round_trip_applies_the_same_choices(zoo, tmp_path):
    model, example = zoo("tiny_cnn")
    policy = Policy({"head": FLOAT, "re:features\\.[01]\\..*": LayerPolicy("pot", 4, "uniform", 8),
                     "default": LayerPolicy("uniform", 6, "uniform", 6)}, meta={"note": "test"})
    path = policy.save(tmp_path / "policy.yaml")
    from_yaml = hwqnn.apply_policy(model, str(path), example)
    from_object = hwqnn.apply_policy(model, policy, example)
    assert _fixed_state(from_yaml) == _fixed_state(from_object)
    with torch.no_grad():
        torch.testing.assert_close(from_yaml.eval()(example), from_object.eval()(example))


def test_overrides_exact_name_beats_pattern_beats_default(zoo, quiet_convert):
    model, example = zoo("resnet20")
    policy = Policy({
        "layer2.0.conv1": LayerPolicy("uniform", 3, "uniform", 5),  # exact name, wins over the pattern
        "re:layer2\\..*": LayerPolicy("uniform", 4, "uniform", 4),
        "re:.*conv2": LayerPolicy("pot", 5, "uniform", 8),  # first matching pattern wins for layer2.*.conv2
        "head": FLOAT,
        "default": W4A8,
    })
    state = _fixed_state(hwqnn.apply_policy(model, policy, example, schemes=["uniform"]))
    assert state["layer2.0.conv1"] == ("fixed", "uniform", 3, "fixed", "uniform", 5)
    assert state["layer2.1.conv2"] == ("fixed", "uniform", 4, "fixed", "uniform", 4)
    assert state["layer1.0.conv2"] == ("fixed", "pot", 5, "fixed", "uniform", 8)
    assert state["head"] == ("float", None, None, "float", None, None)
    assert state["stem.0"] == ("fixed", "uniform", 4, "fixed", "uniform", 8)


def test_policy_naming_a_missing_layer_is_a_policy_error_naming_it(zoo):
    model, example = zoo("tiny_cnn")
    policy = Policy({"features.9.0": W4A8, "default": W4A8})
    with pytest.raises(PolicyError, match=r"\['features\.9\.0'\]"):
        hwqnn.apply_policy(model, policy, example)


def test_policy_without_default_that_misses_a_layer_names_it(zoo):
    model, example = zoo("tiny_cnn")
    policy = Policy({"re:features\\..*": W4A8})
    with pytest.raises(PolicyError, match="no entry for layer 'head'"):
        hwqnn.apply_policy(model, policy, example)


def test_current_policy_round_trips(zoo, quiet_convert):
    model, example = zoo("vit_tiny")
    policy = Policy({"re:.*attn\\.matmul.*": LayerPolicy("uniform", 8, "uniform", 6),
                     "head": FLOAT, "patch_embed": LayerPolicy("pot", 4, "uniform", 8), "default": W4A8})
    qmodel = hwqnn.apply_policy(model, policy, example, schemes=["uniform"])
    current = qmodel.current_policy()
    assert list(current.layers) == qmodel.layer_names
    assert current.layers == policy.expand(qmodel.layer_names).layers
    again = quiet_convert(model, example).set_policy(current)
    assert _fixed_state(again) == _fixed_state(qmodel)


def test_apply_policy_to_a_quantized_model_reapplies_in_place(zoo, quiet_convert):
    model, example = zoo("tiny_cnn")
    qmodel = quiet_convert(model, example)
    assert hwqnn.apply_policy(qmodel, "w4a8", example) is qmodel
    assert set(_fixed_state(qmodel).values()) == {("fixed", "uniform", 4, "fixed", "uniform", 8)}


def test_policy_may_name_a_scheme_outside_the_search_candidates(zoo):
    model, example = zoo("tiny_cnn")
    qmodel = hwqnn.apply_policy(model, Policy.uniform(LayerPolicy("pot", 4, "uniform", 8)), example,
                                schemes=["uniform"])
    assert _fixed_state(qmodel)["head"] == ("fixed", "pot", 4, "fixed", "uniform", 8)
    with torch.no_grad():
        assert torch.isfinite(qmodel.eval()(example)).all()


def test_convert_and_apply_leave_the_float_model_untouched(zoo):
    model, example = zoo("tiny_cnn")
    model.train()
    before = copy.deepcopy(model.state_dict())
    modules_before = [(name, type(m)) for name, m in model.named_modules()]
    qmodel = hwqnn.apply_policy(model, "w4a4", example)
    with torch.no_grad():
        qmodel.train()(example)  # updates the *copy's* BatchNorm statistics
    assert model.training, "convert must restore the caller's train/eval mode"
    assert [(name, type(m)) for name, m in model.named_modules()] == modules_before
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(model.parameters(), qmodel.parameters()))


def test_state_dict_of_an_applied_model_reloads_with_weights_only(zoo, quiet_convert):
    model, example = zoo("vit_tiny")
    policy = Policy({"head": FLOAT, "re:.*mlp.*": LayerPolicy("pot", 4, "uniform", 6), "default": W4A8})
    trained = hwqnn.apply_policy(model, policy, example)
    trained.calibrate([example, torch.randn_like(example)])  # fills the quantizers' statistics
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    torch.manual_seed(123)  # a differently initialised float model of the same architecture
    fresh = hwqnn.apply_policy(create_model("vit_tiny"), policy, example)
    fresh.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(example), trained.eval()(example), atol=0, rtol=0)


@pytest.mark.parametrize("training", [True, False])
def test_converted_model_starts_in_the_callers_mode(zoo, training):
    model, example = zoo("tiny_cnn")
    model.train(training)
    qmodel = hwqnn.convert(model, example)
    assert qmodel.training is training and model.training is training
    assert all(m.training is training for m in qmodel.modules())


def test_current_policy_of_a_search_model_is_its_argmax_at_rounded_bits(zoo, quiet_convert):
    model, example = zoo("tiny_cnn")
    qmodel = quiet_convert(model, example).set_search()
    with torch.no_grad():
        for _, role, slot in qmodel.slots():
            slot.logits.alpha.zero_()
            slot.logits.alpha[slot.scheme_names.index("pot" if role == "weight" else "binary")] = 1.0
            slot.bits.fill_(5.4)
    current = qmodel.current_policy()
    assert set(current.layers.values()) == {LayerPolicy("pot", 5, "binary", 1)}
