"""A new search method is one class: registered here, in the test module, and run end to end by the runner,
with checkpoints and resume, exactly like the built-in strategies."""

from __future__ import annotations

import copy

import pytest
import torch

import hwqnn
from hwqnn.run_dir import load_run
from hwqnn.searching import Strategy, StrategyError, list_strategies, register_strategy
from hwqnn.searching.finalize import build_options, option_costs, smallest_achievable, solve, to_policy
from hwqnn.searching.train import train_epoch

FAST = {"pretrain_epochs": 1, "search_epochs": 3, "finetune_epochs": 2, "batch_size": 32}
META = {"model": "tiny_cnn", "num_classes": 10, "data": "digits"}


@register_strategy
class SmallestSizeStrategy(Strategy):
    """A toy: a "search" that only trains the weights in float, then every layer at the size-optimal option."""

    name = "test-smallest-size"
    searches = True

    def search(self, run) -> None:
        run.qmodel.set_float()
        opt, sched = run.make_weight_optimizer(list(run.qmodel.parameters()), run.config.lr, run.config.search_epochs)
        run.restore([opt], [sched])
        run.checkpoint([opt], [sched])
        while run.epoch < run.config.search_epochs:
            stats = train_epoch(run.qmodel, run.train_loader("search"), [opt], run.device,
                                after_step=run.step_hook("search"))
            sched.step()
            run.end_epoch("search", stats, [opt], [sched])

    def finalize(self, run):
        layers = build_options(run.space, {}, sensitivity_weight=0.0, prior_weight=0.0, bits_weight=0.0)
        tables = option_costs(run.problem.cost_model, run.space.ops, layers)
        choice, _ = solve(layers, tables, run.problem.bounds, objective_only="size_bytes")
        policy = to_policy(layers, choice)
        policy.meta["smallest_size"] = smallest_achievable(layers, tables, ["size_bytes"])["size_bytes"]
        return policy


def _run(model, data, run_dir, **kwargs):
    train, val = data
    return hwqnn.search(copy.deepcopy(model), train, val, target="bitfusion", method="test-smallest-size",
                        budgets=[], run_dir=run_dir, meta=META, **{**FAST, **kwargs})


def test_a_registered_strategy_is_listed():
    assert {"search", "uniform", "test-smallest-size"} <= set(list_strategies())


def test_an_unknown_method_is_one_clear_error(small_digits, float_tiny_cnn):
    with pytest.raises(StrategyError, match="unknown search method 'nope'.*test-smallest-size"):
        hwqnn.search(float_tiny_cnn, *small_digits, method="nope")


def test_a_plugged_in_strategy_runs_end_to_end(small_digits, float_tiny_cnn, tmp_path):
    result = _run(float_tiny_cnn, small_digits, tmp_path / "run")
    assert result.metrics["method"] == "test-smallest-size"
    assert [row["phase"] for row in result.history] == ["pretrain"] + ["search"] * 3 + ["finetune"] * 2
    # the runner prices exactly what the strategy chose: the size optimum, 2-bit weights (the default
    # --bits-range 2:8 bounds effective bits, so binary is out): about a third of w8a8 with the float tensors
    assert result.metrics["costs"]["size_bytes"] == pytest.approx(result.policy.meta["smallest_size"], rel=1e-6)
    assert result.metrics["costs"]["size_bytes"] < 0.35 * result.metrics["reference_w8a8"]["size_bytes"]
    assert load_run(tmp_path / "run").policy.to_dict() == result.policy.to_dict()


@pytest.mark.parametrize("stop_in", ["search", "finetune"])
def test_a_plugged_in_strategy_resumes_to_the_same_model(small_digits, float_tiny_cnn, tmp_path, stop_in):
    whole = _run(float_tiny_cnn, small_digits, tmp_path / "whole")

    def interrupt(phase, step):
        if phase == stop_in and step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(float_tiny_cnn, small_digits, tmp_path / "cut", on_step=interrupt)
    resumed = _run(float_tiny_cnn, small_digits, tmp_path / "cut", resume=True)
    assert resumed.policy.to_dict() == whole.policy.to_dict()
    again = resumed.model.state_dict()
    for key, value in whole.model.state_dict().items():
        assert torch.equal(again[key].nan_to_num(), value.nan_to_num()), key  # buffers never set hold NaN
    assert resumed.metrics["quantized_accuracy"] == whole.metrics["quantized_accuracy"]
