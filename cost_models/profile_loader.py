"""Find, read and cache hardware profiles by name, alias or path (strict safe YAML, see ``yaml_io``).

Parsing and validation of one document live in :mod:`cost_models.profile_schema`; here a profile's
``fallback`` device is loaded and checked (unknown, chained and cyclic fallbacks are refused), and the
aliases file is read.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from hardware_profiles import PROFILE_DIR

from .errors import ProfileError, YamlFileError
from .profile import HardwareProfile
from .profile_schema import SANE_RANGES, SCHEMA_VERSION, parse_profile, shown
from .yaml_io import read_yaml_file

ALIASES_FILE = "aliases.yaml"

__all__ = ["load_profile", "list_profiles", "profile_aliases", "profile_file", "read_profile_file",
           "unknown_profile_message", "parse_profile", "SANE_RANGES", "SCHEMA_VERSION"]


# --- files, names, aliases ---------------------------------------------------------------------------
def read_profile_file(path: str | os.PathLike) -> HardwareProfile:
    """Parse and validate one YAML file (not cached; its fallback is not loaded)."""
    file = str(path)
    try:
        data = read_yaml_file(path)
    except YamlFileError as exc:
        raise ProfileError(exc.problem, file=file) from None
    return parse_profile(data, file)


@functools.lru_cache(maxsize=64)
def _read_cached(path: str, mtime_ns: int) -> HardwareProfile:
    return read_profile_file(path)


@functools.lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int) -> HardwareProfile:
    """A profile ready for costing: its fallback device loaded and checked, every precision resolvable."""
    profile = _read_cached(path, mtime_ns)
    if profile.fallback is not None and "fallback" not in profile._cache:
        # an unknown, chained or cyclic fallback fails here, at validation
        profile.with_fallback(load_fallback(profile.fallback, near=profile.file, requested_by=profile))
    profile.execution_tables()  # fail early on a precision no device can run
    return profile


def _cache_key(file: Path) -> tuple[str, int]:
    resolved = file.resolve()
    return str(resolved), resolved.stat().st_mtime_ns


def profile_aliases(directory: Path = PROFILE_DIR) -> dict[str, str]:
    """Short names (``jetson``) mapped to profile names, from ``aliases.yaml``."""
    file = Path(directory) / ALIASES_FILE
    if not file.exists():
        return {}
    return dict(_read_aliases(str(file), file.stat().st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _read_aliases(path: str, mtime_ns: int) -> dict[str, str]:
    """``aliases.yaml`` checked: a mapping of new short names to profiles that exist next to it."""
    try:
        data = read_yaml_file(path)
    except YamlFileError as exc:
        raise ProfileError(exc.problem, file=path) from None
    data = {} if data is None else data
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ProfileError("expected a mapping of alias name to profile name, such as 'jetson: jetson-orin-nano'",
                           file=path)
    known = list_profiles(Path(path).parent)
    for alias, target in data.items():
        if alias in known:
            raise ProfileError(f"alias '{alias}' is already the name of a profile; pick another short name",
                               file=path, field=alias)
        if target not in known:
            raise ProfileError(f"alias '{alias}' names '{target}', which is not a profile here; known profiles: "
                               f"{', '.join(known)}", file=path, field=alias)
    return dict(data)


def list_profiles(directory: Path = PROFILE_DIR) -> list[str]:
    """Names of the profiles shipped in ``directory`` (file stems), sorted; aliases are not included."""
    return sorted(p.stem for p in Path(directory).glob("*.yaml") if p.name != ALIASES_FILE)


def _is_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or os.sep in text or _is_file(Path(text))


def _is_file(path: Path) -> bool:
    """Path.is_file, but False (not OSError) for a name too long or otherwise impossible on this system."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def profile_file(name_or_path: str | os.PathLike) -> Path:
    """The YAML file of a profile name (``jetson-nano``), alias (``jetson``) or path; ProfileError if none."""
    text = str(name_or_path)
    if _is_path(text):
        path = Path(text)
        if not _is_file(path):
            raise ProfileError(f"no such file; pass a profile name ({', '.join(list_profiles())}) or the path of a "
                               "YAML profile", file=text)
        return path
    aliases = profile_aliases()
    file = PROFILE_DIR / f"{aliases.get(text, text)}.yaml"
    if not _is_file(file):
        raise ProfileError(unknown_profile_message(text, aliases))
    return file


def unknown_profile_message(text: str, aliases: dict[str, str]) -> str:
    """Plain text: the unknown name, the known profiles and the aliases, and what else to pass."""
    known = ", ".join(list_profiles())
    short = ", ".join(f"{alias} -> {target}" for alias, target in sorted(aliases.items()))
    return (f"unknown hardware profile {shown(text)}; known profiles: {known}"
            + (f" (aliases: {short})" if short else "") + "; or pass the path of a YAML profile")


def load_profile(name_or_path: str | os.PathLike | HardwareProfile) -> HardwareProfile:
    """A profile by name (``jetson-nano``), alias (``jetson``) or YAML path; validated and cached."""
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    return _load_cached(*_cache_key(profile_file(name_or_path)))


def load_fallback(name: str, *, near: str, requested_by: HardwareProfile) -> HardwareProfile:
    """The fallback device of a profile: looked up next to its file first, then among shipped profiles.

    A fallback device must run every precision itself, so it may not have a fallback of its own; this
    also refuses cycles (a -> b -> a) before they recurse.
    """
    local = Path(near).parent / f"{name}.yaml"
    try:
        key = _cache_key(local if _is_file(local) else profile_file(name))
        fallback = _read_cached(*key)
    except ProfileError as exc:
        raise ProfileError(f"fallback device {name!r} cannot be loaded: {exc}", file=requested_by.file,
                           field="fallback.value") from None
    if fallback.fallback is not None:
        cycle = (f"a cycle {requested_by.name} -> {fallback.name} -> {fallback.fallback}; "
                 if fallback.fallback == requested_by.name else "")
        raise ProfileError(f"fallback device {name!r} has a fallback of its own ({fallback.fallback!r}): {cycle}a "
                           "fallback device must run every precision itself (no chains)", file=requested_by.file,
                           field="fallback.value")
    try:
        return _load_cached(*key)
    except ProfileError as exc:
        raise ProfileError(f"fallback device {name!r} cannot be loaded: {exc}", file=requested_by.file,
                           field="fallback.value") from None
