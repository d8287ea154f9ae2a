"""Model registry: ``@register_model`` on a short builder function, then ``create_model(name)``.

Each entry is a :class:`ModelSpec` that also records the input shape a model expects and the data set it
is meant for, so the CLI and the workload extraction can build an example input without guessing.

A user's own model needs no registration: ``create_model("package.module:factory")`` or
``create_model("path/to/file.py:factory")`` imports the factory and builds it. The spec is the model's
name, so a run directory that stores it rebuilds the model the same way as a zoo model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .._factory import accepts_keyword, call_factory, is_factory_spec, load_factory, type_phrase
from .._registry import Registry
from ..errors import ModelError, UnknownModelError

ModelFn = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: its builder, its input shape ``(C, H, W)`` without batch, its default data.

    ``input_shape`` is None for a ``module:factory`` model that does not declare one (an ``input_shape``
    attribute on the factory): its inputs are whatever the data provides.
    """

    name: str
    fn: ModelFn
    input_shape: tuple[int, ...] | None
    default_data: str | None = None


_MODELS: Registry[ModelSpec] = Registry("model", UnknownModelError)


def _check_input_shape(input_shape: object, where: str) -> tuple[int, ...]:
    ok = isinstance(input_shape, (tuple, list)) and len(input_shape) > 0 and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape
    )
    if not ok:
        raise ModelError(
            f"{where} got input_shape={input_shape!r}; expected a non-empty tuple of "
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
        shape = _check_input_shape(input_shape, f"register_model for '{name}'")
        _MODELS.register(name, ModelSpec(name=name, fn=fn, input_shape=shape, default_data=default_data))
        return fn

    return wrap


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered under ``name``, or built for a ``module:factory`` spec;
    UnknownModelError listing known names otherwise."""
    if is_factory_spec(name):
        return _factory_spec(name)
    if not isinstance(name, str) or name not in _MODELS:
        known = ", ".join(sorted(_MODELS))
        raise UnknownModelError(f"unknown model {name!r}; known models: {known}, or your own as "
                                "package.module:factory or path/to/file.py:factory")
    return _MODELS.get(name)


def _factory_spec(spec: str) -> ModelSpec:
    factory = load_factory(spec, flag="--model", error_type=ModelError)
    declared = getattr(factory, "input_shape", None)
    shape = _check_input_shape(declared, f"--model {spec}: the factory's attribute") if declared is not None else None
    return ModelSpec(name=spec, fn=factory, input_shape=shape, default_data=getattr(factory, "default_data", None))


def list_models(filter: str = "*", exclude: str | None = None) -> list[str]:
    """Registered model names in registration order, filtered by shell-style wildcards."""
    return _MODELS.list(filter, exclude)


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build a registered model. Keyword arguments that are None are dropped (timm's rule), so a CLI
    option left unset never reaches a model that does not know it."""
    spec = model_spec(name)
    given = {key: value for key, value in kwargs.items() if value is not None}
    if not is_factory_spec(name):
        return spec.fn(**given)
    if "num_classes" in given and not accepts_keyword(spec.fn, "num_classes"):
        del given["num_classes"]  # a factory without the keyword builds its own head
    model = call_factory(spec.fn, name, flag="--model", error_type=ModelError, **given)
    if not isinstance(model, nn.Module):
        raise ModelError(f"--model {name}: the factory returned {type_phrase(model)}, expected torch.nn.Module")
    return model
