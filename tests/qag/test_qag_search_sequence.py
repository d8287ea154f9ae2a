"""Short searches over the sequence models of the zoo: attention (nn.MultiheadAttention, einsum) and
recurrent layers go through search, MILP finalize and fine-tuning, and the policy meets its budgets."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils.data import TensorDataset

import hwqnn
from hwqnn.data import load_dataset
from hwqnn.models import create_model, einsum_attention, recurrent, vit_mha  # noqa: F401  (registers them)

FAST = dict(pretrain_epochs=0, search_epochs=1, finetune_epochs=1, batch_size=64, seed=0)
SMALL = {"vit_mha_tiny": {"depth": 1}, "einsum_vit_tiny": {"depth": 1}, "gru_tiny": {"num_layers": 1}}


def _data(name: str):
    if name in ("gru_tiny", "lstm_tiny"):
        digits = load_dataset("digits", seed=0)
        return TensorDataset(*digits.train[:128]), TensorDataset(*digits.test[:64])
    generator = torch.Generator().manual_seed(0)  # CIFAR-shaped random data: no download in tests
    images, labels = torch.randn(96, 3, 32, 32, generator=generator), torch.randint(0, 10, (96,), generator=generator)
    return TensorDataset(images[:64], labels[:64]), TensorDataset(images[64:], labels[64:])


@pytest.mark.parametrize("name", ["vit_mha_tiny", "gru_tiny", "einsum_vit_tiny", "lstm_tiny"])
def test_short_search_meets_its_budgets(name):
    torch.manual_seed(0)
    model = create_model(name, **SMALL.get(name, {}))
    train, test = _data(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = hwqnn.search(model, train, test, target="bitfusion", budgets=["size=0.6x", "latency=1.0x"], **FAST)
    within = result.metrics["within_budget"]
    assert within and all(within.values()), within
    layers = [name for name in result.policy.layers if name != "default"]
    assert any(".qk" in n or "matmul" in n or "hh_l0" in n for n in layers), layers
