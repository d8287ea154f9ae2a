"""``--config FILE``: every long flag of a subcommand read from a YAML or TOML file.

Keys are the long flag names without the dashes (``batch-size`` or ``batch_size``); a flag given on the
command line wins over the file, and the file wins over the built-in default. Values go through the same
``type=`` checks and ``choices`` as the command line, so a bad value in a file reads like a bad flag.
Repeatable flags (``budget``) take a list; switches take true or false; ``null`` keeps the default; paths
are relative to the current directory, as on the command line. TOML needs Python 3.11 (``tomllib``).

How the command line is told apart from defaults: :func:`enable_config_file` wraps each option's default
in :class:`Unset`. After parsing, an attribute that still holds an ``Unset`` was not on the command line;
:func:`apply_config` replaces it with the file's value or the real default before the command runs.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from .. import HwqnnError

YAML_SUFFIXES = (".yaml", ".yml")
TOML_SUFFIXES = (".toml",)


class ConfigFileError(HwqnnError):
    """A --config file is missing, unreadable, not a mapping, or holds an unknown key or a bad value."""


class Unset:
    """A default the command line did not override (shows as the default itself in help)."""

    def __init__(self, value: object):
        self.value = value

    def __str__(self) -> str:
        return str(self.value)

    __repr__ = __str__


def enable_config_file(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` to ``parser`` and make its command read the file before it runs.

    Call it last, after ``set_defaults(func=...)``.
    """
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="read flags from a YAML or TOML file (keys are long flag names, e.g. batch-size); "
                             "flags on the command line override it")
    options = _options(parser)
    for action in {id(a): a for a in options.values()}.values():  # once each: --x and --no-x share one action
        if not isinstance(action, argparse._AppendAction):  # append starts from None: None means not given
            action.default = Unset(action.default)
    command = parser.get_default("func")
    parser.set_defaults(func=functools.partial(_run_with_config, command, parser.prog, options))


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Long option name without dashes -> its action, for every option a file may set."""
    options = {}
    for action in parser._actions:
        if action.default is argparse.SUPPRESS or action.dest == "config":
            continue
        for flag in action.option_strings:
            negative = isinstance(action, argparse.BooleanOptionalAction) and flag.startswith("--no-")
            if flag.startswith("--") and not negative:  # a file writes `single-path: false`, not `no-single-path`
                options[flag[2:]] = action
    return options


def _run_with_config(command: Callable, prog: str, options: dict[str, argparse.Action], args) -> int:
    return command(apply_config(args, options, prog))


def apply_config(args: argparse.Namespace, options: dict[str, argparse.Action], prog: str) -> argparse.Namespace:
    """Fill what the command line left unset from ``args.config`` (if given), then from the defaults."""
    given = read_config(args.config, options) if getattr(args, "config", None) else {}
    for action in {id(a): a for a in options.values()}.values():
        current = getattr(args, action.dest, None)
        if action.dest in given and (isinstance(current, Unset) or current is None):
            setattr(args, action.dest, given[action.dest])
        elif isinstance(current, Unset):
            default = current.value
            if isinstance(default, str) and action.type is not None:
                default = action.type(default)  # what argparse does with string defaults
            setattr(args, action.dest, default)
    return args


def read_config(path_text: str, options: dict[str, argparse.Action]) -> dict[str, object]:
    """The file's values, checked and converted, keyed by argparse ``dest``."""
    raw = _load_mapping(Path(path_text))
    values: dict[str, object] = {}
    for key, value in raw.items():
        name = str(key).strip().replace("_", "-")
        action = options.get(name)
        if action is None:
            valid = ", ".join(sorted(options))
            raise ConfigFileError(f"{path_text}: unknown key {key!r}; valid keys: {valid}")
        if value is None:
            continue  # null: keep the default
        try:
            values[action.dest] = _convert(action, value)
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise ConfigFileError(f"{path_text}: {key}: {exc}") from None
    return values


def _load_mapping(path: Path) -> dict:
    if not path.exists():
        raise ConfigFileError(f"--config {path}: no such file")
    if not path.is_file():
        raise ConfigFileError(f"--config {path}: is a directory; expected a .yaml, .yml or .toml file")
    suffix = path.suffix.lower()
    if suffix not in YAML_SUFFIXES + TOML_SUFFIXES:
        raise ConfigFileError(f"--config {path}: unknown file type {suffix or '(none)'!r}; expected .yaml, .yml "
                              "or .toml")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"--config {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigFileError(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
    data = _parse_toml(path, text) if suffix in TOML_SUFFIXES else _parse_yaml(path, text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"--config {path}: holds a {type(data).__name__}; expected a mapping of flag "
                              "names to values (e.g. epochs: 4)")
    return data


def _parse_yaml(path: Path, text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigFileError(f"--config {path}: invalid YAML{line}: {problem}") from None


def _parse_toml(path: Path, text: str):
    if sys.version_info < (3, 11):
        raise ConfigFileError(f"--config {path}: TOML needs Python 3.11 or newer (tomllib); use a YAML file")
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"--config {path}: invalid TOML: {exc}") from None


def _convert(action: argparse.Action, value: object) -> object:
    """One file value through the flag's own checks."""
    flag = next(f for f in action.option_strings if f.startswith("--"))
    if action.nargs == 0:  # store_true / store_false
        if not isinstance(value, bool):
            raise TypeError(f"{flag} is a switch; expected true or false, got {value!r}")
        if isinstance(action, argparse.BooleanOptionalAction):  # --flag / --no-flag: the value itself
            return value
        return value if action.const is True else not value
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_convert_one(action, flag, item) for item in items]
    separator = getattr(action.type, "separator", None)
    if isinstance(value, list):
        if separator is None or len(value) != 2:
            raise TypeError(f"{flag} takes one value, got the list {value!r}")
        value = separator.join(str(v) for v in value)
    elif separator is not None and isinstance(value, int) and not isinstance(value, bool):
        raise TypeError(f"{flag} got the number {value}; YAML reads an unquoted 2{separator}8 as a number, so "
                        f"quote it (\"2{separator}8\") or write a list [2, 8]")
    return _convert_one(action, flag, value)


def _convert_one(action: argparse.Action, flag: str, value: object) -> object:
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise TypeError(f"{flag} expects a value such as on the command line, got {value!r}")
    converted = action.type(str(value)) if action.type is not None else str(value)
    if action.choices is not None and converted not in action.choices:
        raise ValueError(f"{flag} must be one of {', '.join(map(str, action.choices))}, got {value!r}")
    return converted
