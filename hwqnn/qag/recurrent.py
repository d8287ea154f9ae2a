"""Recurrent layers (``nn.RNN``, ``nn.GRU``, ``nn.LSTM``) as quantizable GEMMs, step by step.

PyTorch runs a recurrent layer in one fused call (``torch.gru``...). :class:`QuantRNN` computes the same
recurrence from plain calls, with the layer's own parameters: for each layer and direction, the
input-to-hidden GEMM ``ih`` runs once on the whole sequence and the hidden-to-hidden GEMM ``hh`` (and an
LSTM's projection ``hr``) once per time step; each is an ``F.linear`` (op type ``recurrent``) with a weight slot and an
activation slot. The gate arithmetic stays float. When every slot is float (a target whose runtime runs
recurrent cells in float, such as ONNX Runtime's CPU provider), the layer runs PyTorch's fused kernel,
which exports as one GRU/LSTM node. In float bypass the outputs equal the eager layer's
to float rounding (the fused kernel sums in another order).

A ``PackedSequence`` input runs the original float layer (its GEMMs are then listed as float ops).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .attention import QuantCompound, SlotFactory, _join
from .ops import QuantFunctionOp, WrapsModule


def _rnn_tanh(gi: Tensor, gh: Tensor, h: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor | None]:
    return torch.tanh(gi + gh), None


def _rnn_relu(gi: Tensor, gh: Tensor, h: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor | None]:
    return torch.relu(gi + gh), None


def _gru(gi: Tensor, gh: Tensor, h: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """r, z gates; candidate n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = n + z * (h - n)."""
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    reset = torch.sigmoid(i_r + h_r)
    update = torch.sigmoid(i_z + h_z)
    candidate = torch.tanh(i_n + reset * h_n)
    return candidate + update * (h - candidate), None


def _lstm(gi: Tensor, gh: Tensor, h: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Gates i, f, g, o: c' = f * c + i * g, h' = o * tanh(c')."""
    i, f, g, o = (gi + gh).chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


CELLS = {"RNN_TANH": _rnn_tanh, "RNN_RELU": _rnn_relu, "GRU": _gru, "LSTM": _lstm}


class QuantRNN(WrapsModule, QuantCompound):
    """An ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (any layers, directions, ``batch_first``, LSTM ``proj_size``)
    with a QuantSlot pair on each of its GEMMs, named ``<path>.ih_l0``, ``<path>.hh_l0_reverse``..."""

    def __init__(self, path: str, rnn: nn.RNNBase, make_slots: SlotFactory):
        super().__init__()
        self.module = rnn
        self.cell = CELLS[rnn.mode]
        self.is_lstm = rnn.mode == "LSTM"
        self.directions = ("", "_reverse") if rnn.bidirectional else ("",)
        self.ops = nn.ModuleDict()
        for layer in range(rnn.num_layers):
            for suffix in self.directions:
                tag = f"l{layer}{suffix}"
                kinds = ("ih", "hh", "hr") if rnn.proj_size > 0 else ("ih", "hh")
                for kind in kinds:
                    rows = getattr(rnn, f"weight_{kind}_{tag}").shape[0]
                    self.ops[f"{kind}_{tag}"] = QuantFunctionOp(
                        _join(path, f"{kind}_{tag}"), "recurrent", F.linear, *make_slots("weight", rows, 0),
                        weight_is_param=True)
        self._warned_packed = False

    def _all_float(self) -> bool:
        """Every slot in float bypass, and no workload being recorded (that needs the per-GEMM calls)."""
        # (a slot swapped for an export marker has no mode: it is quantized)
        return all(op.recorder is None and all(getattr(s, "mode", "fixed") == "float" for s in op.slots)
                   for op in self.ops.values())

    def _gemm(self, kind: str, tag: str, x: Tensor) -> Tensor:
        m = self.module
        bias = getattr(m, f"bias_{kind}_{tag}") if m.bias and kind != "hr" else None
        return self.ops[f"{kind}_{tag}"](x, getattr(m, f"weight_{kind}_{tag}"), bias)

    def forward(self, input, hx=None):
        m = self.module
        if isinstance(input, PackedSequence):
            if not self._warned_packed:
                warnings.warn(f"QAG: {type(m).__name__} got a PackedSequence; it runs in float (its GEMMs are not "
                              "quantized). Pass a padded tensor to quantize it", stacklevel=2)
                self._warned_packed = True
            return m(input, hx)
        if self._all_float():  # nothing to quantize: PyTorch's fused kernel (one ONNX GRU/LSTM node on export)
            return m(input, hx)
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and m.batch_first:
            x = x.transpose(0, 1)  # [T, N, I]
        steps, batch = x.shape[0], x.shape[1]
        n_states = m.num_layers * len(self.directions)
        out_size = m.proj_size or m.hidden_size
        h0, c0 = (hx if self.is_lstm else (hx, None)) if hx is not None else (None, None)
        if h0 is None:
            h0 = x.new_zeros(n_states, batch, out_size)
            c0 = x.new_zeros(n_states, batch, m.hidden_size) if self.is_lstm else None
        elif not batched:
            h0 = h0.unsqueeze(1)
            c0 = c0.unsqueeze(1) if c0 is not None else None
        h_n, c_n = [], []
        layer_input = x
        for layer in range(m.num_layers):
            outputs = []
            for d, suffix in enumerate(self.directions):
                tag = f"l{layer}{suffix}"
                state = layer * len(self.directions) + d
                gi = self._gemm("ih", tag, layer_input)  # [T, N, gates]: the whole sequence at once
                h, c = h0[state], (c0[state] if c0 is not None else None)
                ys: list[Tensor | None] = [None] * steps
                for t in (range(steps - 1, -1, -1) if suffix else range(steps)):
                    h, c = self.cell(gi[t], self._gemm("hh", tag, h), h, c)
                    if m.proj_size > 0:
                        h = self._gemm("hr", tag, h)
                    ys[t] = h
                outputs.append(torch.stack(ys))
                h_n.append(h)
                c_n.append(c)
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if m.dropout > 0 and self.training and layer < m.num_layers - 1:
                layer_input = F.dropout(layer_input, m.dropout, training=True)
        output = layer_input
        h_n = torch.stack(h_n)
        if batched and m.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
        if not self.is_lstm:
            return output, h_n
        c_n = torch.stack(c_n)
        return output, (h_n, c_n if batched else c_n.squeeze(1))
