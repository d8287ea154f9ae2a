"""The scheme registry: the eight built-in names, unknown names, and a user's ninth scheme."""

from __future__ import annotations

import pytest
import torch

from hwqnn.errors import SchemeError
from hwqnn.quantizers import HardwareFacts, Scheme, create_scheme, get_scheme, list_schemes, register_scheme
from hwqnn.quantizers import registry as registry_module

BUILTIN = ["binary", "ternary", "uniform", "ul2q", "pot", "zoom", "clip", "residual"]


def test_the_eight_schemes_are_registered_in_order():
    assert list_schemes()[:8] == BUILTIN
    assert list_schemes("u*") == ["uniform", "ul2q"]
    assert "binary" not in list_schemes(exclude="b*")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(SchemeError, match=r"unknown scheme 'int3'; known schemes: .*binary.*residual"):
        get_scheme("int3")
    with pytest.raises(SchemeError, match="unknown scheme"):
        create_scheme("", role="weight")


@pytest.fixture
def ninth_scheme():
    """Register a scheme as a user would (one class + the decorator), and unregister it afterwards."""

    @register_scheme
    class HalfStep(Scheme):
        """Half-step: ``y = round(2x) / 2`` clipped to the b-bit range. Gradient: straight-through."""

        name = "test_half_step"

        def quantize(self, x: torch.Tensor, bits: int) -> torch.Tensor:
            top = (2 ** (bits - 1) - 1) / 2
            q = torch.clamp(torch.round(x * 2) / 2, -top, top)
            return x + (q - x).detach()

    yield HalfStep
    registry_module._SCHEMES._entries.pop("test_half_step", None)


def test_a_user_registers_a_ninth_scheme(ninth_scheme):
    assert "test_half_step" in list_schemes() and list_schemes()[:8] == BUILTIN
    scheme = create_scheme("test_half_step", role="activation")
    x = torch.linspace(-3, 3, 25, requires_grad=True)
    bits = torch.tensor(3.5, requires_grad=True)
    scheme(x, bits).sum().backward()
    assert torch.isfinite(x.grad).all() and bits.grad is not None
    assert scheme.hardware(4) == HardwareFacts("int", 4)


def test_registering_twice_warns_and_bad_classes_raise(ninth_scheme):
    with pytest.warns(UserWarning, match="registered again"):
        register_scheme(type("Again", (ninth_scheme,), {}))
    with pytest.raises(SchemeError, match="Scheme subclass"):
        register_scheme(int)
