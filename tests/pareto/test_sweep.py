"""A real warm-started sweep: its points, budgets, warm starts, outputs, resumption and errors."""

import json
import time

import pandas as pd
import pytest
import yaml

from hwqnn.errors import ConfigError, RunDirError
from hwqnn.pareto import DEFAULT_SHORT_FRACTION, load_sweep, run_sweep, short_epochs, summarise_front

SHORT = dict(pretrain_epochs=1, search_epochs=1, finetune_epochs=0, batch_size=128, single_path=True, seed=0)


def test_points_are_ordered_loose_to_tight_with_infeasible_kept(sweep):
    _, result = sweep
    points = result.points
    assert list(points["name"]) == ["01-size-0.7x", "02-size-0.355x", "03-size-0.01x", "w8a8"]
    assert list(points["status"]) == ["ok", "ok", "infeasible", "ok"]
    assert list(points["kind"]) == ["search", "search", "search", "uniform"]
    assert "smallest achievable" in points["message"].iloc[2]
    assert pd.isna(points["accuracy"].iloc[2])


def test_every_searched_point_meets_its_budget(sweep):
    _, result = sweep
    ok = result.points[(result.points["kind"] == "search") & (result.points["status"] == "ok")]
    for row in ok.itertuples():
        assert row.size_bytes <= row.budget_value * row.w8a8_size_bytes * (1 + 1e-9), row.name


def test_later_points_warm_start_with_a_short_search(sweep):
    out, _ = sweep
    first = json.loads((out / "runs/01-size-0.7x/metrics.json").read_text())
    second = json.loads((out / "runs/02-size-0.355x/metrics.json").read_text())
    assert first["warm_started"] is False and second["warm_started"] is True
    assert second["config"]["search_epochs"] == short_epochs(first["config"]["search_epochs"], DEFAULT_SHORT_FRACTION)
    assert first["config"]["pretrain_epochs"] == second["config"]["pretrain_epochs"] == 0  # pretrained once
    assert (out / "runs/01-size-0.7x/search_state.pt").is_file()
    baseline = json.loads((out / "runs/w8a8/metrics.json").read_text())
    assert baseline["method"] == "uniform" and baseline["config"]["finetune_epochs"] == 1  # search + fine-tune


def test_outputs_and_stated_reference_point(sweep):
    out, result = sweep
    for name in ("points.csv", "sweep.json", "pareto.png", "pareto.svg", "float_model.pt", "float_model.json"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["front"]["reference"] == [1.0, 1.2, 1.2, 1.2, 1.2]
    assert meta["swept_front"]["cost_keys"] == ["size_bytes"]
    recomputed = summarise_front(pd.read_csv(out / "points.csv"), ("size_bytes",))
    assert meta["swept_front"]["hypervolume"] == pytest.approx(recomputed.hypervolume)
    assert set(meta["timings"]["points"]) == set(meta["timings"]["points_cpu"]) == set(result.points["name"])
    policy = yaml.safe_load((out / "runs/01-size-0.7x/policy.yaml").read_text())
    assert policy["meta"]["method"] == "search"


def test_load_sweep_round_trips(sweep):
    out, result = sweep
    record = load_sweep(out)
    assert list(record.points["name"]) == list(result.points["name"])
    assert record.points["accuracy"].tolist() == pytest.approx(result.points["accuracy"].tolist(), nan_ok=True)
    assert record.run_dir("w8a8") == out / "runs" / "w8a8"
    assert record.run_dir("03-size-0.01x") is None


def test_rerun_on_the_same_directory_reuses_finished_points(sweep, small_digits, float_tiny_cnn):
    out, result = sweep
    train, test = small_digits
    start = time.perf_counter()
    again = run_sweep(float_tiny_cnn, train, test, target="bitfusion", sweep="size=0.01x:0.7x:3",
                      baselines=["w8a8"], out_dir=out, meta={"model": "tiny_cnn", "num_classes": 10}, **SHORT)
    assert again.points.loc[again.points["status"] == "ok", "accuracy"].tolist() == pytest.approx(
        result.points.loc[result.points["status"] == "ok", "accuracy"].tolist())
    assert again.timings["pretrain_s"] == 0.0  # float weights loaded from the sweep's cache
    assert time.perf_counter() - start < 0.5 * result.timings["total_s"] + 30


def test_errors(tmp_path, small_digits, float_tiny_cnn):
    with pytest.raises(RunDirError, match="missing sweep.json, points.csv"):
        load_sweep(tmp_path)
    with pytest.raises(RunDirError, match="does not exist"):
        load_sweep(tmp_path / "nope")
    train, test = small_digits
    with pytest.raises(ConfigError, match="repeat the swept metric"):
        run_sweep(float_tiny_cnn, train, test, target="bitfusion", sweep="size=0.3x:0.6x:2", fixed_budgets=["size=1x"])


def test_rerun_with_other_settings_refuses_to_mix_points(sweep, small_digits, float_tiny_cnn):
    out, _ = sweep
    train, test = small_digits
    with pytest.raises(RunDirError, match=r"other settings \(search_epochs\)"):
        run_sweep(float_tiny_cnn, train, test, target="bitfusion", sweep="size=0.01x:0.7x:3", baselines=["w8a8"],
                  out_dir=out, meta={"model": "tiny_cnn", "num_classes": 10}, **{**SHORT, "search_epochs": 2})
