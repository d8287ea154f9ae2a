"""Parser conventions shared by the subcommands: help that states each default once, and usage errors
as one line.

``HelpFormatter`` appends ``(default: X)`` only where the help text does not already speak of a default
and there is a default worth stating (not None, not False, not empty). ``one_line_errors`` makes a
subcommand's parser report a bad flag as ``hwqnn search: error: argument --seed: must be >= 0, got -1``
instead of a many-line usage block followed by the error.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """ArgumentDefaultsHelpFormatter that never repeats a default the help already spells out."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = getattr(action.default, "value", action.default)  # config-file tracking wraps defaults
        if "default" in text.lower() or "%(default)" in text:
            return text
        if default is argparse.SUPPRESS or default is None or default is False or default == [] or default == "":
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        return f"{text} (default: {_shown(default)})"


def _shown(default: object) -> str:
    text = str(default)
    return text.replace("%", "%%")  # argparse %-formats help strings


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make ``parser`` print ``PROG: error: MESSAGE`` (one line) and exit 2 on a usage error."""

    def error(message: str) -> NoReturn:
        print(f"{parser.prog}: error: {' '.join(str(message).split())} (see {parser.prog} --help)", file=sys.stderr)
        sys.exit(2)

    parser.error = error  # type: ignore[method-assign]
    return parser
