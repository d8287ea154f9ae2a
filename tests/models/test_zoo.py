"""Every registered model builds, runs, and (except branchy_cnn) traces with fx to the same numbers."""

from __future__ import annotations

import dataclasses
import operator

import pytest
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from hwqnn._registry import Registry
from hwqnn.errors import HwqnnError
from hwqnn.models import (
    ModelError,
    UnknownModelError,
    create_model,
    list_models,
    model_spec,
    register_model,
)
from hwqnn.models import _registry as model_registry
from hwqnn.models.branchy_cnn import GatedBlock

UNTRACEABLE = {"branchy_cnn"}
EXPECTED = {"tiny_cnn", "resnet20", "mobilenet_v2_tiny", "vit_tiny", "functional_cnn", "branchy_cnn"}


def _example(name: str, batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, *model_spec(name).input_shape, generator=torch.Generator().manual_seed(0))


def test_zoo_holds_the_expected_models():
    assert EXPECTED <= set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_forward_gives_finite_logits_per_class(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7)
    for mode in (True, False):
        logits = model.train(mode)(_example(name))
        assert logits.shape == (3, 7)
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", list_models())
def test_spec_describes_the_model(name):
    spec = model_spec(name)
    assert spec.name == name and callable(spec.fn)
    assert all(isinstance(d, int) and d > 0 for d in spec.input_shape)
    assert spec.default_data in ("digits", "cifar10")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("name", [n for n in list_models() if n not in UNTRACEABLE])
def test_fx_traced_equals_eager_exactly(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    traced = torch.fx.symbolic_trace(model)
    x = _example(name)
    with torch.no_grad():
        assert torch.equal(traced(x), model(x))


def test_branchy_cnn_is_untraceable_only_because_of_its_gated_block():
    model = create_model("branchy_cnn").eval()
    with pytest.raises(torch.fx.proxy.TraceError):
        torch.fx.symbolic_trace(model)

    class GateAsLeaf(torch.fx.Tracer):
        def is_leaf_module(self, module: nn.Module, qualname: str) -> bool:
            return isinstance(module, GatedBlock) or super().is_leaf_module(module, qualname)

    traced = torch.fx.GraphModule(model, GateAsLeaf().trace(model))
    x = _example("branchy_cnn")
    with torch.no_grad():
        assert torch.equal(traced(x), model(x))


def test_gated_block_takes_both_branches():
    torch.manual_seed(0)
    block = GatedBlock(4).eval()
    positive = torch.rand(2, 4, 5, 5) + 1.0
    with torch.no_grad():
        branch = block.act(block.bn(block.conv(positive)))
        assert torch.equal(block(positive), positive + branch)
        negative = -positive
        assert torch.equal(block(negative), block.act(block.bn(block.conv(negative))))


def test_resnet20_is_the_paper_model():
    model = create_model("resnet20")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == 20  # option A: no projection convolutions
    assert sum(p.numel() for p in model.parameters()) == 269_722  # "0.27M" in He et al., Table 6
    option_b = create_model("resnet20", shortcut="B")
    assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in option_b.modules()) == 2


def test_mobilenet_has_depthwise_convolutions():
    model = create_model("mobilenet_v2_tiny")
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1]
    assert len(depthwise) >= 8


def test_vit_attention_uses_explicit_matmuls():
    model = create_model("vit_tiny")
    graph = torch.fx.symbolic_trace(model).graph
    matmuls = [n for n in graph.nodes if n.op == "call_function" and n.target is operator.matmul]
    assert len(matmuls) == 2 * len(model.blocks)
    assert not any(n.target is F.scaled_dot_product_attention for n in graph.nodes)


def test_functional_cnn_has_no_conv_or_linear_modules():
    model = create_model("functional_cnn")
    assert not any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    targets = [n.target for n in torch.fx.symbolic_trace(model).graph.nodes if n.op == "call_function"]
    assert targets.count(F.conv2d) == 2 and targets.count(F.linear) == 1


def test_unknown_model_names_it_and_lists_known():
    with pytest.raises(UnknownModelError) as info:
        create_model("resnet9000")
    message = str(info.value)
    assert "resnet9000" in message and "tiny_cnn" in message
    assert isinstance(info.value, HwqnnError)
    with pytest.raises(UnknownModelError):
        model_spec("resnet9000")


def test_none_kwargs_are_dropped():
    model = create_model("tiny_cnn", num_classes=None, in_chans=None, option_the_model_lacks=None)
    assert model.head.out_features == 10


def test_unknown_kwarg_is_a_model_error_naming_it():
    with pytest.raises(ModelError, match="option_the_model_lacks"):
        create_model("tiny_cnn", option_the_model_lacks=3)
    with pytest.raises(ModelError, match="depth"):
        create_model("resnet20", depth=8)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_num_classes_is_a_model_error(bad):
    with pytest.raises(ModelError, match="num_classes"):
        create_model("tiny_cnn", num_classes=bad)


def test_list_models_filters_with_wildcards():
    cnns = list_models("*cnn*")
    assert {"tiny_cnn", "functional_cnn", "branchy_cnn"} <= set(cnns)
    assert "resnet20" not in cnns
    assert "branchy_cnn" not in list_models("*cnn*", exclude="branchy*")


@pytest.fixture
def scratch_registry(monkeypatch):
    """An empty model registry for the duration of a test, so test entries never leak into the zoo."""
    monkeypatch.setattr(model_registry, "_MODELS", Registry("model", UnknownModelError))


def test_registering_a_name_twice_warns(scratch_registry):
    def toy(num_classes: int = 10, **kwargs) -> nn.Module:
        return nn.Linear(4, num_classes)

    register_model(input_shape=(4,))(toy)
    assert model_spec("toy").input_shape == (4,) and model_spec("toy").default_data is None
    with pytest.warns(UserWarning, match="toy"):
        register_model(input_shape=(4,), default_data="digits")(toy)
    assert model_spec("toy").default_data == "digits"
    assert list_models() == ["toy"]


@pytest.mark.parametrize("shape", [(), (0, 8, 8), (1, 8.0, 8), "1x8x8", None])
def test_register_rejects_bad_input_shape(scratch_registry, shape):
    with pytest.raises(ModelError, match="input_shape"):
        register_model(input_shape=shape)(lambda num_classes=10: nn.Identity())
