"""The sequence models of the zoo (attention through nn.MultiheadAttention or einsum, GRU, LSTM) build, run,
trace with fx to the same numbers, and describe their inputs like every zoo model."""

from __future__ import annotations

import pytest
import torch
import torch.fx

from hwqnn.models import create_model, einsum_attention, model_spec, recurrent, vit_mha  # noqa: F401

SEQUENCE_MODELS = ["vit_mha_tiny", "einsum_vit_tiny", "gru_tiny", "lstm_tiny"]


def _example(name: str, batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, *model_spec(name).input_shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_forward_gives_finite_logits_per_class(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7)
    for mode in (True, False):
        logits = model.train(mode)(_example(name))
        assert logits.shape == (3, 7) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_spec_and_fx_trace(name):
    spec = model_spec(name)
    assert spec.default_data in ("digits", "cifar10") and spec.input_shape in ((1, 8, 8), (3, 32, 32))
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = _example(name)
    with torch.no_grad():
        assert torch.equal(torch.fx.symbolic_trace(model)(x), model(x))


def test_recurrent_models_read_image_rows_as_time_steps():
    model = create_model("lstm_tiny").eval()
    assert not model.batch_first and model.rnn.hidden_size == 24
    assert create_model("gru_tiny").rnn.bidirectional
