"""Models or inputs QAG cannot convert raise a ConversionError that names the problem."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwqnn
from hwqnn.errors import ConversionError, HwqnnError


def test_model_without_quantizable_ops_names_the_model():
    model = nn.Sequential(nn.ReLU(), nn.BatchNorm1d(4), nn.Flatten())
    with pytest.raises(ConversionError, match=r"Sequential has no conv, linear or matmul op"):
        hwqnn.convert(model, torch.randn(2, 4))


def test_example_of_the_wrong_shape_says_what_failed_and_what_to_do(zoo):
    model, _ = zoo("tiny_cnn")  # expects [B, 1, 8, 8]
    wrong = torch.randn(2, 3, 8, 8)
    with pytest.raises(ConversionError, match=r"fails on the example input") as info:
        hwqnn.convert(model, wrong)
    message = str(info.value)
    assert "RuntimeError" in message and "3 channels" in message  # torch's own reason is kept
    assert "pass an input of the shape the model expects" in message


@pytest.mark.parametrize("example", [torch.tensor(1.0), "not a tensor", ()], ids=["scalar", "string", "empty"])
def test_example_that_is_not_a_batched_tensor_is_refused(zoo, example):
    model, _ = zoo("tiny_cnn")
    with pytest.raises(ConversionError, match="example_input must be a batched tensor"):
        hwqnn.convert(model, example)


def test_non_module_is_refused():
    with pytest.raises(ConversionError, match="expects an nn.Module, got function"):
        hwqnn.convert(lambda x: x, torch.randn(2, 4))


def test_unknown_scheme_sharing_is_refused(zoo):
    model, example = zoo("tiny_cnn")
    with pytest.raises(ConversionError, match=r"scheme_sharing must be 'layer' or 'model', got 'global'"):
        hwqnn.convert(model, example, scheme_sharing="global")


def test_conversion_error_is_a_user_error():
    assert issubclass(ConversionError, HwqnnError)


def test_bad_candidate_scheme_or_bits_range_is_a_user_error(zoo):
    model, example = zoo("tiny_cnn")
    with pytest.raises(HwqnnError, match="no_such_scheme"):
        hwqnn.convert(model, example, schemes=["uniform", "no_such_scheme"])
    with pytest.raises(HwqnnError, match="bits_range"):
        hwqnn.convert(model, example, bits_range=(8, 2))


class _PairScore(nn.Module):
    """A bilinear form, an op QAG has no quantized form of."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 8, 8))

    def forward(self, x):
        return F.bilinear(x, x, self.weight)


def test_model_with_only_an_unquantizable_gemm_names_the_op_its_owner_and_the_reason():
    class OnlyBilinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair = _PairScore()

        def forward(self, x):
            return self.pair(x)

    with pytest.raises(ConversionError, match=r"OnlyBilinear has no conv.*bilinear in 'pair' \(QAG has no quantized "
                                              r"form of bilinear\)"):
        hwqnn.convert(OnlyBilinear().eval(), torch.randn(2, 8))
