import copy

import pytest
import torch

from hwqnn.data import load_dataset
from hwqnn.models import create_model
from hwqnn.searching.train import train_epoch

# Small models on a shared 2-core box: intra-op threads cost far more than they give.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def _pretrained_tiny_cnn(digits):
    """A float tiny_cnn trained once per session; tests get deep copies (pretrain_epochs=0)."""
    from hwqnn.data import make_loader

    torch.manual_seed(0)
    model = create_model("tiny_cnn", num_classes=10)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for epoch in range(6):
        train_epoch(model, make_loader(digits.train, 64, train=True, seed=epoch), [opt], torch.device("cpu"))
    return model


@pytest.fixture
def tiny_cnn(_pretrained_tiny_cnn):
    return copy.deepcopy(_pretrained_tiny_cnn)

