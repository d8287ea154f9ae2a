"""One packing rule: the cost model's size of a policy equals the bytes its export stores on the target.

For every zoo model, on jetson-orin-nano, nvidia-t4, bitfusion and coral-edgetpu, under three policies
(uniform w8a8, uniform w4a4, and a mix of every scheme the target runs natively, layer by layer), the
cost model's ``size_bytes`` (from the workload: element counts, channels, float parameters) is within
1% of the export's stored bytes on that target (from the exported tensors and the model's state).
"""

from __future__ import annotations

import itertools

import pytest
from export_helpers import inputs_for, quantized_zoo_model

import cost_models
from hwqnn.deployment import deployable_bits
from hwqnn.export import export_onnx
from hwqnn.models import list_models
from hwqnn.policy import LayerPolicy, Policy
from hwqnn.quantizers import list_schemes

TARGETS = ("jetson-orin-nano", "nvidia-t4", "bitfusion", "coral-edgetpu")
TOLERANCE = 0.01
FAST_MODELS = ("tiny_cnn", "vit_mha_tiny", "gru_tiny")


def mixed_policy(layer_names, profile) -> Policy:
    """Layer by layer, cycle through the (scheme, bits) pairs the target runs natively, on both sides."""
    spec = profile.deployment
    weights = [(s, b) for s in list_schemes() for b in deployable_bits(s, "weight", (2, 8), spec)[::3]]
    acts = [(s, b) for s in list_schemes() for b in deployable_bits(s, "activation", (2, 8), spec)[::2]]
    pairs = zip(itertools.cycle(weights), itertools.cycle(reversed(acts)))
    return Policy({name: LayerPolicy(w[0], w[1], a[0], a[1]) for name, (w, a) in zip(layer_names, pairs)})


def check_model(model_name: str, tmp_path) -> list[str]:
    calibration, _, _ = inputs_for(model_name, size=8)
    failures = []
    profiles = [cost_models.load_profile(t) for t in TARGETS]
    layer_names = quantized_zoo_model(model_name, Policy.uniform("w8a8"), calibration).layer_names
    cases = [(p, Policy.uniform(u)) for p in profiles for u in ("w8a8", "w4a4")]
    cases += [(p, mixed_policy(layer_names, p)) for p in profiles]
    for i, (profile, policy) in enumerate(cases):
        model = quantized_zoo_model(model_name, policy, calibration)
        report = export_onnx(model, calibration[:4], tmp_path / f"m{i}.onnx", verify=False, target=profile)
        cost = cost_models.CostModel(model.workload, profile).evaluate(
            cost_models.resolve_precisions(model.current_policy(), model.layer_names, profile))
        stored = report.sizes.packed_bytes
        if abs(cost.size_bytes - stored) > TOLERANCE * stored:
            failures.append(f"{model_name} on {profile.name} under {policy.meta.get('uniform', 'mixed')}: cost "
                            f"{cost.size_bytes:.0f} B vs export {stored} B\n{report.summary()}")
    return failures


@pytest.mark.parametrize("model_name", FAST_MODELS)
def test_cost_size_equals_exported_size(model_name, tmp_path):
    assert not (failures := check_model(model_name, tmp_path)), "\n\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("model_name", [m for m in list_models() if m not in FAST_MODELS])
def test_cost_size_equals_exported_size_whole_zoo(model_name, tmp_path):
    assert not (failures := check_model(model_name, tmp_path)), "\n\n".join(failures)
