"""Model registry: ``@register_model`` on a short builder function, then ``create_model(name)``.

Each entry is a :class:`ModelSpec` that also records the input shape a model expects and the data set it
is meant for, so the CLI and the workload extraction can build an example input without guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .._registry import Registry
from ..errors import HwqnnError

ModelFn = Callable[..., nn.Module]


class ModelError(HwqnnError):
    """A model cannot be registered or built with the arguments given."""


class UnknownModelError(ModelError):
    """No model is registered under the requested name; the message lists the known names."""


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: its builder, its input shape ``(C, H, W)`` without batch, its default data."""

    name: str
    fn: ModelFn
    input_shape: tuple[int, ...]
    default_data: str | None = None


_MODELS: Registry[ModelSpec] = Registry("model", UnknownModelError)


def _check_input_shape(input_shape: object, fn_name: str) -> tuple[int, ...]:
    ok = isinstance(input_shape, (tuple, list)) and len(input_shape) > 0 and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape
    )
    if not ok:
        raise ModelError(
            f"register_model for '{fn_name}' got input_shape={input_shape!r}; expected a non-empty tuple of "
            "positive ints without the batch dimension, e.g. (3, 32, 32)"
        )
    return tuple(input_shape)


def register_model(
    *, input_shape: tuple[int, ...], default_data: str | None = None
) -> Callable[[ModelFn], ModelFn]:
    """Decorator: register a builder function under its ``__name__``; registering a name twice warns.

    ``default_data`` names the data set the model is sized for (``"digits"``, ``"cifar10"``); None means
    the caller must choose one.
    """

    def wrap(fn: ModelFn) -> ModelFn:
        if not callable(fn):
            raise ModelError(f"register_model expects a function returning an nn.Module, got {fn!r}")
        name = fn.__name__
        shape = _check_input_shape(input_shape, name)
        _MODELS.register(name, ModelSpec(name=name, fn=fn, input_shape=shape, default_data=default_data))
        return fn

    return wrap


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered under ``name``; UnknownModelError listing known names otherwise."""
    return _MODELS.get(name)


def list_models(filter: str = "*", exclude: str | None = None) -> list[str]:
    """Registered model names in registration order, filtered by shell-style wildcards."""
    return _MODELS.list(filter, exclude)


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build a registered model. Keyword arguments that are None are dropped (timm's rule), so a CLI
    option left unset never reaches a model that does not know it."""
    spec = model_spec(name)
    return spec.fn(**{key: value for key, value in kwargs.items() if value is not None})
