"""Report figure info functions on hand-made tables (the renderers only draw what these return)."""

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
