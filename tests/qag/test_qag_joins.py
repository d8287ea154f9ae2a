"""Joins: the inputs of residual adds and pools that convs feed are quantized, exactly and only where they should be."""

from __future__ import annotations

import warnings

import pytest
import torch

from cost_models import load_profile
from hwqnn.deployment import restrict_to_target
from hwqnn.models import create_model, model_spec
from hwqnn.policy import Policy
from hwqnn.qag import apply_policy, convert


def _converted(name: str, policy: str | None = "w8a8"):
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(4, *model_spec(name).input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = apply_policy(model, Policy.uniform(policy), x) if policy else convert(model, x)
    return model, qmodel, x


def test_resnet_joins_every_residual_add_and_the_pool_and_shares_the_conv_input_quantizer():
    _, qmodel, _ = _converted("resnet20")
    joins = qmodel.joins()
    names = {j.op_name for j in joins}
    assert len([n for n in names if n.endswith(".add")]) == 9 and "pool.adaptive_avg_pool" in names
    float_op_names = {op.name for op in qmodel.workload.float_ops}
    assert names <= float_op_names  # named as the cost models name the op
    # An identity shortcut reads the tensor the next block's conv1 reads: it shares that conv's slot.
    shared = {j.name: j._sibling.layer_name for j in joins if j._sibling is not None}
    assert shared["layer1.1.add.in1"] == "layer1.1.conv1"
    assert all(j.active for j in joins)
    assert {j.name for j in joins if j.shared_slot() is not None} == set(shared)  # w8a8: uniform 8-bit slots


def test_transformers_get_no_joins():
    _, qmodel, _ = _converted("vit_tiny")
    assert qmodel.joins() == []


def test_joins_are_inactive_in_float_and_follow_the_policy():
    model, qmodel, x = _converted("resnet20", policy=None)
    assert not any(j.active for j in qmodel.joins())
    with torch.no_grad():
        assert torch.equal(qmodel.eval()(x), model(x))
    qmodel.set_policy(Policy.uniform("w4a4"))
    assert all(j.active and j.shared_slot() is None for j in qmodel.joins())  # 4-bit slots: own 8-bit quantizers
    with torch.no_grad():
        assert not torch.equal(qmodel(x), model(x))


@pytest.mark.parametrize("target, signed", [("jetson-orin-nano", True), ("nvidia-t4", True), ("x86-avx2-vnni", False),
                                            ("bitfusion", False), ("coral-edgetpu", False)])
def test_joins_are_signed_on_symmetric_int8_runtimes_only(target, signed):
    _, qmodel, _ = _converted("tiny_cnn")
    restrict_to_target(qmodel, load_profile(target))
    assert {bool(j.act_slot.candidates["uniform"].signed_only) for j in qmodel.joins()} == {signed}


def test_a_state_saved_without_joins_still_loads():
    _, qmodel, x = _converted("resnet20")
    qmodel.calibrate([x])
    state = {k: v for k, v in qmodel.state_dict().items() if "_add_in" not in k and "_pool_in" not in k}
    _, fresh, _ = _converted("resnet20")
    fresh.load_state_dict(state)  # strict: only the joins' own state may be missing
    state.pop(next(iter(state)))
    with pytest.raises(RuntimeError, match="Missing key"):
        fresh.load_state_dict(state)


def test_concatenations_of_conv_outputs_are_joined_as_the_cost_models_price_them():
    from cost_models import build_reference_model

    torch.manual_seed(0)
    model = build_reference_model("squeezenet1_1", device="cpu").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = apply_policy(model, Policy.uniform("w8a8"), torch.randn(2, 3, 32, 32))
    cats = {j.op_name for j in qmodel.joins() if j.op_type == "cat"}
    assert len(cats) == 8  # every Fire module's expand1x1 / expand3x3 concat
    priced = {op.name for op in qmodel.workload.float_ops if op.int_bits == 8}
    assert cats <= priced and priced == {j.op_name for j in qmodel.joins()}
