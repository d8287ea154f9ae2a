"""Search mode: the task loss reaches every slot's continuous bitwidth and scheme logits and the model's
weights; model-wide scheme sharing gives all weight slots one alpha (and all activation slots another)."""

from __future__ import annotations

import copy

import pytest
import torch

from hwqnn.models import einsum_attention, list_models, recurrent, vit_mha  # noqa: F401  (registers them)
from hwqnn.qag import QuantModuleOp

#: Smaller variants where the default size only repeats the same layers (keeps the fast suite fast).
SMALLER = {"vit_tiny": {"depth": 1}, "vit_mha_tiny": {"depth": 1}, "einsum_vit_tiny": {"depth": 1},
           "gru_tiny": {"num_layers": 1}}


def _search_model(zoo, quiet_convert, name: str, **convert_kwargs):
    model, example = zoo(name, **SMALLER.get(name, {}))
    qmodel = quiet_convert(model, example, **convert_kwargs).set_search().train()
    with torch.no_grad():
        for _, _, slot in qmodel.slots():
            slot.bits.fill_(4.5)  # strictly inside the range, between two integer bitwidths
    return qmodel, example


def _backward(qmodel, example) -> None:
    torch.manual_seed(1)
    target = torch.randint(0, 10, (example.shape[0],))
    loss = torch.nn.functional.cross_entropy(qmodel(example), target)
    loss.backward()


@pytest.mark.parametrize("name", list_models())
def test_gradients_reach_bits_scheme_logits_and_weights(zoo, quiet_convert, name):
    qmodel, example = _search_model(zoo, quiet_convert, name)
    _backward(qmodel, example)
    for layer, role, slot in qmodel.slots():
        where = f"{name}: {layer} {role} slot"
        assert slot.bits.grad is not None and torch.isfinite(slot.bits.grad), where
        assert slot.bits.grad.abs() > 0, f"{where}: no gradient on its bitwidth"
        alpha_grad = slot.logits.alpha.grad
        assert alpha_grad is not None and torch.isfinite(alpha_grad).all(), where
        assert alpha_grad.abs().sum() > 0, f"{where}: no gradient on its scheme logits"
    for op in qmodel.quant_ops():
        if isinstance(op, QuantModuleOp):
            grad = op.weight.grad
            assert grad is not None and grad.abs().sum() > 0, f"{name}: {op.layer_name} weight has no gradient"


def test_functional_weights_get_gradients_through_their_slot(zoo, quiet_convert):
    qmodel, example = _search_model(zoo, quiet_convert, "functional_cnn")
    _backward(qmodel, example)
    net = qmodel.net
    for weight in (net.conv1_weight, net.conv2_weight, net.fc_weight):
        assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_search_output_mixes_schemes_and_differs_from_float(zoo, quiet_convert):
    qmodel, example = _search_model(zoo, quiet_convert, "tiny_cnn")
    qmodel.eval()
    with torch.no_grad():
        searched = qmodel(example)
        floated = qmodel.set_float()(example)
    assert not torch.allclose(searched, floated)


@pytest.mark.parametrize("name", ["functional_cnn", pytest.param("vit_tiny", marks=pytest.mark.slow)])
def test_model_wide_sharing_uses_one_alpha_per_role(zoo, quiet_convert, name):
    shared, example = _search_model(zoo, quiet_convert, name, scheme_sharing="model")
    per_layer, _ = _search_model(zoo, quiet_convert, name, scheme_sharing="layer")

    weight_logits = {id(slot.logits) for _, role, slot in shared.slots() if role == "weight"}
    act_logits = {id(slot.logits) for _, role, slot in shared.slots() if role == "activation"}
    assert len(weight_logits) == 1 and len(act_logits) == 1 and weight_logits != act_logits
    n_slots = len(per_layer.slots())
    assert len({id(slot.logits.alpha) for _, _, slot in per_layer.slots()}) == n_slots
    alphas = [p for n, p in shared.named_parameters() if n.endswith("logits.alpha")]
    assert len(alphas) == 2  # parameters() lists a shared alpha once

    # The shared alpha collects the gradient of every slot: the sum of the per-layer alphas' gradients.
    _backward(shared, example)
    _backward(per_layer, example)
    for role in ("weight", "activation"):
        shared_slot = next(slot for _, r, slot in shared.slots() if r == role)
        summed = sum(slot.logits.alpha.grad for _, r, slot in per_layer.slots() if r == role)
        torch.testing.assert_close(shared_slot.logits.alpha.grad, summed, rtol=1e-4, atol=1e-7)


def test_sampled_mode_weights_mix_every_scheme_and_activations_compare_two(zoo, quiet_convert):
    qmodel, example = _search_model(zoo, quiet_convert, "tiny_cnn")
    for _, _, slot in qmodel.slots():
        slot.single_path = True
    torch.manual_seed(0)
    _backward(qmodel, example)
    compared = 0
    for layer, role, slot in qmodel.slots():
        grad = slot.logits.alpha.grad
        assert grad is not None and slot.bits.grad is not None
        if role == "weight":
            assert bool((grad != 0).all()), f"{layer} weight: {grad}"
        else:
            # Two sampled schemes under a softmax over the pair: their gradients cancel, the rest are 0.
            # (Both are 0 when the pair quantizes identically, e.g. binary and ternary on ReLU outputs.)
            nonzero = int((grad != 0).sum())
            assert nonzero in (0, 2), f"{layer} activation: {grad}"
            torch.testing.assert_close(grad.sum(), grad.new_zeros(()), atol=1e-6, rtol=0)
            compared += nonzero == 2
    assert compared >= 1


def test_sampled_mode_weight_gradient_equals_the_mixture(zoo, quiet_convert):
    """Weights mix every scheme in both modes, so their logit gradients must agree exactly."""
    sampled, example = _search_model(zoo, quiet_convert, "tiny_cnn")
    mixed = copy.deepcopy(sampled)
    for _, role, slot in sampled.slots():
        slot.single_path = True
        if role == "activation":  # make the activation side identical too: one candidate dominates
            slot.logits.alpha.data[:] = torch.tensor([0.0] + [-1e4] * (slot.logits.alpha.numel() - 1))
    for (_, _, slot), (_, _, twin) in zip(sampled.slots(), mixed.slots()):
        twin.logits.alpha.data.copy_(slot.logits.alpha.data)
    torch.manual_seed(0)
    _backward(sampled, example)
    _backward(mixed, example)
    for (_, role, a), (_, _, b) in zip(sampled.slots(), mixed.slots()):
        if role == "weight":
            torch.testing.assert_close(a.logits.alpha.grad, b.logits.alpha.grad, rtol=1e-4, atol=1e-7)
