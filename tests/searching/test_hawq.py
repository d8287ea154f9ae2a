"""The Hessian-aware baseline: Hutchinson traces, then the finalize MILP on trace-weighted perturbations."""

from __future__ import annotations

import copy

import pytest
import torch

import hwqnn
from hwqnn.errors import HwqnnError
from hwqnn.searching.hessian import hutchinson_traces, slot_hessian_traces

META = {"model": "tiny_cnn", "num_classes": 10, "data": "digits"}


def test_hutchinson_is_exact_on_a_diagonal_hessian_and_separates_tensors():
    """Rademacher v has v_i^2 = 1, so one sample gives a diagonal Hessian's trace exactly; a coupling between
    the tensors does not enter either estimate (each tensor gets its own products)."""
    x, y = torch.randn(40, requires_grad=True), torch.randn(25, requires_grad=True)
    a, b = torch.rand(40), torch.rand(25)
    loss = (a * x**2).sum() + (b * y**3).sum()
    tx, ty = hutchinson_traces(loss, [x, y], samples=1)
    assert tx == pytest.approx(float(2 * a.sum()), rel=1e-5)
    assert ty == pytest.approx(float((6 * b * y.detach()).sum()), rel=1e-5)
    coupled = (a * x**2).sum() + (b * y**2).sum() + 0.1 * (x[:25] * y).sum()
    generator = torch.Generator().manual_seed(0)
    tx, ty = hutchinson_traces(coupled, [x, y], samples=3, generator=generator)
    assert tx == pytest.approx(float(2 * a.sum()), rel=1e-5) and ty == pytest.approx(float(2 * b.sum()), rel=1e-5)
    with pytest.raises(HwqnnError, match="at least one sample"):
        hutchinson_traces(loss, [x], samples=0)


def test_every_slot_gets_a_trace_and_the_model_is_left_as_it_was(tiny_cnn, digits):
    qmodel = hwqnn.convert(tiny_cnn, digits.train[0][0][None]).set_search()
    images = torch.stack([digits.train[i][0] for i in range(32)])
    labels = torch.tensor([int(digits.train[i][1]) for i in range(32)])
    modes = [slot.mode for _, _, slot in qmodel.slots()]
    traces = slot_hessian_traces(qmodel, images, labels, samples=16)
    slots = [slot for _, _, slot in qmodel.slots()]
    assert set(traces) == {id(slot) for slot in slots}  # the input image's slot too
    assert all(t > 0 for t in traces.values())  # a trained classifier sits near a minimum
    assert [slot.mode for slot in slots] == modes and qmodel.training


def test_hawq_finds_a_mixed_policy_within_the_budget_and_records_the_traces(tiny_cnn, digits, tmp_path):
    result = hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, target="bitfusion", method="hawq",
                          budgets=["latency=0.92x"], run_dir=tmp_path / "run", meta=META, pretrain_epochs=0,
                          finetune_epochs=1, batch_size=64)
    m = result.metrics
    assert m["method"] == "hawq" and all(m["within_budget"].values())
    layers = [result.policy.resolve(name) for name in result.policy.meta["hessian_traces"] if name.endswith(".weight")
              for name in [name.rsplit(".", 1)[0]]]
    assert {lp.w_scheme for lp in layers} == {"uniform"}  # HAWQ-V3's one scheme
    assert len({(lp.w_bits, lp.a_bits) for lp in layers}) > 1  # mixed precision, not a uniform policy
    assert m["quantized_accuracy"] > 80.0


def test_the_search_can_start_its_learned_bits_at_the_hawq_policy(tiny_cnn, digits, monkeypatch):
    from hwqnn.policy import Policy
    from hwqnn.searching.strategies import hawq

    asked = []

    def fixed_policy(run, perturbation, traces):
        asked.append(run.epoch)
        return Policy.uniform("w3a5").expand([op.layer_name for op in run.space.ops])

    monkeypatch.setattr(hawq, "hawq_policy", fixed_policy)
    result = hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, target="bitfusion",
                          budgets=["latency=0.95x"], pretrain_epochs=0, search_epochs=1, finetune_epochs=0,
                          batch_size=128, lr_bits=0.0, warm_start_bits="hawq")
    assert asked == [0]
    state = result.search_state  # the bits after the search: where they started, as they could not move
    bits = {k: float(v) for k, v in state.items() if k.endswith(".bits")}
    weights = [v for k, v in bits.items() if k.endswith("weight_slot.bits")]
    activations = [v for k, v in bits.items() if k.endswith("act_slot.bits") and "hwqnn_ops" not in k]  # not joins
    assert weights and activations and set(weights) == {3.0} and set(activations) == {5.0}, bits


def test_an_unknown_warm_start_is_refused():
    from hwqnn.errors import ConfigError
    from hwqnn.searching import SearchConfig

    with pytest.raises(ConfigError, match="warm_start_bits must be None or 'hawq'"):
        SearchConfig(warm_start_bits="uniform")


def test_traces_are_taken_on_every_class_of_a_class_sorted_training_set(monkeypatch):
    from types import SimpleNamespace

    from torch.utils.data import TensorDataset

    import hwqnn.searching.hessian as hessian

    labels = torch.arange(10).repeat_interleave(40)
    seen = {}

    def fake_traces(qmodel, images, labels, samples, seed):
        seen["labels"] = labels
        return {}

    monkeypatch.setattr(hessian, "slot_hessian_traces", fake_traces)
    monkeypatch.setattr(hessian, "capture_slot_inputs", lambda qmodel, images: {})
    run = SimpleNamespace(train_data=TensorDataset(torch.randn(len(labels), 3), labels), device="cpu",
                          config=SimpleNamespace(seed=0), qmodel=None)
    hessian.second_order_perturbation(run)
    assert len(seen["labels"]) == hessian.HESSIAN_IMAGES and len(set(seen["labels"].tolist())) >= 8
