"""The one way hwqnn reads YAML written by a person: profiles, ``aliases.yaml`` and policy files.

``yaml.safe_load`` alone is not enough for untrusted input: a 1 KB file of nested aliases expands to
gigabytes ("billion laughs"), deep nesting exhausts the recursion limit, duplicate keys silently keep
the last value, and its errors span several lines. :func:`read_yaml_file` therefore

- reads at most ``max_bytes`` bytes and refuses larger files;
- refuses bytes that are not UTF-8, naming the byte offset;
- refuses aliases (``*name``) and merge keys (``<<``) outright, at the first one, before anything is
  expanded (no hwqnn file needs them: write the value out);
- refuses nesting deeper than ``max_depth`` levels;
- refuses duplicate mapping keys, naming the key and both lines;
- reports a scalar that its tag cannot hold (a 5000-digit integer, ``!!int abc``) at its position;
- turns every YAML error into one line: file, line, column, problem.

Every refusal raises :class:`~cost_models.errors.YamlFileError`; callers re-raise it as their own
error class (ProfileError, PolicyError) with ``exc.problem``.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from .errors import YamlFileError

MAX_YAML_BYTES = 1 << 20  # 1 MiB: the largest shipped profile is about 2 KB
MAX_YAML_DEPTH = 32  # profiles nest 5 levels deep, policies 3
MAX_INT_BITS = 1024  # 2**1024 is beyond the largest float
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(yaml.MarkedYAMLError):
    """A construct hwqnn refuses (alias, merge key, deep nesting, duplicate key), with its position."""


class StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, merge keys, duplicate keys, integers beyond any float and nesting
    deeper than ``max_depth``."""

    max_depth = MAX_YAML_DEPTH

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(problem=f"alias '*{event.anchor}' is not allowed in hwqnn YAML files; write the value "
                                   "out in full instead of referring to an anchor", problem_mark=event.start_mark)
        self._depth += 1
        if self._depth > self.max_depth:
            raise _Refused(problem=f"nested deeper than {self.max_depth} levels; hwqnn files need only a few",
                           problem_mark=self.peek_event().start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. a 5000-digit integer, month 13, !!int abc
            raise _Refused(problem=f"cannot read this {node.tag.rsplit(':', 1)[-1]} value: {one_line(exc, 120)}",
                           problem_mark=node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            _check_keys(self, node)
        return super().construct_mapping(node, deep=deep)


def _construct_bounded_int(loader: StrictSafeLoader, node: yaml.ScalarNode) -> int:
    """An int no wider than a float can hold: larger ones cannot be a real quantity, and Python refuses
    to print integers of more than 4300 digits, so an error message about one would itself crash."""
    too_long = len(node.value) > 400  # more digits than any float has, in any base: refuse before converting
    value = 0 if too_long else yaml.SafeLoader.construct_yaml_int(loader, node)
    if too_long or abs(value).bit_length() > MAX_INT_BITS:
        raise _Refused(problem=f"integer too large (more than {MAX_INT_BITS} bits, beyond any float)",
                       problem_mark=node.start_mark)
    return value


StrictSafeLoader.add_constructor("tag:yaml.org,2002:int", _construct_bounded_int)


def _check_keys(loader: StrictSafeLoader, node: yaml.MappingNode) -> None:
    """Refuse merge keys and keys that appear twice in one mapping (YAML would keep the last silently)."""
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            raise _Refused(problem="merge keys ('<<') are not allowed in hwqnn YAML files; write the fields out",
                           problem_mark=key_node.start_mark)
        key = loader.construct_object(key_node)
        try:
            seen = first_line.get(key)
        except TypeError:  # unhashable key: SafeConstructor reports it
            continue
        line = key_node.start_mark.line + 1
        if seen is not None:
            raise _Refused(problem=f"duplicate key {_short(key)} (first at line {seen}); keep only one",
                           problem_mark=key_node.start_mark)
        first_line[key] = line


def read_yaml_file(path: str | os.PathLike, *, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Parse one YAML file strictly (see the module docstring); raises YamlFileError on any problem."""
    file = str(path)
    return parse_yaml_text(decode_utf8(read_limited(path, max_bytes), file), file)


def read_limited(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The file's bytes, refusing a file larger than ``max_bytes`` without reading all of it."""
    file = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise YamlFileError(f"cannot read the file: {exc.strerror or exc}", file=file) from None
    if len(data) > max_bytes:
        raise YamlFileError(f"the file is larger than {_size(max_bytes)}, the limit for this kind of file; "
                            "is it the right file?", file=file)
    return data


def decode_utf8(data: bytes, file: str) -> str:
    """UTF-8 text (a leading byte-order mark is dropped), or YamlFileError naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1].hex()
        raise YamlFileError(f"not UTF-8 text: byte 0x{bad} at offset {exc.start} cannot be decoded; "
                            "save the file as UTF-8", file=file) from None


def parse_yaml_text(text: str, file: str) -> Any:
    """Parse ``text`` with :class:`StrictSafeLoader`; one-line YamlFileError on any YAML problem."""
    try:
        loader = StrictSafeLoader(text)  # the reader checks every character here
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise YamlFileError(describe_yaml_error(exc), file=file) from None
    except RecursionError:  # unreachable with the depth limit, kept as a guard
        raise YamlFileError("not valid YAML: nested too deeply", file=file) from None


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """One line: 'not valid YAML at line L, column C: problem'."""
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        return (f"not valid YAML: character U+{code:04X} (character {exc.position} of the file) is not "
                "allowed in YAML; remove control characters and NUL bytes")
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {one_line(problem)}"


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace (newlines included) and clip, so an error message stays one readable line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n / 2**10:g} KiB"
