"""Extraction: a subnet of the supernet becomes a standalone float ``nn.Module`` with its sliced weights and
recalibrated BatchNorm statistics, plus its Policy, then a fixed :class:`~hwqnn.QuantizedModel` whose
quantizers carry the supernet's learned per-bitwidth parameters. Its output equals the supernet's subnet."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..qag import QuantizedModel, apply_policy
from .elastic import ElasticBatchNorm2d, ElasticConv2d, ElasticLinear, recalibrate_bn
from .nets import build_subnet
from .supernet import Subnet, Supernet


def _narrow(src: Tensor, shape: torch.Size) -> Tensor:
    """The leading block of ``src`` with ``shape`` (the slice a subnet uses)."""
    out = src
    for dim, size in enumerate(shape):
        out = out.narrow(dim, 0, size)
    return out


@torch.no_grad()
def extract_float(supernet: Supernet, subnet: Subnet, calib: list[Tensor]) -> nn.Module:
    """The subnet as a plain float network: weights sliced from the supernet, BN recalibrated for ``subnet``."""
    supernet.activate(subnet)
    recalibrate_bn(supernet, calib)
    net = build_subnet(supernet.space, subnet.arch, supernet.num_classes)
    for name, module in net.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            continue
        src = supernet.net.get_submodule(name)
        if isinstance(src, ElasticConv2d):
            module.weight.copy_(_conv_slice(src, module))
        elif isinstance(src, ElasticLinear):
            module.weight.copy_(src.weight[:, : module.in_features])
            module.bias.copy_(src.bias)
        elif isinstance(src, ElasticBatchNorm2d):
            c = module.num_features
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(module, key).copy_(getattr(src, key)[:c])
            module.num_batches_tracked.copy_(src.num_batches_tracked)
    return net.eval()


def _conv_slice(src: ElasticConv2d, dst: nn.Conv2d) -> Tensor:
    w = src.weight[: dst.out_channels, : dst.weight.shape[1]]
    k = dst.kernel_size[0]
    start = (src.kernel_size - k) // 2
    return w[:, :, start:start + k, start:start + k]


@torch.no_grad()
def copy_quantizers(supernet: Supernet, qmodel: QuantizedModel) -> None:
    """Give every slot of ``qmodel`` the supernet's learned quantizer state for its layer (sliced to its channels)."""
    for layer, role, slot in qmodel.slots():
        if slot.mode != "fixed":
            continue
        src_layer = supernet.net.get_submodule(layer)
        src = src_layer.w_quant if role == "weight" else src_layer.a_quant
        dst = slot.candidates[slot.fixed_scheme]
        if type(dst) is not type(src):
            continue
        source = src.state_dict()
        dst.load_state_dict({k: _narrow(source[k], v.shape).clone() for k, v in dst.state_dict().items()})


def extract(supernet: Supernet, subnet: Subnet, calib: list[Tensor]) -> QuantizedModel:
    """The fixed quantized standalone model of ``subnet`` (eval mode), equal to the supernet's subnet."""
    float_net = extract_float(supernet, subnet, calib)
    example = torch.zeros(2, *supernet.space.input_shape)
    # The supernet trains without joins (its adds and pools stay float), so the subnet does too.
    qmodel = apply_policy(float_net, subnet.policy(supernet.space), example, joins=False)
    copy_quantizers(supernet, qmodel)
    return qmodel.eval()


def finetune(qmodel: nn.Module, images: Tensor, labels: Tensor, *, epochs: int, lr: float, batch_size: int,
             seed: int) -> list[dict]:
    """A short quantization-aware fine-tune of the extracted model (SGD, cosine), deterministic in ``seed``."""
    if epochs <= 0:
        return []
    opt = torch.optim.SGD(qmodel.parameters(), lr=lr, momentum=0.9, nesterov=True)
    steps = max(1, math.ceil(len(images) / batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps)
    history = []
    for epoch in tqdm(range(epochs), desc="fine-tune", leave=False):
        perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        qmodel.train()
        total = 0.0
        for s in range(steps):
            idx = perm[s * batch_size:(s + 1) * batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(qmodel(images[idx]), labels[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss)
        history.append({"phase": "finetune", "epoch": epoch, "loss": total / steps})
    qmodel.eval()
    return history
