"""Render a Document as one self-contained HTML page: inline CSS, figures as base64 data URIs, no scripts.

Nothing on the page refers to a file or a network address, so the page can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import re

import pandas as pd

from ._document import Code, Document, Figure, Table

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1300px;
       padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
p.subtitle { color: #555; margin-top: 0; }
nav ol { columns: 2; font-size: 0.95em; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.6em 0 1.4em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f1f3f6; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 0.8em 0 1.6em 0; }
figure img { max-width: 100%; border: 1px solid #e3e3e3; }
figcaption, .caption { font-size: 0.85em; color: #555; margin: 0.3em 0; }
pre { background: #f6f8fa; padding: 0.7em; overflow-x: auto; font-size: 0.85em; white-space: pre-wrap; }
code { background: #f6f8fa; padding: 0 0.2em; }
.scroll { overflow-x: auto; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def inline(text: str) -> str:
    """Escape text, then allow ``code`` spans and **bold** (the only markup paragraphs use)."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def table_html(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for values in frame.itertuples(index=False):
        rows.append("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in values) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def _anchor(index: int) -> str:
    return f"s{index}"


def render_html(doc: Document) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(doc.title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
             f"<h1>{html.escape(doc.title)}</h1>"]
    if doc.subtitle:
        parts.append(f'<p class="subtitle">{inline(doc.subtitle)}</p>')
    parts.append("<nav><ol>" + "".join(f'<li><a href="#{_anchor(i)}">{html.escape(s.title)}</a></li>'
                                       for i, s in enumerate(doc.sections, start=1)) + "</ol></nav>")
    for i, section in enumerate(doc.sections, start=1):
        parts.append(f'<section id="{_anchor(i)}"><h2>{i}. {html.escape(section.title)}</h2>')
        for block in section.blocks:
            parts.append(_block_html(block))
        parts.append("</section>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _block_html(block) -> str:
    if isinstance(block, Figure):
        source = f" Data: <code>{html.escape(block.csv)}</code>." if block.csv else ""
        return (f'<figure><img src="{data_uri(block.png)}" alt="{html.escape(block.caption)}">'
                f"<figcaption>{inline(block.caption)}{source}</figcaption></figure>")
    if isinstance(block, Table):
        source = f" Data: <code>{html.escape(block.csv)}</code>." if block.csv else ""
        return f'<p class="caption">{inline(block.caption)}{source}</p>{table_html(block.frame)}'
    if isinstance(block, Code):
        return f"<pre>{html.escape(block.text)}</pre>"
    return f"<p>{inline(str(block))}</p>"
