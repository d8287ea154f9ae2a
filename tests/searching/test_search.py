"""End-to-end search behaviour: budgets hold, targets matter, infeasible budgets fail clearly, resume."""

import pytest
import torch
import yaml

import cost_models
import hwqnn
from hwqnn.errors import BudgetInfeasibleError, RunDirError
from hwqnn.run_dir import load_run

FAST = dict(pretrain_epochs=0, search_epochs=2, finetune_epochs=1, batch_size=128, seed=0)

CASES = [
    ("jetson-orin-nano", None),  # the defaults there: latency=1.0x (TensorRT stores int8 whatever the bits)
    ("bitfusion", ["latency=0.9x"]),
    ("bitfusion", ["energy=0.6x", "size=0.4x"]),
    ("raspberry-pi-4", ["memory=1.0x", "energy=1.0x"]),  # int8 containers: nothing below w8a8
    ("nvidia-t4", ["energy=0.8x", "size=0.6x"]),  # int4 only where both operands fit: 0.553x at best
    ("coral-edgetpu", None),
]


@pytest.mark.parametrize("target, budgets", CASES)
def test_every_finalized_policy_meets_every_budget(tiny_cnn, digits, target, budgets):
    result = hwqnn.search(tiny_cnn, digits.train, digits.test, target=target, budgets=budgets, **FAST)
    m = result.metrics
    assert m["within_budget"] and all(m["within_budget"].values()), m["within_budget"]
    # Re-estimate independently from the float model and the saved policy.
    example = digits.train[0][0][None]
    policy = hwqnn.Policy.from_dict(yaml.safe_load(result.policy.to_yaml()))
    report = cost_models.estimate(tiny_cnn, example, target, policy=policy)
    for key, budget in m["budgets"].items():  # metrics.json keeps 7 significant digits of the bound
        assert getattr(report, key) <= budget["bound"] * (1 + 1e-6), (key, getattr(report, key), budget)


def test_infeasible_budget_fails_before_training_with_smallest_achievable(tiny_cnn, digits):
    with pytest.raises(BudgetInfeasibleError, match="smallest achievable") as info:
        hwqnn.search(tiny_cnn, digits.train, digits.test, target="bitfusion", budgets=["size=0.01x"], **FAST)
    assert "size budget" in str(info.value)


def test_run_directory_is_complete_and_reloads(tiny_cnn, digits, tmp_path):
    run = tmp_path / "run"
    result = hwqnn.search(tiny_cnn, digits.train, digits.test, target="bitfusion", budgets=["latency=0.9x"],
                          run_dir=run, meta={"model": "tiny_cnn", "num_classes": 10}, **FAST)
    for name in ("policy.yaml", "metrics.json", "model.pt", "history.csv", "summary.png"):
        assert (run / name).is_file(), name
    assert not (run / "checkpoint.pt").exists()
    loaded = load_run(run)
    assert loaded.policy.expand(loaded.model.layer_names).layers == result.policy.layers
    x = torch.stack([digits.test[i][0] for i in range(64)])
    result.model.eval()
    torch.testing.assert_close(loaded.model(x), result.model(x))


def test_resume_after_interrupt_gives_the_same_policy(tiny_cnn, digits, tmp_path):
    import copy

    kwargs = dict(target="bitfusion", budgets=["latency=0.9x", "size=0.5x"], **FAST)
    reference = hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, **kwargs)

    def interrupt(phase, step):
        if phase == "search" and step == 14:  # mid-way through the second search epoch
            raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, run_dir=run, on_step=interrupt,
                     meta={"model": "tiny_cnn"}, **kwargs)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["phase"] == "search" and state["epoch"] == 1
    resumed = hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, run_dir=run, resume=True, **kwargs)
    assert resumed.policy.layers == reference.policy.layers


def test_resume_without_checkpoint_is_a_clear_error(tiny_cnn, digits, tmp_path):
    with pytest.raises(RunDirError, match="cannot resume"):
        hwqnn.search(tiny_cnn, digits.train, digits.test, run_dir=tmp_path, resume=True, **FAST)


def test_uniform_baseline(tiny_cnn, digits):
    result = hwqnn.search(tiny_cnn, digits.train, digits.test, target="bitfusion", method="uniform",
                          uniform_bits=(4, 8), budgets=[], **FAST)
    layers = result.policy.layers.values()
    assert {(lp.w_scheme, lp.w_bits, lp.a_bits) for lp in layers} == {("uniform", 4, 8)}
    assert result.metrics["quantized_accuracy"] > 80.0


def test_uniform_baseline_takes_the_widest_native_bits_on_a_symmetric_int8_runtime(tiny_cnn, digits):
    result = hwqnn.search(tiny_cnn, digits.train, digits.test, target="jetson", method="uniform",
                          uniform_bits=(4, 8), budgets=[], **FAST)
    layers = result.policy.layers.values()
    # TensorRT's int8 is symmetric: an unsigned (post-ReLU) activation holds 7 bits there
    assert {(lp.w_scheme, lp.w_bits, lp.a_bits) for lp in layers} == {("uniform", 4, 7)}
    assert "not native on jetson-orin-nano" in result.policy.meta["deployment_note"]


def test_targets_matter(tiny_cnn, digits):
    """Same model, same budget, two devices: what low bits buy differs, and so do the policies.

    Only latency is budgeted (at the w8a8 level), so nothing forces bits down. On BitFusion fewer bits
    cut latency and energy, and the finalize MILP's device-cost term takes them where accuracy allows;
    on a Jetson GPU every sub-8-bit integer runs as int8 and costs the same, so the weights stay wide.
    """
    import copy

    def weight_bits(result):
        return sum(lp.w_bits for lp in result.policy.layers.values())

    budgets = ["latency=1.0x"]
    on_bitfusion = hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, target="bitfusion",
                                budgets=budgets, **FAST)
    on_jetson = hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, target="jetson-orin-nano",
                             budgets=budgets, **FAST)
    assert on_bitfusion.policy.layers != on_jetson.policy.layers
    assert weight_bits(on_bitfusion) < weight_bits(on_jetson)
    bf, bf_w8a8 = on_bitfusion.metrics["costs"], on_bitfusion.metrics["reference_w8a8"]
    jetson, jetson_w8a8 = on_jetson.metrics["costs"], on_jetson.metrics["reference_w8a8"]
    assert bf["energy_j"] < 0.95 * bf_w8a8["energy_j"]
    assert jetson["latency_s"] == pytest.approx(jetson_w8a8["latency_s"])
    assert jetson["energy_j"] == pytest.approx(jetson_w8a8["energy_j"])
    # On BitFusion low bits buy latency: a 10% latency cut is reachable ...
    fast = hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, target="bitfusion",
                        budgets=["latency=0.9x"], **FAST)
    assert fast.metrics["costs"]["latency_s"] <= 0.9 * fast.metrics["reference_w8a8"]["latency_s"] * (1 + 1e-9)
    # ... on a Jetson GPU they buy only memory: the same cut is infeasible, and the error says the
    # smallest achievable latency is the w8a8 one.
    with pytest.raises(BudgetInfeasibleError, match="smallest achievable") as info:
        hwqnn.search(copy.deepcopy(tiny_cnn), digits.train, digits.test, target="jetson-orin-nano",
                     budgets=["latency=0.9x"], **FAST)
    assert f"{jetson_w8a8['latency_s'] * 1e3:.4g} ms" in str(info.value)


def test_default_budgets_are_feasible_on_every_profile(tiny_cnn, digits):
    from hwqnn.deployment import restrict_to_target
    from hwqnn.errors import DeploymentError
    from hwqnn.searching import Problem
    from hwqnn.searching.space import SearchSpace

    for target in cost_models.list_profiles():
        qmodel = hwqnn.convert(copy_of(tiny_cnn), digits.train.tensors[0][:2])
        problem = Problem.build(qmodel.workload, target)
        try:
            restrict_to_target(qmodel, problem.profile)
        except DeploymentError:  # TensorRT on Maxwell/Pascal Jetsons: FP16/FP32 only, nothing to search
            assert not problem.profile.deployment.formats, target
            continue
        problem.check_feasible(SearchSpace(qmodel, problem.cost_model))  # raises if infeasible


def copy_of(model):
    import copy

    return copy.deepcopy(model)
