"""argparse ``type=`` functions: a bad value is refused while parsing, with the flag, the value and the
range that would work, before any data is loaded or model trained.

Each raises ``argparse.ArgumentTypeError`` (argparse prefixes the flag's name). Those that take a pair
carry a ``separator`` attribute, so a config file may give the pair as a two-item list.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

#: The bitwidths a slot may take (SearchConfig.bits_range and policies agree on this range).
MIN_BITS, MAX_BITS = 1, 16
#: numpy and scikit-learn seeds are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _integer(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer >= ``minimum``."""

    def parse(text: str) -> int:
        value = _integer(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"int_at_least_{minimum}"
    return parse


def comma_list(text: str) -> list[str]:
    """``a,b,c`` -> ["a", "b", "c"] (blanks dropped); at least one item."""
    items = [part.strip() for part in str(text).split(",") if part.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


def int_list(text: str) -> list[int]:
    """``1,8`` -> [1, 8]: integers >= 1."""
    values = [int_at_least(1)(part) for part in comma_list(text)]
    return values


def seed(text: str) -> int:
    """A random seed in 0..2**32-1 (what numpy and scikit-learn accept)."""
    value = _integer(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, got {value}")
    return value


def fraction(text: str) -> float:
    """A finite number in (0, 1]."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= 1):
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}")
    return value


def non_negative(text: str) -> float:
    """A finite number >= 0."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def fraction_or_off(text: str) -> float | str:
    """A :func:`fraction`, or ``off``."""
    if str(text).strip().lower() in ("off", "none"):
        return "off"
    try:
        return fraction(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1] or 'off', got {text!r}") from None


def device(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (whether it is present is checked when used)."""
    value = str(text).strip().lower()
    if not DEVICE_PATTERN.match(value):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; expected auto, cpu, cuda, cuda:N or mps")
    return value


def _bits(part: str, whole: str, what: str) -> int:
    try:
        value = int(part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what} with integer bits, got {whole!r}") from None
    if not MIN_BITS <= value <= MAX_BITS:
        raise argparse.ArgumentTypeError(f"bits must be between {MIN_BITS} and {MAX_BITS}, got {value} in {whole!r}")
    return value


def bits_pair(text: str) -> tuple[int, int]:
    """``W/A``: weight and activation bits of the uniform baseline, e.g. ``4/8``."""
    parts = str(text).split("/")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected W/A such as 4/8, got {text!r}")
    return _bits(parts[0], text, "W/A such as 4/8"), _bits(parts[1], text, "W/A such as 4/8")


bits_pair.separator = "/"


def bits_range(text: str) -> tuple[int, int]:
    """``MIN:MAX`` of the learned bitwidths, e.g. ``2:8``."""
    parts = str(text).split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX such as 2:8, got {text!r}")
    low, high = (_bits(p, text, "MIN:MAX such as 2:8") for p in parts)
    if low > high:
        raise argparse.ArgumentTypeError(f"MIN must be <= MAX, got {text!r} (did you mean {high}:{low}?)")
    return low, high


bits_range.separator = ":"


def budget(text: str):
    """A budget such as ``latency=2ms`` or ``size=0.5x``, parsed once, here, into a typed ``Budget``."""
    from .. import BudgetError, parse_budget

    try:
        return parse_budget(text)
    except BudgetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _registered(lookup_name: str):
    """A ``type=`` checker: the name must be found by ``hwqnn.<lookup_name>`` when the flag is parsed."""

    def check(text: str) -> str:
        import hwqnn

        try:
            getattr(hwqnn, lookup_name)(text)
        except hwqnn.HwqnnError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return str(text)

    return check


#: A registered search strategy (``search``, ``uniform``, ...).
method = _registered("get_strategy")
#: A registered quantizing scheme (``uniform``, ``pot``, ...).
scheme = _registered("get_scheme")


def add_model_data_arguments(p: argparse.ArgumentParser) -> None:
    """The model and data flags of every command that trains (search, pareto, report)."""
    p.add_argument("--model", default=None,
                   help="zoo model, or your own as package.module:factory or path/to/file.py:factory returning an "
                        "nn.Module (default: tiny_cnn for digits, resnet20 for 32x32 colour images)")
    p.add_argument("--data", default="digits",
                   help="digits (embedded), cifar10 (--data-dir), or your own as package.module:factory or "
                        "path/to/file.py:factory returning (train, test) datasets")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 .npz file or folder (passed to a data factory as data_dir)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="also read the CIFAR-10 python batches, which are pickles (read with a restricted unpickler); "
                        "without it only .npz files are read")
