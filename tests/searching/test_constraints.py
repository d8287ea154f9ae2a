import torch

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
