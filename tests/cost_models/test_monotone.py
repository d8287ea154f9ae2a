"""Size and energy never increase when any bitwidth decreases (property test over random per-layer bits)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cost_models import CostModel, list_profiles
from cost_models.execution import KIND_INDEX
from cost_models.precision import COMPUTE_KINDS

N_LAYERS = 4
_MODELS: dict[str, CostModel] = {}


def _model(target: str, workload) -> CostModel:
    if target not in _MODELS:
        _MODELS[target] = CostModel(workload, target, batch_size=2)
    return _MODELS[target]


def _bits_for(kind: str):
    if kind == "float":
        return st.sampled_from([16.0, 32.0])
    return st.floats(min_value=1.0, max_value=32.0, allow_nan=False)


@st.composite
def policies(draw):
    kinds = [(draw(st.sampled_from(COMPUTE_KINDS)), draw(st.sampled_from(COMPUTE_KINDS))) for _ in range(N_LAYERS)]
    bits = [(draw(_bits_for(w)), draw(_bits_for(a))) for w, a in kinds]
    layer = draw(st.integers(0, N_LAYERS - 1))
    side = draw(st.integers(0, 1))
    kind = kinds[layer][side]
    old = bits[layer][side]
    if kind == "float":
        new = 16.0
    else:
        new = draw(st.floats(min_value=1.0, max_value=old, allow_nan=False))
    return kinds, bits, layer, side, new


@settings(max_examples=150, deadline=None)
@given(target=st.sampled_from(list_profiles()), case=policies())
def test_size_and_energy_never_increase_when_bits_decrease(small_workload, target, case):
    kinds, bits, layer, side, new = case
    cm = _model(target, small_workload)
    w_kind = torch.tensor([KIND_INDEX[w] for w, _ in kinds])
    a_kind = torch.tensor([KIND_INDEX[a] for _, a in kinds])
    before = torch.tensor(bits, dtype=torch.float64)
    after = before.clone()
    after[layer, side] = new
    old = cm.totals(cm.layer_costs(w_kind, before[:, 0], a_kind, before[:, 1], smooth=False))
    cut = cm.totals(cm.layer_costs(w_kind, after[:, 0], a_kind, after[:, 1], smooth=False))
    # A runtime that converts at integer layers (ONNX Runtime's QuantizeLinear and layout reorders, priced by
    # io_bytes_per_element / layer_input_bytes_per_element) may spend more energy when a layer drops from a
    # float to an integer execution: those bytes are real. Its size still never grows.
    converts = bool(cm.profile.io_bytes_per_element or cm.profile.layer_input_bytes_per_element)
    for key in ("size_bytes",) if converts else ("size_bytes", "energy_j"):
        assert cut[key] <= old[key] * (1 + 1e-12), (key, kinds, bits, layer, side, new)
