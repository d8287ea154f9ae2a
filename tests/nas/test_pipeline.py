"""Sandwich training, NSGA-II under budgets, run directories, lifelong re-use and bad input."""

import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

import hwqnn
from cost_models import load_profile
from hwqnn.cli import main
from hwqnn.nas import NasConfig, Supernet, get_space, nas, uniform_subnet
from hwqnn.nas.api import load_data
from hwqnn.nas.evaluate import AccuracyEvaluator, SubnetCoster, calibration_batches
from hwqnn.nas.search import check_budgets_reachable, nsga2, pareto_front
from hwqnn.nas.train import SupernetTrainer


def _digits(n=96):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_sandwich_step_runs_and_gradients_flow():
    torch.manual_seed(0)
    supernet = Supernet("tiny-digits")
    x, y = _digits()
    trainer = SupernetTrainer(supernet, x, y, NasConfig(batch_size=32, random_subnets=2))
    before = supernet.net.stem.conv.weight.detach().clone()
    loss = trainer.train_step(trainer.permutation())
    assert loss > 0
    stem = supernet.net.stem.conv
    assert stem.weight.grad is not None and stem.weight.grad.abs().sum() > 0
    # the largest subnet ran at 8 bits and the smallest at 2: both steps of the shared weight got gradients
    assert stem.w_quant.step.grad[7].abs().sum() > 0 and stem.w_quant.step.grad[1].abs().sum() > 0
    assert not torch.equal(before, stem.weight)


def test_nsga2_front_respects_budgets():
    space = get_space("tiny-digits")
    coster = SubnetCoster(space, load_profile("bitfusion"), 10)
    largest = coster(uniform_subnet(space, space.largest(), 8, 8))
    bounds = {"size_bytes": 0.4 * largest["size_bytes"], "latency_s": 0.9 * largest["latency_s"]}
    rng = random.Random(0)
    points = nsga2(space, lambda s: rng.random(), coster, bounds, ["latency_s", "size_bytes"], (2, 4, 8), (2, 4, 8),
                   trials=16, population=4, seed=0, seeds=[uniform_subnet(space, space.smallest(), 2, 2)])
    front = pareto_front(points, ["latency_s", "size_bytes"])
    assert front and all(p.costs[k] <= b * (1 + 1e-9) for p in front for k, b in bounds.items())
    assert any(not p.feasible for p in points) or len(points) == 16


def test_run_directory_loads_and_exports(tiny_run, tmp_path):
    loaded = hwqnn.load_run(tiny_run.run_dir)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), tiny_run.model(x), atol=1e-6)
    assert loaded.metrics["method"] == "hqnas" and (tiny_run.run_dir / "front.csv").is_file()
    assert main(["export", str(tiny_run.run_dir), "--out", str(tmp_path / "m.onnx")]) == 0


def test_retarget_searches_without_training(tiny_run, tmp_path):
    result = nas(run_dir=tmp_path / "re", retarget=tiny_run.run_dir, target="bitfusion", trials=6, population=4)
    assert result.metrics["target"] == "bitfusion" and result.metrics["wall_time_s"]["supernet"] == \
        pytest.approx(tiny_run.metrics["wall_time_s"]["supernet"], rel=1e-3)  # the stored training time, not new


def test_retarget_reuses_the_source_evaluations_and_they_are_right(tiny_run, tmp_path):
    source = pd.read_csv(tiny_run.run_dir / "front.csv")
    result = nas(run_dir=tmp_path / "re", retarget=tiny_run.run_dir, target="bitfusion", trials=4, population=2)
    counts = result.metrics["evaluations"]
    assert counts["reusable_from_source"] == int(source["feasible"].sum()) > 0
    # every subnet the source evaluated that runs on the new target is on the new list, at the same accuracy
    known = {(r.architecture, r.bits): r.accuracy for r in source.itertuples() if r.feasible}
    space = get_space("tiny-digits")
    cfg = NasConfig.from_dict(tiny_run.metrics["config"])
    data = load_data(cfg, space)
    calib = calibration_batches(data.fit_x, cfg.recal_batches, cfg.batch_size)
    fresh = AccuracyEvaluator(result.supernet, calib, data.val_x, data.val_y)
    reused = [p for p in result.points if (space.encode(p.subnet.arch), str([list(b) for b in p.subnet.bits])) in known]
    assert reused, "no source evaluation was reused"
    for p in reused[:3]:
        assert fresh(p.subnet) == pytest.approx(p.accuracy)


def test_retarget_on_other_data_evaluates_afresh(tiny_run, tmp_path):
    result = nas(run_dir=tmp_path / "re", retarget=tiny_run.run_dir, target="bitfusion", trials=4, population=2,
                 val_fraction=0.3)
    assert result.metrics["evaluations"]["reusable_from_source"] == 0 and result.metrics["evaluations"]["reused"] == 0


def test_bad_input_one_line(tiny_run, tmp_path, capsys):
    assert main(["nas", "--space", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown search space 'nope'" in err
    assert main(["nas", "--retarget", str(tiny_run.run_dir), "--space", "resnet-cifar", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "space 'tiny-digits', not 'resnet-cifar'" in err
    assert main(["nas", "--retarget", str(tiny_run.run_dir), "--budget", "latency=1ns", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "smallest achievable" in err


def test_unreachable_budget_names_smallest_value():
    space = get_space("tiny-digits")
    coster = SubnetCoster(space, load_profile("jetson"), 10)
    with pytest.raises(hwqnn.BudgetInfeasibleError, match="smallest achievable"):
        check_budgets_reachable(space, coster, {"size_bytes": 1.0}, (8,), (8,), "jetson")


def _train_cmd(out, extra=()):
    return [sys.executable, "-m", "hwqnn", "nas", "--out", str(out), "--epochs", "3", "--trials", "4",
            "--population", "2", "--threads", "1", *extra]


@pytest.mark.slow
def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    ref = tmp_path / "ref"
    subprocess.run(_train_cmd(ref), check=True, env=env, capture_output=True)
    run = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(run), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "metrics.json").exists(), "the run finished before it could be killed"
    subprocess.run([sys.executable, "-m", "hwqnn", "nas", "--resume", str(run), "--threads", "1"], check=True,
                   env=env, capture_output=True)
    a = torch.load(ref / "supernet.pt", weights_only=True)["model"]
    b = torch.load(run / "supernet.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert hwqnn.read_metrics(ref)["quantized_accuracy"] == hwqnn.read_metrics(run)["quantized_accuracy"]
