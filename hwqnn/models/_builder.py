"""Shared construction step of the ``@register_model`` functions: check the arguments, then build."""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from torch import nn

from ._registry import ModelError

M = TypeVar("M", bound=nn.Module)


def build_model(model_cls: type[M], model_name: str, **kwargs: Any) -> M:
    """Instantiate ``model_cls`` after checking that every keyword is one it accepts.

    An unknown keyword would otherwise surface as a bare TypeError from deep inside ``__init__``; here
    it becomes a ModelError naming the model, the argument and the accepted ones.
    """
    params = inspect.signature(model_cls.__init__).parameters
    accepted = [p for p in params if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ModelError(
            f"model '{model_name}' got unknown argument(s) {unknown}; it accepts {accepted}. "
            "Remove them, or pass None to leave an option unset."
        )
    num_classes = kwargs.get("num_classes")
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
    ):
        raise ModelError(f"model '{model_name}' got num_classes={num_classes!r}; expected a positive int")
    return model_cls(**kwargs)
