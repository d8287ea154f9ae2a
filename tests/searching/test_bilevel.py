"""Bilevel (DNAS-style) search updates: the architecture steps on a held-out split, the weights on the rest."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.data import TensorDataset

import hwqnn
from hwqnn.searching.strategies.dnas import ARCH_SPLIT, split_for_bilevel
from hwqnn.searching.train import alternating_epoch


def test_the_split_is_disjoint_fixed_by_the_seed_and_holds_out_a_fifth():
    data = TensorDataset(torch.arange(100).float()[:, None], torch.arange(100) % 3)
    weights, arch = split_for_bilevel(data, seed=0)
    assert len(arch) == round(ARCH_SPLIT * 100) and len(weights) + len(arch) == 100
    seen = {int(x) for x in weights.tensors[0][:, 0]} | {int(x) for x in arch.tensors[0][:, 0]}
    assert seen == set(range(100))
    again = split_for_bilevel(data, seed=0)[1].tensors[0]
    assert torch.equal(again, arch.tensors[0]) and not torch.equal(split_for_bilevel(data, seed=1)[1].tensors[0], again)


class _Recording(torch.optim.SGD):
    """SGD that keeps the gradients it stepped with."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.seen = []

    def step(self, closure=None):
        self.seen.append([p.grad.detach().clone() for group in self.param_groups for p in group["params"]])
        return super().step(closure)


def test_each_optimizer_steps_on_the_gradient_of_its_own_split_only():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    weight_opt, arch_opt = _Recording([model.weight], 0.1), _Recording([model.bias], 0.1)
    x_w, y_w = torch.randn(8, 4), torch.randint(0, 3, (8,))
    x_a, y_a = torch.randn(8, 4) * 5, torch.randint(0, 3, (8,))
    start = copy.deepcopy(model)
    alternating_epoch(model, [(x_w, y_w)], [(x_a, y_a)], [weight_opt], [arch_opt], torch.device("cpu"))
    # the weight step: the weight batch's gradient at the starting parameters
    expected_w = torch.autograd.grad(nn.functional.cross_entropy(start(x_w), y_w), start.weight)[0]
    assert torch.allclose(weight_opt.seen[0][0], expected_w)
    # the architecture step: the held-out batch's gradient after the weight step
    with torch.no_grad():
        start.weight -= 0.1 * expected_w
    expected_b = torch.autograd.grad(nn.functional.cross_entropy(start(x_a), y_a), start.bias)[0]
    assert torch.allclose(arch_opt.seen[0][0], expected_b)
    assert len(weight_opt.seen) == len(arch_opt.seen) == 1


def test_a_bilevel_search_runs_within_its_budget(tiny_cnn, digits):
    result = hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, target="bitfusion",
                          budgets=["latency=0.92x"], pretrain_epochs=0, search_epochs=2, finetune_epochs=1,
                          batch_size=64, bilevel=True)
    assert result.metrics["config"]["bilevel"] is True and all(result.metrics["within_budget"].values())
    assert [row["phase"] for row in result.history].count("search") == 2
