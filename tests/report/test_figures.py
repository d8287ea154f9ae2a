"""Report figure info functions on hand-made tables (the renderers only draw what these return)."""

import itertools

import numpy as np
import pandas as pd
import pytest

from hwqnn.pareto import figure_bytes, mark_fronts, points_frame
from hwqnn.report import (
    TargetRuns,
    get_bits_heatmap_info,
    get_layer_bars_info,
    get_overlay_info,
    render_bits_heatmaps,
    render_layer_bars,
    render_overlay,
)

W8A8 = {"latency_s": 2e-3, "energy_j": 1e-3, "size_bytes": 4096.0, "peak_memory_bytes": 8192.0}


def group(target, scale, rows):
    frame = points_frame([{"name": n, "kind": k, "status": "ok", "target": target, "accuracy": a,
                           **{c: f * v * scale for c, v in W8A8.items()},
                           **{f"w8a8_{c}": v * scale for c, v in W8A8.items()}} for n, k, a, f in rows])
    return TargetRuns(target, mark_fronts(frame))


@pytest.fixture
def groups():
    return [group("fast", 1.0, [("s1", "search", 80.0, 0.5), ("s2", "search", 70.0, 0.6), ("w8a8", "uniform", 82.0, 1.0)]),
            group("slow", 100.0, [("s1", "search", 75.0, 0.4), ("w2a2", "uniform", 40.0, 0.3)])]


def test_overlay_info_per_cost_and_target(groups):
    panels = get_overlay_info(groups)
    latency = panels[0]
    assert latency.cost_key == "latency_s" and latency.log_x  # the targets differ by 100x
    assert latency.x_label == "latency (ms)"
    fast, slow = latency.series
    assert [n for _, _, n in fast.front] == ["s1", "w8a8"] and [n for _, _, n in fast.others] == ["s2"]
    assert [x for x, _, _ in fast.front] == pytest.approx([1.0, 2.0])  # 0.5 x 2 ms, 1.0 x 2 ms
    assert [n for _, _, n in slow.baselines] == ["w2a2"]
    size = panels[2]
    assert not size.log_x and size.x_label == "model size (KiB)"  # sizes are not drawn on a log axis
    assert figure_bytes(render_overlay(panels), "png")[:4] == b"\x89PNG"


def test_bits_heatmap_info_marks_float_layers_as_nan():
    policies = pd.DataFrame([
        {"target": "t", "point": "p1", "layer": "conv", "w_scheme": "uniform", "w_bits": 4, "a_scheme": "pot", "a_bits": 8},
        {"target": "t", "point": "p1", "layer": "fc", "w_scheme": "float", "w_bits": 32, "a_scheme": "float", "a_bits": 32},
        {"target": "t", "point": "p2", "layer": "conv", "w_scheme": "binary", "w_bits": 1, "a_scheme": "pot", "a_bits": 2},
        {"target": "t", "point": "p2", "layer": "fc", "w_scheme": "uniform", "w_bits": 8, "a_scheme": "uniform", "a_bits": 8},
    ])
    (heatmap,) = get_bits_heatmap_info(policies)
    assert heatmap.layers == ["conv", "fc"] and heatmap.points == ["p1", "p2"]
    np.testing.assert_array_equal(heatmap.w_bits, [[4, 1], [np.nan, 8]])
    np.testing.assert_array_equal(heatmap.a_bits, [[8, 2], [np.nan, 8]])
    assert heatmap.w_schemes[0] == ["uniform", "binary"]
    assert figure_bytes(render_bits_heatmaps([heatmap]), "png")[:4] == b"\x89PNG"


def test_layer_bars_split_roofline_and_overhead():
    costs = pd.DataFrame({"target": "t", "point": "p", "name": ["a", "b"], "latency_s": [5e-6, 9e-6],
                          "roofline_s": [3e-6, 8e-6], "overhead_s": [2e-6, 1e-6], "bound": ["compute", "memory"]})
    (bars,) = get_layer_bars_info(costs)
    assert bars.unit == "µs"
    assert bars.roofline.tolist() == pytest.approx([3.0, 8.0]) and bars.overhead.tolist() == pytest.approx([2.0, 1.0])
    assert bars.compute_bound.tolist() == [True, False]
    assert figure_bytes(render_layer_bars([bars]), "png")[:4] == b"\x89PNG"


def swept_group(target, scale, fixed=""):
    """A size sweep with two close uniform baselines (w8a8 and w4a8: same costs, 0.1 % apart)."""
    extra = f",{fixed}" if fixed else ""
    rows = [("01-size-0.8x", "search", 80.0, 0.8), ("02-size-0.5x", "search", 78.0, 0.5),
            ("w8a8", "uniform", 82.0, 1.0), ("w4a8", "uniform", 81.9, 1.0)]
    frame = points_frame([{"name": n, "kind": k, "status": "ok", "target": target, "accuracy": a,
                           "budget": f"size={f}x{extra}" if k == "search" else "",
                           **{c: f * v * scale for c, v in W8A8.items()},
                           **{f"w8a8_{c}": v * scale for c, v in W8A8.items()}} for n, k, a, f in rows])
    return TargetRuns(target, mark_fronts(frame), metas=[{"sweep": "size=0.5x:0.8x:2"}])


def test_overlay_info_has_each_targets_budgets_and_recommended_point():
    fast, slow = swept_group("fast", 1.0, "latency=0.7x"), swept_group("slow", 100.0)
    latency, _, size, _ = get_overlay_info([fast, slow])
    assert latency.series[0].budgets == pytest.approx((1.4,))  # 0.7 x 2 ms, in ms
    assert latency.series[1].budgets == ()
    assert size.series[0].budgets == pytest.approx((2.0, 3.2))  # 0.5x and 0.8x of 4 KiB, in KiB
    assert latency.series[0].recommended[2] == "02-size-0.5x"  # the only point within latency=0.7x
    # No common budget: the knee of the size front. Scaled (error, size): 02 (1, 0), 01 (0.5, 0.6), w8a8 (0, 1).
    assert size.series[1].recommended[2] == "01-size-0.8x"


def test_overlay_labels_do_not_overprint_and_the_legend_explains_the_markers():
    fig = render_overlay(get_overlay_info([swept_group("fast", 1.0), swept_group("slow", 1.5)]))
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts]
        assert len(boxes) == 4  # w8a8 and w4a8 of both targets
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            assert not box_a.overlaps(box_b), (a, b)
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    for words in ("fast: Pareto front", "slow: Pareto front", "searched point on the front", "dominated",
                  "uniform baseline", "budget", "recommended"):
        assert words in legend, words
    assert figure_bytes(fig, "png")[:4] == b"\x89PNG"
