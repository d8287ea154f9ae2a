"""Per-slot Hessian traces by Hutchinson's estimator, for Hessian-aware bit allocation (HAWQ-V3).

For a tensor ``x`` that the loss depends on (a layer's weight, or the activation entering it),
``Tr(H_x) = E_v[v^T H_x v]`` over Rademacher vectors ``v``; each sample costs one Hessian-vector product,
``H_x v = d(g . v)/dx`` with ``g = dL/dx`` kept in the graph. Each tensor gets its own products: one
product for all tensors at once (an independent ``v`` each) is unbiased too, but the couplings between
neighbouring layers make it so noisy that small traces come out negative.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..data import fixed_sample
from ..errors import HwqnnError
from .finalize import capture_slot_inputs, float_slot_inputs, relative_error

#: Rademacher samples per trace (HAWQ-V3 runs its estimator until the trace changes by < 1e-3). The traces
#: of a network's slots span orders of magnitude; 16 samples rank them reliably.
HUTCHINSON_SAMPLES = 16
#: Training images the traces are taken on: one batch, as HAWQ-V3 does. Every slot costs 16 Hessian-vector
#: products on it: for ResNet-20 (40 slots) on 64 CIFAR images about 80 s on one CPU thread, two float epochs
#: of the 10k subset.
HESSIAN_IMAGES = 64


def hutchinson_traces(loss: torch.Tensor, tensors: list[torch.Tensor], samples: int = 16,
                      generator: torch.Generator | None = None) -> list[float]:
    """Estimated ``Tr(d^2 loss / d x^2)`` of each tensor in ``tensors`` (all in ``loss``'s graph)."""
    if samples < 1:
        raise HwqnnError(f"Hutchinson needs at least one sample, got {samples}")
    grads = torch.autograd.grad(loss, tensors, create_graph=True)
    totals = [0.0] * len(tensors)
    for i, (tensor, grad) in enumerate(zip(tensors, grads)):
        for _ in range(samples):
            v = torch.randint(0, 2, tensor.shape, generator=generator, device="cpu").to(tensor) * 2 - 1
            (product,) = torch.autograd.grad((grad * v).sum(), tensor, retain_graph=True)
            totals[i] += float((v * product).sum())
    return [total / samples for total in totals]


def slot_hessian_traces(qmodel, images: torch.Tensor, labels: torch.Tensor, samples: int = 16,
                        seed: int = 0) -> dict[int, float]:
    """Hessian trace of the float model's cross-entropy w.r.t. the tensor entering each quantizer slot
    (the layer's weight, or its input activation), keyed by ``id(slot)``; slots run in float, BN in eval."""
    with float_slot_inputs(qmodel, detach=False) as inputs, torch.enable_grad():
        # the input needs a gradient too: the first layer's activation slot quantizes it
        loss = F.cross_entropy(qmodel(images.detach().requires_grad_(True)), labels)
        keys = [k for k, t in inputs.items() if t.requires_grad]
        generator = torch.Generator().manual_seed(seed)
        traces = hutchinson_traces(loss, [inputs[k] for k in keys], samples, generator)
    return dict(zip(keys, traces))


def second_order_perturbation(run) -> tuple[Callable, dict[int, float]]:
    """HAWQ-V3's loss increase of each (scheme, bits) option of a slot, ``Tr(H) / n * ||Q(x) - x||^2``, as an
    objective ``(slot, options) -> costs`` for :func:`~hwqnn.searching.finalize.options_by`; and the traces.

    Traces and the slots' inputs are taken on a fixed random sample of ``HESSIAN_IMAGES`` training images, with the model's
    current weights (the slots in float bypass). A trace can come out negative (the loss is not convex
    everywhere); it then counts as 0."""
    images, labels = fixed_sample(run.train_data, HESSIAN_IMAGES, run.config.seed)
    images, labels = images.to(run.device), labels.to(run.device)
    traces = slot_hessian_traces(run.qmodel, images, labels, HUTCHINSON_SAMPLES, seed=run.config.seed)
    captured = capture_slot_inputs(run.qmodel, images)

    def perturbation(slot, options) -> list[float]:
        x = captured.get(id(slot))
        if x is None:
            return [0.0] * len(options)
        # Tr(H)/n * ||Q(x) - x||^2 = Tr(H) * relative MSE * mean(x^2)
        scale = max(traces.get(id(slot), 0.0), 0.0) * (float((x.double() ** 2).mean()) or 1.0)
        return [scale * relative_error(slot, o.scheme, o.bits, x) for o in options]

    return perturbation, traces
