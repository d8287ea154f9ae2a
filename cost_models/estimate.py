"""``estimate()``: one call from a model (or workload), a target and a policy to a CostReport."""

from __future__ import annotations

from torch import nn

from .cost_model import CostModel
from .errors import CostModelError
from .precision import resolve_precisions
from .profile import HardwareProfile
from .report import CostReport
from .workload import Workload, extract_workload


def estimate(model_or_workload: nn.Module | Workload, example_input=None, target: str | HardwareProfile = "jetson",
             policy="w8a8", batch_size: int = 1) -> CostReport:
    """Hard costs of ``policy`` on ``target`` (profile name, alias, YAML path or HardwareProfile).

    ``policy``: a uniform string (``"w8a8"``, ``"w4a8"``, ``"fp16"``), a mapping of layer name to
    LayerPrecision, or an object with ``to_precisions(layer_names)`` such as hwqnn's Policy. An
    ``nn.Module`` is traced once on ``example_input`` (see extract_workload); pass a Workload to skip that.
    """
    if isinstance(model_or_workload, Workload):
        workload = model_or_workload
    elif isinstance(model_or_workload, nn.Module):
        if example_input is None:
            raise CostModelError("estimate() needs example_input to trace an nn.Module (or pass a Workload)")
        workload = extract_workload(model_or_workload, example_input)
    else:
        raise CostModelError(f"estimate() expects an nn.Module or a Workload, got {type(model_or_workload).__name__}")
    cost_model = CostModel(workload, target, batch_size=batch_size)
    op_types = [layer.op_type for layer in workload.layers]
    return cost_model.evaluate(resolve_precisions(policy, workload.names, cost_model.profile, op_types))
