"""Small recurrent classifiers for the 8x8 digits: each image is read as a sequence of 8 rows of 8 pixels.

``gru_tiny`` is a 2-layer bidirectional, batch-first GRU; ``lstm_tiny`` a 1-layer, time-first LSTM. QAG quantizes their input-to-hidden and hidden-to-hidden GEMMs at every time step.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._builder import build_model
from ._registry import ModelError, register_model

_CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class RowRecurrentNet(nn.Module):
    """[B, 1, H, W] -> H steps of W features -> recurrent layer -> mean over steps -> linear."""

    def __init__(self, num_classes: int = 10, cell: str = "gru", input_size: int = 8, hidden_size: int = 16,
                 num_layers: int = 2, bidirectional: bool = True, batch_first: bool = True, proj_size: int = 0):
        super().__init__()
        if cell not in _CELLS:
            raise ModelError(f"RowRecurrentNet got cell={cell!r}; expected one of {sorted(_CELLS)}")
        extra = {"proj_size": proj_size} if cell == "lstm" else {}
        self.batch_first = batch_first
        self.rnn = _CELLS[cell](input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                                batch_first=batch_first, **extra)
        features = (proj_size or hidden_size) * (2 if bidirectional else 1)
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        rows = x.flatten(1, 2)  # [B, C*H, W]: one step per row
        if not self.batch_first:
            rows = rows.transpose(0, 1)
        out, _ = self.rnn(rows)
        return self.head(out.mean(dim=1 if self.batch_first else 0))


@register_model(input_shape=(1, 8, 8), default_data="digits")
def gru_tiny(num_classes: int = 10, **kwargs) -> RowRecurrentNet:
    """2-layer bidirectional GRU, 16 hidden units, batch first: about 7k parameters."""
    return build_model(RowRecurrentNet, "gru_tiny", num_classes=num_classes, cell="gru", **kwargs)


@register_model(input_shape=(1, 8, 8), default_data="digits")
def lstm_tiny(num_classes: int = 10, **kwargs) -> RowRecurrentNet:
    """1-layer LSTM, 24 hidden units, time first: about 3.4k parameters."""
    defaults = {"hidden_size": 24, "num_layers": 1, "bidirectional": False, "batch_first": False}
    return build_model(RowRecurrentNet, "lstm_tiny", num_classes=num_classes, cell="lstm", **{**defaults, **kwargs})
