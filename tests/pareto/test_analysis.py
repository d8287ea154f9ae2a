"""Fronts, hypervolume and baseline domination on a hand-made points table; plot info; rendering."""

import numpy as np
import pytest

from hwqnn.pareto import (
    COST_KEYS,
    REFERENCE_COST,
    baseline_dominations,
    failed_row,
    get_pareto_front_info,
    mark_fronts,
    points_frame,
    render_pareto_front,
    save_figure,
    summarise_front,
)

W8A8 = {"latency_s": 1e-3, "energy_j": 1e-4, "size_bytes": 1000.0, "peak_memory_bytes": 2000.0}


def row(name, kind, accuracy, fraction, **costs):
    """A point whose costs are ``fraction`` x w8a8 unless given."""
    values = {k: costs.get(k, fraction * v) for k, v in W8A8.items()}
    return {"name": name, "kind": kind, "status": "ok", "target": "dev", "accuracy": accuracy, **values,
            **{f"w8a8_{k}": v for k, v in W8A8.items()}}


@pytest.fixture
def frame():
    return points_frame([
        row("s1", "search", 90.0, 0.8),
        row("s2", "search", 85.0, 0.5),
        row("s3", "search", 70.0, 0.6),  # dominated by s2 (cheaper and more accurate)
        row("w8a8", "uniform", 91.0, 1.0),
        row("w4a4", "uniform", 86.0, 0.5),  # dominates s2: same costs, more accurate
        failed_row(name="s4", kind="search", status="infeasible", message="too tight", target="dev"),
    ])


def test_mark_fronts_flags_non_dominated_points_and_skips_failed_ones(frame):
    marked = mark_fronts(frame)
    assert dict(zip(marked["name"], marked["on_front"])) == {
        "s1": True, "s2": False, "s3": False, "w8a8": True, "w4a4": True, "s4": False}
    assert list(marked["on_front_latency"]) == list(marked["on_front"])


def test_front_hypervolume_by_hand(frame):
    summary = summarise_front(frame, ("latency_s",))
    assert set(summary.front) == {"s1", "w8a8", "w4a4"}
    # (error, latency/w8a8): w4a4 (0.14, 0.5), s1 (0.10, 0.8), w8a8 (0.09, 1.0); reference (1, 1.2).
    expected = (1.2 - 0.5) * (1 - 0.14) + (1.2 - 0.8) * (0.14 - 0.10) + (1.2 - 1.0) * (0.10 - 0.09)
    assert summary.hypervolume == pytest.approx(expected)
    assert summary.reference == (1.0, REFERENCE_COST)
    assert "reference point (error=1, latency/w8a8=1.2)" in summary.describe()


def test_baseline_dominations_are_found(frame):
    found = baseline_dominations(frame)
    assert [(f["searched"], f["baseline"]) for f in found] == [("s2", "w4a4"), ("s3", "w4a4")]


def test_plot_info_separates_front_dominated_and_baselines(frame):
    info = get_pareto_front_info(frame, title="t")
    assert [p.cost_key for p in info.panels] == list(COST_KEYS)
    latency = info.panels[0]
    assert latency.x_label == "latency (ms)" and latency.y_label == "top-1 accuracy (%)"
    assert [p.name for p in latency.front] == ["w4a4", "s1", "w8a8"]  # sorted by cost
    assert [p.x for p in latency.front] == pytest.approx([0.5, 0.8, 1.0])
    assert {p.name for p in latency.dominated} == {"s2", "s3"}
    assert {p.name for p in latency.baselines} == {"w8a8", "w4a4"}
    relative = get_pareto_front_info(frame, relative=True).panels[2]
    assert relative.x_label == "model size (x w8a8)"
    assert [p.x for p in relative.front] == pytest.approx([0.5, 0.8, 1.0])


def test_render_writes_png_and_svg(frame, tmp_path):
    paths = save_figure(render_pareto_front(get_pareto_front_info(frame)), tmp_path / "pareto")
    assert [p.name for p in paths] == ["pareto.png", "pareto.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:500]


def test_empty_table_has_empty_front():
    empty = points_frame([failed_row(name="a", kind="search", status="infeasible", message="", target="d")])
    summary = summarise_front(empty)
    assert summary.front == () and summary.hypervolume == 0.0
    assert np.isnan(empty["accuracy"]).all()
