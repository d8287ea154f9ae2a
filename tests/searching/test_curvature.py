"""The second-order term of the search's loss: it resists coarse quantization where the loss is curved,
its gradient reaches the scheme logits and the bits (never the weights), and it survives a checkpoint."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch

import cost_models
import hwqnn
from hwqnn.errors import ConfigError
from hwqnn.qag import convert
from hwqnn.searching.config import SearchConfig
from hwqnn.searching.curvature import CurvaturePenalty
from hwqnn.searching.space import SearchSpace


def _space(model, digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = convert(model, digits.train[0][0][None].repeat(2, 1, 1, 1))
    qmodel.calibrate([digits.train.tensors[0][:256]])
    qmodel.set_search()
    cost_model = cost_models.CostModel(qmodel.workload, cost_models.load_profile("bitfusion"))
    return SearchSpace(qmodel, cost_model)


def _coarse_hurts(curved):
    """Omega that halves per bit, with ternary as bad as 2 bits; ``curved`` slots count 100x."""
    def perturbation(slot, options):
        return [(100.0 if slot in curved else 1.0) * 2.0 ** -slot.candidates[o.scheme].effective_bits(o.bits)
                for o in options]
    return perturbation


def test_the_gradient_raises_the_bits_and_lowers_coarse_schemes_most_where_the_loss_is_curved(tiny_cnn, digits):
    space = _space(tiny_cnn, digits)
    curved, flat = space.ops[0].weight_slot, space.ops[1].weight_slot
    with torch.no_grad():
        for slot in space.slots():
            slot.bits.fill_(4.5)
    penalty = CurvaturePenalty.measure(space, _coarse_hurts([curved]))
    value = penalty(space)
    assert value.requires_grad and value > 0
    value.backward()
    # more bits lower the term; the curved slot's bits feel it 100x more than the flat one's
    assert curved.bits.grad < 0 and flat.bits.grad < 0
    assert float(curved.bits.grad) == pytest.approx(100 * float(flat.bits.grad), rel=1e-6)
    # raising ternary's logit (2 bits, below the 4.5 the others are at) raises the term
    assert curved.logits.alpha.grad[curved.scheme_names.index("ternary")] > 0
    assert all(p.grad is None for p in space.weight_parameters())


def test_the_term_interpolates_between_integer_bits(tiny_cnn, digits):
    space = _space(tiny_cnn, digits)
    penalty = CurvaturePenalty.measure(space, _coarse_hurts([]), weight=1.0)
    values = []
    for bits in (4.0, 4.25, 5.0):
        with torch.no_grad():
            for slot in space.slots():
                slot.bits.fill_(bits)
        values.append(float(penalty(space).detach()))
    assert values[0] > values[1] > values[2]
    assert values[1] == pytest.approx(0.75 * values[0] + 0.25 * values[2], rel=1e-9)  # linear in between
    assert float(CurvaturePenalty(penalty.tables, weight=0.0)(space)) == 0.0


def test_the_tables_survive_a_checkpoint_and_must_match_the_model(tiny_cnn, digits):
    space = _space(tiny_cnn, digits)
    penalty = CurvaturePenalty.measure(space, _coarse_hurts([space.ops[0].act_slot]))
    again = CurvaturePenalty.from_state(penalty.state_dict())
    assert float(again(space).detach()) == float(penalty(space).detach()) and again.weight == penalty.weight
    with pytest.raises(hwqnn.HwqnnError, match="curvature tables for 1 slots"):
        CurvaturePenalty(penalty.tables[:1])(space)


@pytest.mark.parametrize("weight", [-0.1, math.inf, math.nan])
def test_a_bad_curvature_weight_is_refused(weight):
    with pytest.raises(ConfigError, match="curvature_weight must be a finite number >= 0"):
        SearchConfig(curvature_weight=weight)


def test_a_search_records_the_term_and_checkpoints_its_tables(tiny_cnn, digits, tmp_path):
    """(Resuming with them is ``test_search.py::test_resume_after_interrupt_gives_the_same_policy``.)"""
    fast = dict(target="bitfusion", budgets=["latency=0.95x"], pretrain_epochs=0, search_epochs=2, finetune_epochs=0,
                batch_size=128, seed=0)
    result = hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, **fast)
    terms = [h["curvature_loss"] for h in result.history if h["phase"] == "search"]
    assert len(terms) == 2 and all(t > 0 for t in terms)

    def interrupt(phase, step):
        if phase == "search" and step == 14:  # in the second search epoch, after the first's checkpoint
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, run_dir=tmp_path / "run", on_step=interrupt,
                     **fast)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    slots = sum(len(op.slots) for op in convert(tiny_cnn, digits.train[0][0][None].repeat(2, 1, 1, 1)).quant_ops())
    assert len(state["strategy"]["curvature"]["tables"]) == slots
    off = hwqnn.search(tiny_cnn, digits.train, digits.test, curvature_weight=0.0, **fast)
    assert all("curvature_loss" not in h for h in off.history)
