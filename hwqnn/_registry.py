"""A tiny generic registry: name -> object, with wildcard listing, overwrite warnings and precise errors."""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Plain dict registry shared by schemes and models (timm's pattern)."""

    def __init__(self, kind: str, error: type[Exception]):
        self.kind = kind
        self._error = error
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: T) -> T:
        if not isinstance(name, str) or not name:
            raise self._error(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries and self._entries[name] is not obj:
            warnings.warn(f"{self.kind} '{name}' is registered again; the new entry replaces the old one",
                          stacklevel=3)
        self._entries[name] = obj
        return obj

    def decorator(self, name: str | None = None) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            return self.register(name or getattr(obj, "name", None) or obj.__name__, obj)

        return wrap

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise self._error(f"unknown {self.kind} '{name}'; known {self.kind}s: {known}") from None

    def list(self, filter: str = "*", exclude: str | None = None) -> list[str]:
        names = [n for n in self._entries if fnmatch.fnmatch(n, filter)]
        if exclude:
            names = [n for n in names if not fnmatch.fnmatch(n, exclude)]
        return names

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
