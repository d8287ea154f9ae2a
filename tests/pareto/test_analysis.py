"""Fronts, hypervolume and baseline domination on a hand-made points table; budgets and the recommended
point; plot info; rendering (labels that do not overprint)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from hwqnn.pareto._analysis import budget_bounds, common_budgets, knee_point, recommend_point, swept_key
from hwqnn.pareto._plot import place_labels

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


# --- budgets, the recommended point, readable plots ------------------------------------------------------
def sweep_frame(fixed: str = ""):
    """A size sweep (0.8x, 0.5x, 0.3x, with an optional fixed budget) plus three uniform baselines."""
    extra = f",{fixed}" if fixed else ""
    return points_frame([
        {**row("01-size-0.8x", "search", 90.0, 0.8), "budget": f"size=0.8x{extra}"},
        {**row("02-size-0.5x", "search", 88.0, 0.5), "budget": f"size=0.5x{extra}"},
        {**row("03-size-0.3x", "search", 70.0, 0.3), "budget": f"size=0.3x{extra}"},
        row("w8a8", "uniform", 91.0, 1.0),
        row("w4a8", "uniform", 90.9, 1.0, latency_s=1e-3),
        row("w2a2", "uniform", 40.0, 0.25),
        {**failed_row(name="04-size-0.1x", kind="search", status="infeasible", message="", target="dev"),
         "budget": f"size=0.1x{extra}"},
    ])


def test_budget_bounds_resolve_every_budget_of_the_table_against_w8a8():
    bounds = budget_bounds(sweep_frame("latency=0.9x"))
    assert bounds["size_bytes"] == pytest.approx([100.0, 300.0, 500.0, 800.0])  # the infeasible 0.1x included
    assert bounds["latency_s"] == pytest.approx([0.9e-3])
    assert swept_key(sweep_frame("latency=0.9x")) == "size_bytes"


def test_common_budgets_are_those_every_searched_point_was_held_to():
    assert [str(b) for b in common_budgets(sweep_frame("latency=0.9x"))] == ["latency=0.9x"]
    assert common_budgets(sweep_frame()) == []


def test_recommended_point_is_the_most_accurate_within_the_fixed_budgets():
    frame = sweep_frame("latency=0.6x")
    choice = recommend_point(frame, "size_bytes")
    assert (choice.name, choice.rule) == ("02-size-0.5x", "budgets")  # 01 (0.8x) is over the latency budget
    assert "latency=0.6x" in choice.describe()


def test_recommended_point_when_no_point_meets_the_budgets():
    choice = recommend_point(sweep_frame("latency=0.1x"), "size_bytes")
    assert choice.name is None and choice.rule == "none" and "latency=0.1x" in choice.describe()


def test_without_common_budgets_the_knee_is_recommended():
    choice = recommend_point(sweep_frame(), "size_bytes")
    assert (choice.name, choice.rule) == ("02-size-0.5x", "knee")
    assert "knee" in choice.describe()


def test_knee_is_nearest_the_ideal_corner_of_the_scaled_front():
    # (error, cost/w8a8) on the front: a (0.40, 0.25), b (0.12, 0.5), c (0.09, 1.0). Scaled to [0, 1]:
    # a (1, 0), b (0.097, 0.333), c (0, 1): b is nearest (0, 0).
    frame = points_frame([row("a", "search", 60.0, 0.25), row("b", "search", 88.0, 0.5),
                          row("c", "uniform", 91.0, 1.0), row("d", "search", 80.0, 0.9)])
    assert knee_point(frame, "latency_s") == "b"
    assert knee_point(points_frame([row("only", "search", 50.0, 0.5)]), "latency_s") == "only"
    assert knee_point(points_frame([failed_row(name="x", kind="search", status="infeasible", message="",
                                               target="d")])) is None


def test_plot_info_carries_budgets_and_the_recommended_point():
    info = get_pareto_front_info(sweep_frame("latency=0.6x"))
    latency, size = info.panels[0], info.panels[2]
    assert latency.budgets == pytest.approx((0.6,))  # 0.6 x 1 ms, in ms
    assert size.budgets == pytest.approx((100.0, 300.0, 500.0, 800.0))  # bytes
    assert size.recommended.name == "02-size-0.5x" and size.recommended.x == pytest.approx(500.0)
    assert "02-size-0.5x" in info.recommendation
    relative = get_pareto_front_info(sweep_frame("latency=0.6x"), relative=True).panels[2]
    assert relative.budgets == pytest.approx((0.1, 0.3, 0.5, 0.8))


def _label_boxes(fig):
    renderer = fig.canvas.get_renderer()
    return [(ax, text.get_text(), text.get_window_extent(renderer)) for ax in fig.axes for text in ax.texts]


def test_rendered_labels_do_not_overprint_and_the_legend_names_every_kind():
    """w8a8 and w4a8 sit 0.1 % apart at the same cost: their labels must not collide ("w4aw8a8")."""
    fig = render_pareto_front(get_pareto_front_info(sweep_frame("latency=0.6x")))
    boxes = _label_boxes(fig)
    assert {name for _, name, _ in boxes} >= {"w8a8", "w4a8", "w2a2"}
    for (ax1, name1, box1), (ax2, name2, box2) in itertools.combinations(boxes, 2):
        assert ax1 is not ax2 or not box1.overlaps(box2), (name1, name2)
    legend = {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
    assert {"Pareto front", "searched, on front", "uniform baseline, on front", "uniform baseline, dominated",
            "budget", "recommended: 02-size-0.5x"} <= legend


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 60), st.floats(0, 60)), min_size=1, max_size=6))
def test_placed_labels_never_overlap_when_there_is_room(anchors):
    """Labels 20 x 8 points around anchors in a 60-point square, inside a 400-point frame: always room."""
    sizes = [(20.0, 8.0)] * len(anchors)
    offsets = place_labels(anchors, sizes, bounds=(-200.0, -200.0, 260.0, 260.0))
    boxes = [(x + dx, y + dy, x + dx + w, y + dy + h) for (x, y), (dx, dy), (w, h) in zip(anchors, offsets, sizes)]
    for a, b in itertools.combinations(boxes, 2):
        assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (a, b)


def test_a_lone_label_sits_just_right_of_its_marker():
    (offset,) = place_labels([(10.0, 10.0)], [(20.0, 8.0)])
    assert offset[0] > 0 and offset[1] > 0 and offset[0] < 10
