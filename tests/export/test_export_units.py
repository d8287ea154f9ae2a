"""The pieces under the exporter: threshold lookups, integer grids, containers, control-flow notes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx
import torch
from export_helpers import compare, export_zoo, inputs_for, quantized_zoo_model, scheme_policy
from onnx import TensorProto, helper

from hwqnn.export import export_onnx
from hwqnn.export.containers import INT4, INT8, UINT4, UINT8, choose_container
from hwqnn.export.grids import infer_constant_grid, reconstructs
from hwqnn.export.lut import apply_steps, find_steps
from hwqnn.export.onnx_graph import _activation_lookup
from hwqnn.export.onnx_qdq import run_onnx
from hwqnn.quantizers import AffineGrid, Scheme


def _edge_values(thresholds: np.ndarray) -> torch.Tensor:
    """Each threshold and its float32 neighbours, plus random values: where a lookup can be off by one."""
    t = thresholds.astype(np.float32)
    edges = np.concatenate([t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)])
    noise = np.random.default_rng(0).normal(0, 3, 4000).astype(np.float32)
    return torch.from_numpy(np.concatenate([edges, noise, [0.0, -0.0, 1e30, -1e30]]).astype(np.float32))


def test_find_steps_is_exact_on_a_rounding_quantizer():
    def quantize(x):  # round half to even, clipped: ties are where a lookup would most easily slip
        return torch.clamp(torch.round(x / 0.25), -7, 7) * 0.25

    thresholds, levels = find_steps(quantize)
    assert len(levels) == 15
    x = _edge_values(thresholds)
    assert torch.equal(apply_steps(x, thresholds, levels), quantize(x))


def test_find_steps_handles_non_monotone_steps():
    def bump(x):  # residual binarization with a larger second scale gives steps like these
        return torch.where(x < 0, 0.5, -0.5) * (x.abs() < 1) + torch.sign(x) * (x.abs() >= 1)

    thresholds, levels = find_steps(bump, probes=torch.linspace(-3, 3, 101))
    x = _edge_values(thresholds)
    assert torch.equal(apply_steps(x, thresholds, levels), bump(x))


def test_find_steps_gives_up_on_too_many_levels():
    assert find_steps(lambda x: x.clone()) is None


def test_the_onnx_binary_search_matches_the_lookup():
    thresholds, levels = find_steps(lambda x: torch.clamp(torch.round(x * 3), -20, 20) / 3)  # 41 levels
    plan = SimpleNamespace(lut=(thresholds, levels))
    nodes, inits = _activation_lookup("act", plan, "x", "y")
    graph = helper.make_graph(nodes, "lookup", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    x = _edge_values(thresholds)
    got = run_onnx(model.SerializeToString(), x.numpy(), input_name="x")
    np.testing.assert_array_equal(got, apply_steps(x, thresholds, levels).numpy())


def test_inferred_grids_for_ternary_and_power_of_two_weights():
    scale = torch.tensor([0.3, 0.05, 1.7]).reshape(3, 1)
    ternary = torch.tensor([[-1.0, 0.0, 1.0, 1.0], [0.0, 1.0, -1.0, 0.0], [1.0, 1.0, -1.0, 0.0]]) * scale
    grid = infer_constant_grid(ternary, axis=0)
    assert grid is not None and grid.symmetric and (grid.qmin, grid.qmax) == (-1, 1)
    np.testing.assert_allclose(grid.scale, [0.3, 0.05, 1.7], rtol=1e-6)
    pot = torch.tensor([[1.0, -0.5, 0.125, 0.0, -0.015625]]) * 0.37  # s * 2^-k down to 2^-6
    grid = infer_constant_grid(pot, axis=0)
    assert grid is not None and grid.qmax == 64 and reconstructs(grid, pot)
    assert infer_constant_grid(torch.tensor([[0.3, 0.7001, -0.1234]]), axis=0) is None


def test_container_choice():
    zero = np.zeros(())
    assert choose_container(-7, 7, zero, int4=False, opset=17) is INT8
    assert choose_container(-7, 7, zero, int4=True, opset=21) is INT4
    assert choose_container(0, 15, zero, int4=True, opset=21) is UINT4
    assert choose_container(0, 255, zero, int4=True, opset=21) is UINT8
    assert choose_container(-7, 7, zero, int4=True, opset=17) is INT8  # INT4 needs opset 21
    assert choose_container(0, 2**16 - 1, zero, int4=False, opset=17) is None


def test_data_dependent_control_flow_is_reported(tmp_path):
    _, branchy, _ = export_zoo("branchy_cnn", scheme_policy("uniform"), tmp_path)
    assert any("data-dependent control flow" in w for w in branchy.warnings)
    _, tiny, _ = export_zoo("tiny_cnn", scheme_policy("pot"), tmp_path)
    assert tiny.warnings == []


def test_export_leaves_the_model_as_it_was(tmp_path):
    model, _, test = export_zoo("tiny_cnn", scheme_policy("residual"), tmp_path)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = model(test)
    export_onnx(model, test[:8], tmp_path / "again.onnx")
    with torch.no_grad():
        assert torch.equal(model(test), before)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]) or (value.isnan().all() and state[key].isnan().all()), key
    assert not model.training


class _BatchMaxUniform(Scheme):
    """A quantizer whose scale is the batch's max even in eval mode: no static grid, not elementwise."""

    name = "batch_max_uniform"

    def quantize(self, x, bits):
        step = x.detach().abs().max().clamp_min(1e-12) / (2 ** (bits - 1) - 1)
        return torch.round(x / step).clamp(-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1) * step

    def affine_grid(self, x, bits):
        top = 2 ** (bits - 1) - 1
        return AffineGrid(x.abs().max().clamp_min(1e-12) / top, torch.zeros(()), -top, top)


def test_a_quantizer_without_static_grid_is_traced_as_float_ops(tmp_path):
    """The last resort: no Q/DQ, no lookup, so the scheme's own ops are exported (and still match)."""
    calibration, test, _ = inputs_for("tiny_cnn")
    model = quantized_zoo_model("tiny_cnn", scheme_policy("uniform"), calibration)
    slot = model.layer("features.1.0").act_slot
    slot.candidates[_BatchMaxUniform.name] = _BatchMaxUniform(role="activation")  # not registered globally
    slot.scheme_names.append(_BatchMaxUniform.name)
    slot.set_fixed(_BatchMaxUniform.name, 4)
    report = export_onnx(model, test, tmp_path / "traced.onnx")
    traced = next(t for t in report.tensors if t.layer == "features.1.0" and t.role == "activation")
    assert traced.representation == "fake-quant-float"
    assert "depends on the input" in traced.reason and "not elementwise" in traced.reason
    assert not traced.tensorrt_native
    assert compare(model, report.path, test).top1 == 1.0
