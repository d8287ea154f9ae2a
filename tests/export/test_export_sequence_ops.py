"""The new op kinds export to Q/DQ ONNX that ONNX Runtime runs and that matches PyTorch: nn.MultiheadAttention
and the encoder layer, SDPA, einsum, addmm/baddbmm, GRU/LSTM, a function fx keeps whole, and an untraceable
root whose GEMM calls run through QuantOps. Each is exported at w8a8 after calibration."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwqnn
from hwqnn.export import export_onnx
from hwqnn.export.onnx_qdq import run_onnx

POLICY = hwqnn.Policy.uniform("w8a8")


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.encoder(x).mean(1))


class CrossAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = nn.MultiheadAttention(16, 2, kdim=8, vdim=8)
        self.memory = nn.Linear(16, 8)

    def forward(self, x):  # time first
        out, weights = self.attention(x, self.memory(x), self.memory(x).flip(0))
        return out.mean(0) + weights.mean((1, 2))[:, None]


class Sdpa(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(16, 48)

    def forward(self, x):
        q, k, v = self.qkv(x).unflatten(-1, (3, 2, 8)).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True).mean((1, 2))


class EinsumAddmm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(16, 16) * 0.3)
        self.bias = nn.Parameter(torch.zeros(16))

    def forward(self, x):
        y = torch.addmm(self.bias, x.reshape(-1, 16), self.weight).view(x.shape)
        scores = torch.einsum("bid,bjd->bij", y, x).softmax(-1)
        return torch.baddbmm(y, scores, x).mean(1)


class Recurrent(nn.Module):
    def __init__(self, cls):
        super().__init__()
        self.rnn = cls(16, 8, num_layers=2, bidirectional=True, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0].mean(1)


@torch.fx.wrap
def _wrapped_attention(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A function fx keeps whole (like torchvision's shifted_window_attention)."""
    q = F.linear(x, weight)
    return torch.softmax(q @ x.transpose(1, 2), -1) @ x


class Wrapped(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(16, 16) * 0.3)

    def forward(self, x):
        return _wrapped_attention(x, self.weight).mean(1)


class UntraceableRoot(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.weight = nn.Parameter(torch.randn(4, 16) * 0.3)

    def forward(self, x):
        if x.shape[1] > 1:  # Python control flow on a size: fx cannot trace it, an ONNX trace can
            x = self.fc(x)
        return F.linear(x.mean(1), self.weight)


CASES = {
    "encoder layer": Encoder, "cross attention with weights": CrossAttention, "sdpa": Sdpa,
    "einsum addmm baddbmm": EinsumAddmm, "gru": lambda: Recurrent(nn.GRU), "lstm": lambda: Recurrent(nn.LSTM),
    "fx-wrapped function": Wrapped, "untraceable root": UntraceableRoot,
}


@pytest.mark.parametrize("case", list(CASES))
def test_new_ops_export_and_match_pytorch(case, tmp_path):
    torch.manual_seed(0)
    model = CASES[case]().eval()
    time_first = case == "cross attention with weights"  # its axis 0 is time: the exported axis stays fixed
    shape = (5, 4, 16) if time_first else (4, 5, 16)
    example = torch.randn(*shape)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="QAG:")
        qmodel = hwqnn.apply_policy(model, POLICY, example, strict=True)
    qmodel.calibrate([example])
    qmodel.eval()
    report = export_onnx(qmodel, example, tmp_path / "model.onnx")
    onnx.checker.check_model(onnx.load(report.path), full_check=True)
    assert report.max_abs_diff <= 1e-4 * max(1.0, report.max_abs_output), report.summary()
    assert all(t.representation != "float" for t in report.tensors), report.summary()
    other = torch.randn(*shape) if time_first else torch.randn(7, *shape[1:])  # another batch size
    with torch.no_grad():
        want = qmodel(other).numpy()
    got = run_onnx(report.path, other.numpy())
    assert np.abs(got - want).max() <= 1e-3 * max(1.0, np.abs(want).max())


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, ids):
        return self.head(self.embed(ids).mean(1))


def test_embedding_exports_a_quantized_table_and_integer_input(tmp_path):
    torch.manual_seed(0)
    ids = torch.randint(0, 50, (4, 6))
    qmodel = hwqnn.apply_policy(Tagger().eval(), POLICY, ids, strict=True)
    qmodel.calibrate([ids])
    report = export_onnx(qmodel.eval(), ids, tmp_path / "tagger.onnx")
    representation = {(t.layer, t.role): t.representation for t in report.tensors}
    assert representation[("embed", "activation")] == "float"  # integer indices: weight-only
    assert representation[("embed", "weight")] != "float"
    assert report.max_abs_diff <= 1e-5 * max(1.0, report.max_abs_output), report.summary()
