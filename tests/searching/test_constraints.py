import pytest
import torch

from hwqnn.errors import ConfigError
from hwqnn.searching.config import SearchConfig
from hwqnn.searching.constraints import AugmentedLagrangian


def test_multiplier_grows_while_violated_and_decays_once_met():
    al = AugmentedLagrangian({"size_bytes": 100.0}, rho=1.0, dual_lr=0.5)
    violated = {"size_bytes": torch.tensor(150.0)}
    for _ in range(4):
        al.dual_step(violated)
    assert al.multipliers["size_bytes"] == 1.0  # 4 steps of 0.5 * (150/100 - 1)
    met = {"size_bytes": torch.tensor(50.0)}
    for _ in range(10):
        al.dual_step(met)
    assert al.multipliers["size_bytes"] == 0.0


def test_penalty_gradient_pushes_cost_down_only_when_needed():
    al = AugmentedLagrangian({"latency_s": 1.0}, rho=2.0)
    cost = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    al.penalty({"latency_s": cost}).backward()
    assert cost.grad > 0
    cost = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    al.penalty({"latency_s": cost}).backward()
    assert cost.grad == 0  # satisfied and no multiplier: no pressure


def test_units_do_not_matter():
    """The same relative violation gives the same penalty whatever the scale of the bound."""
    a = AugmentedLagrangian({"latency_s": 1e-3})
    b = AugmentedLagrangian({"size_bytes": 1e6})
    pa = a.penalty({"latency_s": torch.tensor(1.3e-3, dtype=torch.float64)})
    pb = b.penalty({"size_bytes": torch.tensor(1.3e6, dtype=torch.float64)})
    assert torch.isclose(pa, pb)


def test_state_dict_round_trip():
    al = AugmentedLagrangian({"size_bytes": 10.0})
    al.dual_step({"size_bytes": torch.tensor(20.0)})
    other = AugmentedLagrangian({"size_bytes": 10.0})
    other.load_state_dict(al.state_dict())
    assert other.multipliers == al.multipliers


def test_fill_pushes_an_under_spent_budget_up_and_leaves_a_full_one_alone():
    al = AugmentedLagrangian({"latency_s": 1.0}, rho=1.0, dual_lr=0.5, fill=0.97)
    cost = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    al.penalty({"latency_s": cost}).backward()
    assert cost.grad < 0  # gradient descent raises the cost toward the budget
    for _ in range(4):
        al.dual_step({"latency_s": torch.tensor(0.5)})
    assert al.fill_multiplier == 0.94  # 4 steps of 0.5 * (0.97 - 0.5)
    assert al.multipliers["latency_s"] == 0.0
    al.dual_step({"latency_s": torch.tensor(0.985)})  # 97-100% of the budget: the fill multiplier decays
    assert 0.0 < al.fill_multiplier < 0.94 and al.multipliers["latency_s"] == 0.0
    for _ in range(200):
        al.dual_step({"latency_s": torch.tensor(0.985)})
    assert al.fill_multiplier == 0.0
    cost = torch.tensor(0.985, dtype=torch.float64, requires_grad=True)
    al.penalty({"latency_s": cost}).backward()
    assert cost.grad == 0


def test_fill_holds_only_the_tightest_budget_full():
    """Latency binds (98% used) while size is at half: the fill term is satisfied and puts no pressure on
    size, which the latency bound would forbid spending."""
    al = AugmentedLagrangian({"latency_s": 1.0, "size_bytes": 100.0}, fill=0.97)
    size = torch.tensor(50.0, dtype=torch.float64, requires_grad=True)
    latency = torch.tensor(0.98, dtype=torch.float64, requires_grad=True)
    al.penalty({"latency_s": latency, "size_bytes": size}).backward()
    assert size.grad == 0 and latency.grad == 0
    assert al.shortfall({"latency_s": latency, "size_bytes": size}) < 0


def test_fill_state_round_trips_and_old_checkpoints_load():
    al = AugmentedLagrangian({"size_bytes": 10.0}, fill=0.9)
    al.dual_step({"size_bytes": torch.tensor(2.0)})
    other = AugmentedLagrangian({"size_bytes": 10.0}, fill=0.9)
    other.load_state_dict(al.state_dict())
    assert other.fill_multiplier == al.fill_multiplier > 0
    other.load_state_dict({"multipliers": {"size_bytes": 0.0}, "rho": 1.0, "dual_lr": 1.0})  # before ``fill``
    assert other.fill_multiplier == 0.0


@pytest.mark.parametrize("fill", [0.0, 1.2, -0.5])
def test_a_budget_fill_outside_zero_one_is_refused(fill):
    with pytest.raises(ConfigError, match=r"budget_fill must be in \(0, 1\]"):
        SearchConfig(budget_fill=fill)
    assert SearchConfig(budget_fill=None).budget_fill is None and SearchConfig().budget_fill == 0.97
