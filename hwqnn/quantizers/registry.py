"""Scheme registry: a new scheme is one file plus ``@register_scheme``."""

from __future__ import annotations

from .._registry import Registry
from ..errors import SchemeError
from .base import Scheme

_SCHEMES: Registry[type[Scheme]] = Registry("scheme", SchemeError)


def register_scheme(cls: type[Scheme]) -> type[Scheme]:
    """Class decorator: register a :class:`Scheme` subclass under its ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, Scheme)):
        raise SchemeError(f"register_scheme expects a Scheme subclass, got {cls!r}")
    if not cls.name:
        raise SchemeError(f"{cls.__name__} must set a non-empty class attribute 'name' before registering")
    return _SCHEMES.register(cls.name, cls)


def get_scheme(name: str) -> type[Scheme]:
    """The scheme class registered under ``name``; SchemeError listing the known names otherwise."""
    return _SCHEMES.get(name)


def create_scheme(name: str, role: str = "weight", channels: int | None = None, channel_axis: int = 0) -> Scheme:
    """Instantiate a registered scheme for one tensor role."""
    return get_scheme(name)(role=role, channels=channels, channel_axis=channel_axis)


def list_schemes(filter: str = "*", exclude: str | None = None) -> list[str]:
    """Registered scheme names in registration order, optionally filtered by a wildcard."""
    return _SCHEMES.list(filter, exclude)
