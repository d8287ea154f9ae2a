"""tiny_cnn must learn the embedded digits: the default run depends on it (slow: trains for real)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hwqnn.data import load_dataset, make_loader
from hwqnn.models import create_model


@pytest.mark.slow
def test_tiny_cnn_reaches_95_percent_on_digits():
    torch.manual_seed(0)
    data = load_dataset("digits", seed=0)
    model = create_model("tiny_cnn", num_classes=data.num_classes)
    loader = make_loader(data.train, 64, train=True, seed=0)
    epochs = 8
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=epochs * len(loader))
    for _ in range(epochs):
        model.train()
        for images, labels in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        images, labels = data.test.tensors
        accuracy = (model(images).argmax(1) == labels).float().mean().item()
    assert accuracy >= 0.95, f"tiny_cnn reached only {accuracy:.3f} test accuracy on digits"
