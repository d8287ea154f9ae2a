"""Render a Document as Markdown: the twin of the HTML page, with figures as files under ``figures/``."""

from __future__ import annotations

import pandas as pd

from ._document import Code, Document, Figure, Table

FIGURE_DIR = "figures"


def table_markdown(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def render_markdown(doc: Document) -> str:
    parts = [f"# {doc.title}", ""]
    if doc.subtitle:
        parts += [doc.subtitle, ""]
    for i, section in enumerate(doc.sections, start=1):
        parts += [f"## {i}. {section.title}", ""]
        for block in section.blocks:
            parts += [_block_markdown(block), ""]
    return "\n".join(parts).rstrip() + "\n"


def _block_markdown(block) -> str:
    if isinstance(block, Figure):
        source = f" Data: `{block.csv}`." if block.csv else ""
        return f"![{block.caption}]({FIGURE_DIR}/{block.name}.png)\n\n*{block.caption}*{source}"
    if isinstance(block, Table):
        source = f" Data: `{block.csv}`." if block.csv else ""
        return f"{block.caption}{source}\n\n{table_markdown(block.frame)}"
    if isinstance(block, Code):
        return f"```\n{block.text}\n```"
    return str(block)
