"""Render a Document as Markdown: the twin of the HTML page, with figures as files under ``figures/``.

Names in a report come from users (models, layers, targets, points, commands), so every string is
escaped as the HTML page escapes it: ``<``, ``>`` and ``&`` become entities (no raw HTML reaches a
Markdown viewer), and the characters Markdown reads as syntax (the table pipe, backticks, brackets
that would make links, emphasis stars, backslashes) are backslash-escaped. Paragraphs and captions
keep the Document's own markup, ``code`` spans and **bold**, as the HTML renderer does; a code span's
content is shown literally, fenced with more backticks than it holds.
"""

from __future__ import annotations

import re

import pandas as pd

from ._document import Code, Document, Figure, Table

FIGURE_DIR = "figures"

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: Markdown syntax characters that plain text must not trigger (backslash first, so escapes stay escapes).
_SYNTAX = re.compile(r"([\\`*\[\]|])")
#: The Document's inline markup: ``code`` spans and **bold** (which may hold code spans).
_MARKUP = re.compile(r"`(?P<code>[^`]+)`|\*\*(?P<bold>[^*]+?)\*\*")


def escape(text: str) -> str:
    """Plain text made inert in Markdown: entities for ``& < >``, backslashes before syntax characters."""
    text = " ".join(str(text).splitlines())
    text = _SYNTAX.sub(r"\\\1", text)
    return "".join(_ENTITIES.get(ch, ch) for ch in text)


def code_span(text: str, in_table: bool = False) -> str:
    """``text`` as a literal code span: fenced by one more backtick than its longest run of backticks."""
    text = " ".join(str(text).splitlines())
    if in_table:
        text = text.replace("|", "\\|")  # GitHub splits table cells on a pipe even inside a code span
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def inline(text: str) -> str:
    """A paragraph or caption: its ``code`` and **bold** markup kept, everything else escaped."""
    parts, position = [], 0
    for match in _MARKUP.finditer(text):
        parts.append(escape(text[position:match.start()]))
        if match["code"] is not None:
            parts.append(code_span(match["code"]))
        else:
            parts.append(f"**{inline(match['bold'])}**")
        position = match.end()
    parts.append(escape(text[position:]))
    return "".join(parts)


def code_block(text: str) -> str:
    """A fenced block shown literally: the fence is longer than any backtick run inside."""
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}\n{text}\n{fence}"


def table_markdown(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        return escape(str(value))

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def render_markdown(doc: Document) -> str:
    parts = [f"# {escape(doc.title)}", ""]
    if doc.subtitle:
        parts += [inline(doc.subtitle), ""]
    for i, section in enumerate(doc.sections, start=1):
        parts += [f"## {i}. {escape(section.title)}", ""]
        for block in section.blocks:
            parts += [_block_markdown(block), ""]
    return "\n".join(parts).rstrip() + "\n"


def _source(csv: str | None) -> str:
    return f" Data: {code_span(csv)}." if csv else ""


def _block_markdown(block) -> str:
    if isinstance(block, Figure):
        return (f"![{escape(block.caption)}]({FIGURE_DIR}/{block.name}.png)\n\n"
                f"*{inline(block.caption)}*{_source(block.csv)}")
    if isinstance(block, Table):
        return f"{inline(block.caption)}{_source(block.csv)}\n\n{table_markdown(block.frame)}"
    if isinstance(block, Code):
        return code_block(block.text)
    return inline(str(block))
