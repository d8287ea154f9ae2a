"""Search mode: the task loss reaches every slot's continuous bitwidth and scheme logits and the model's
weights; model-wide scheme sharing gives all weight slots one alpha (and all activation slots another)."""

from __future__ import annotations

import pytest
import torch

from hwqnn.models import einsum_attention, list_models, recurrent, vit_mha  # noqa: F401  (registers them)
from hwqnn.qag import QuantModuleOp
from hwqnn.qag.slot import QuantSlot

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


def test_sampled_mode_runs_one_path_per_slot_with_gradients_on_every_parameter(zoo, quiet_convert):
    qmodel, example = _search_model(zoo, quiet_convert, "tiny_cnn")
    for _, _, slot in qmodel.slots():
        slot.single_path = True
    torch.manual_seed(0)
    _backward(qmodel, example)
    for layer, role, slot in qmodel.slots():
        grad = slot.logits.alpha.grad
        assert grad is not None and slot.bits.grad is not None, f"{layer} {role}"
        # d log softmax(alpha)_k / d alpha = onehot(k) - p: every logit moves, the drawn one the other way.
        assert bool((grad != 0).all()), f"{layer} {role}: {grad}"
        assert min(int((grad > 0).sum()), int((grad < 0).sum())) == 1, f"{layer} {role}: {grad}"
        assert float(grad.sum()) == pytest.approx(0.0, abs=1e-6)


def _slot_gradients(slot: QuantSlot, x: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Gradient of the linear loss <direction, slot(x)> w.r.t. (scheme logits, b~): the loss's own gradient
    does not depend on the path drawn, so a sampled estimate must average to the mixture's exactly."""
    slot.logits.alpha.grad = slot.bits.grad = None
    (direction * slot(x)).sum().backward()
    return torch.cat([slot.logits.alpha.grad, slot.bits.grad.reshape(1)])


@pytest.mark.parametrize("role", ["weight", "activation"])
def test_one_sampled_path_is_an_unbiased_estimate_of_the_mixture_gradient(role):
    torch.manual_seed(0)
    channels = 4 if role == "weight" else None
    slot = QuantSlot(role, channels=channels, schemes=["uniform", "binary", "pot", "ul2q"], bits_range=(2, 8))
    slot.set_search()
    with torch.no_grad():
        slot.logits.alpha.copy_(torch.tensor([0.4, -0.3, 0.1, 0.2]))
        slot.bits.fill_(3.35)
    x = torch.randn(4, 6, 3, 3) if role == "weight" else torch.randn(8, 4, 5, 5)
    direction = torch.randn_like(x)
    exact = _slot_gradients(slot, x, direction)  # the mixture (also initialises every scheme's steps)
    slot.single_path = True
    draws = torch.stack([_slot_gradients(slot, x, direction) for _ in range(4000)])
    mean, error = draws.mean(0), draws.std(0) / draws.shape[0] ** 0.5
    assert bool(((mean - exact).abs() <= 4 * error + 1e-6).all()), (mean, exact, error)


@pytest.mark.parametrize("bits, nearest", [(3.35, 3), (3.7, 4)])
def test_sampled_mode_evaluates_the_argmax_scheme_at_the_nearest_integer_bits(bits, nearest):
    """Eval mode shows the network the sampled search trains and finalize can deploy: the argmax scheme at
    round(b~), not the lerp of the two roundings (which the sampled mode never trains)."""
    torch.manual_seed(0)
    slot = QuantSlot("weight", channels=4, schemes=["binary", "uniform"], bits_range=(2, 8))
    slot.set_search()
    slot.single_path = True
    with torch.no_grad():
        slot.logits.alpha.copy_(torch.tensor([-1.0, 1.0]))
        slot.bits.fill_(bits)
    w = torch.randn(4, 6, 3, 3)
    slot.eval()
    out = slot(w)
    torch.testing.assert_close(out, slot.candidates["uniform"](w, nearest), rtol=0, atol=0)
    assert not torch.equal(out, slot.candidates["uniform"](w, torch.tensor(bits)))
