"""Code fx cannot trace still gets slots on its GEMMs: functions kept whole by torch.fx.wrap, Conv/Linear
subclasses with their own forward, untraceable submodules; optional forward arguments the example does not
pass are traced as their defaults; tied embeddings are one layer."""

from __future__ import annotations

import warnings

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

import hwqnn
from cost_models.workload import extract_workload


@torch.fx.wrap
def _window_attention(x: torch.Tensor, qkv_weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Shape arithmetic on tensor sizes, as in torchvision's shifted_window_attention: fx keeps it whole."""
    q, k, v = F.linear(x, qkv_weight).chunk(3, -1)
    if x.shape[1] % heads:
        raise ValueError("tokens must divide by heads")
    return torch.softmax(q @ k.transpose(1, 2), -1) @ v


class Windowed(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.proj = nn.Linear(8, 8)

    def forward(self, x):
        return self.proj(_window_attention(x, self.qkv.weight, 2))


class SamePadConv(nn.Conv2d):
    """A Conv2d subclass with its own forward (timm's Conv2dSame pads before the convolution)."""

    def forward(self, x):
        if x.shape[-1] % 2:  # untraceable: branches on a size
            x = F.pad(x, (0, 1, 0, 1))
        return F.conv2d(x, self.weight, self.bias, self.stride)


class Masked(nn.Module):
    """An optional argument the example does not pass: fx must not trace its `is not None` branch."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x, mask=None):
        if mask is not None:
            x = x.masked_fill(~mask, 0.0)
        return self.fc(x)


def _check(model: nn.Module, example, names: list[str]):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="QAG:")
        qmodel = hwqnn.convert(model, example)
    assert qmodel.layer_names == names and qmodel.float_ops == []
    args = example if isinstance(example, tuple) else (example,)
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(*args), model(*args), atol=1e-6, rtol=1e-6)
    assert qmodel.workload.layers == extract_workload(model, example).layers
    return qmodel


def test_fx_wrapped_function_gets_slots_named_after_its_caller():
    torch.manual_seed(0)
    qmodel = _check(Windowed().eval(), torch.randn(2, 4, 8), ["linear", "matmul", "matmul_1", "proj"])
    assert qmodel.layer("linear").weight_is_param and not qmodel.layer("matmul").weight_is_param


def test_conv_subclass_with_its_own_forward_keeps_it_and_is_named_by_its_path():
    torch.manual_seed(0)
    model = nn.Sequential(SamePadConv(3, 4, 3, stride=2), nn.ReLU(), nn.Conv2d(4, 4, 1)).eval()
    qmodel = _check(model, torch.randn(2, 3, 9, 9), ["0", "2"])
    assert qmodel.layer("0").weight_slot.channels == 4


def test_optional_arguments_not_given_are_traced_as_their_defaults():
    torch.manual_seed(0)
    qmodel = _check(Masked().eval(), torch.randn(2, 8), ["fc"])
    assert qmodel.fallback_modules == []


def test_multi_query_attention_rows_keep_the_shared_key_head():
    class MultiQuery(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.kv = nn.Linear(8, 8), nn.Linear(8, 4)

        def forward(self, x):
            q = self.q(x).unflatten(-1, (4, 2)).transpose(1, 2)  # 4 query heads
            k, v = self.kv(x).unflatten(-1, (1, 4)).transpose(1, 2).chunk(2, -1)  # one shared key/value head
            return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)

    torch.manual_seed(0)
    qmodel = _check(MultiQuery().eval(), torch.randn(2, 5, 8), ["q", "kv", "sdpa.qk", "sdpa.av"])
    assert qmodel.workload.layers[2].weight_shape == (2, 1, 2, 5)  # k^T keeps its single head


def test_tied_embeddings_are_one_layer_and_not_reported():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = nn.Embedding(30, 8)
            self.encoder_embed = nn.Embedding(30, 8)
            self.encoder_embed.weight = self.shared.weight  # tied as transformers ties them
            self.head = nn.Linear(8, 2)

        def forward(self, ids):
            return self.head(self.encoder_embed(ids).mean(1))

    torch.manual_seed(0)
    _check(Tied().eval(), torch.randint(0, 30, (2, 5)), ["encoder_embed", "head"])
