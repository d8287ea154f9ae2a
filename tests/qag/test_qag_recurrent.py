"""nn.RNN / nn.GRU / nn.LSTM: every input-to-hidden and hidden-to-hidden GEMM gets slots, the float bypass
reproduces the fused eager layer (outputs and final states), and the rows cover every time step."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import hwqnn
from cost_models.workload import extract_workload

CELLS = {"rnn_tanh": (nn.RNN, {}), "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}), "gru": (nn.GRU, {}),
         "lstm": (nn.LSTM, {}), "lstm_proj": (nn.LSTM, {"proj_size": 3})}
LAYOUTS = {"1 layer": {}, "2 layers, bidirectional, batch first": {"num_layers": 2, "bidirectional": True,
                                                                     "batch_first": True}}


class Wrap(nn.Module):
    """Returns the output and every final state, so all of them are compared."""

    def __init__(self, rnn: nn.RNNBase, with_state: bool = False):
        super().__init__()
        self.rnn = rnn
        self.with_state = with_state

    def forward(self, x):
        if not self.with_state:
            return self.rnn(x)
        n = self.rnn.num_layers * (2 if self.rnn.bidirectional else 1)
        batch = x.shape[0] if self.rnn.batch_first else x.shape[1]
        h0 = x.new_ones(n, batch, self.rnn.proj_size or self.rnn.hidden_size) * 0.3
        if self.rnn.mode == "LSTM":  # (QAG's module reads the float layer's attributes)
            return self.rnn(x, (h0, x.new_ones(n, batch, self.rnn.hidden_size) * -0.2))
        return self.rnn(x, h0)


def _build(cell: str, layout: str, with_state: bool = False):
    torch.manual_seed(0)
    cls, extra = CELLS[cell]
    options = LAYOUTS[layout]
    rnn = cls(5, 6, **options, **extra)
    shape = (2, 4, 5) if options.get("batch_first") else (4, 2, 5)
    return Wrap(rnn, with_state).eval(), torch.randn(*shape)


def _expected_names(cell: str, layout: str) -> list[str]:
    options = LAYOUTS[layout]
    kinds = ("ih", "hh", "hr") if cell == "lstm_proj" else ("ih", "hh")
    suffixes = ("", "_reverse") if options.get("bidirectional") else ("",)
    return [f"rnn.{kind}_l{layer}{suffix}" for layer in range(options.get("num_layers", 1))
            for suffix in suffixes for kind in kinds]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("cell", list(CELLS))
def test_recurrent_layer_matches_eager_and_slots_every_gemm(cell, layout):
    model, example = _build(cell, layout, with_state=cell in ("gru", "lstm"))
    qmodel = hwqnn.convert(model, example)
    assert qmodel.layer_names == _expected_names(cell, layout)
    assert qmodel.float_ops == []
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(example), model(example), atol=1e-5, rtol=1e-5)
    assert qmodel.workload.layers == extract_workload(model, example).layers


def test_hidden_gemm_rows_count_every_time_step():
    model, example = _build("gru", "2 layers, bidirectional, batch first")  # batch 2, T=4, input 5, hidden 6
    rows = {row.name: row for row in hwqnn.convert(model, example).workload}
    gates = 3 * 6
    assert rows["rnn.ih_l0"].macs == 4 * gates * 5 and rows["rnn.ih_l0"].calls == 1  # per sample
    assert rows["rnn.hh_l0_reverse"].macs == 4 * gates * 6 and rows["rnn.hh_l0_reverse"].calls == 4
    assert rows["rnn.ih_l1"].macs == 4 * gates * 12  # the second layer reads both directions


def test_every_recurrent_slot_is_live_and_gradients_reach_it():
    model, example = _build("lstm", "2 layers, bidirectional, batch first")
    qmodel = hwqnn.convert(model, example)
    reference = model(example)[0].detach()
    for name, role, slot in qmodel.slots():
        qmodel.set_float()
        slot.set_fixed("uniform", 2)
        with torch.no_grad():
            assert not torch.allclose(qmodel(example)[0], reference, atol=1e-6), f"{name} {role} has no effect"
    qmodel.set_search().train()
    qmodel(example)[0].square().mean().backward()
    assert all(slot.bits.grad is not None and slot.bits.grad.abs() > 0 for _, _, slot in qmodel.slots())


def test_unbatched_input_matches_eager():
    torch.manual_seed(0)
    model, example = Wrap(nn.GRU(5, 6, num_layers=2)).eval(), torch.randn(4, 5)
    qmodel = hwqnn.convert(model, example)
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(example), model(example), atol=1e-5, rtol=1e-5)


def test_packed_sequence_runs_the_float_layer_and_is_listed():
    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(5, 6, batch_first=True)
            self.head = nn.Linear(6, 2)

        def forward(self, x):
            packed = pack_padded_sequence(x, torch.tensor([4, 3]), batch_first=True)
            return self.head(self.rnn(packed)[1][0])

    torch.manual_seed(0)
    model, example = Packed().eval(), torch.randn(2, 4, 5)
    with pytest.warns(UserWarning, match="PackedSequence"):
        qmodel = hwqnn.convert(model, example)
    assert qmodel.float_ops[0].startswith("gru in 'rnn' (a PackedSequence input runs the float layer")
    with torch.no_grad():
        torch.testing.assert_close(qmodel.eval()(example), model(example), atol=1e-6, rtol=0)
