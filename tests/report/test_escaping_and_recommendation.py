"""User-controlled names reach report.md and report.html escaped; both show the recommended point per target.

The report is assembled from hand-made targets (no training): a model, point and layer names carrying
HTML (``<script>``), a table pipe and Markdown link syntax.
"""

import re

import pandas as pd
import pytest
import yaml

from hwqnn.pareto import mark_fronts, points_frame
from hwqnn.report import Code, Document, Figure, Table, TargetRuns, assemble, render_html, render_markdown

SCRIPT = "<script>alert(1)</script>"
PIPE = "a|b"
LINK = "[click](http://example.com)"
W8A8 = {"latency_s": 2e-3, "energy_j": 1e-3, "size_bytes": 4096.0, "peak_memory_bytes": 8192.0}


def markdown_outside_code(markdown: str) -> str:
    """The Markdown a viewer interprets: fenced blocks and code spans (shown literally) and the report's
    own figure links removed."""
    text = re.sub(r"^(`{3,})\n.*?\n\1$", "", markdown, flags=re.S | re.M)
    text = re.sub(r"^!\[(?:\\.|[^\]\\])*\]\(figures/[\w.-]+\.png\)$", "", text, flags=re.M)
    return re.sub(r"(`+)(.+?)\1", "", text)


def assert_inert(markdown: str) -> None:
    """No raw HTML, no bare ampersand, no link syntax, outside code."""
    live = markdown_outside_code(markdown)
    assert "<" not in live and ">" not in live, [line for line in live.splitlines() if "<" in line or ">" in line]
    assert not re.search(r"&(?!(amp|lt|gt);)", live)
    assert not re.search(r"(?<!\\)\[[^\]]*(?<!\\)\]\(", live), "a user string became a link"


def assert_tables_keep_their_columns(markdown: str) -> None:
    """Every row of a table has as many cells as its header (an unescaped pipe would add one)."""
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert rows
    table_width = None
    for line in rows:
        cells = len(re.split(r"(?<!\\)\|", line)) - 2
        if line.startswith("|---"):
            continue
        if table_width is None or line == rows[0] or _is_header(line, markdown):
            table_width = cells
        assert cells == table_width, line


def _is_header(line: str, markdown: str) -> bool:
    lines = markdown.splitlines()
    index = lines.index(line)
    return index + 1 < len(lines) and lines[index + 1].startswith("|---")


def test_markdown_escapes_every_user_string_of_a_document():
    evil = f"{SCRIPT} {PIPE} {LINK} a & b `tick` *star*"
    doc = Document(f"model {evil}", f"sub {evil}")
    doc.section(f"section {evil}").add(
        f"paragraph {evil} with `code {SCRIPT}` and **bold {SCRIPT}**",
        Table("t", f"caption {evil}", pd.DataFrame({f"col {PIPE}": [evil, "plain"], "other": [1, PIPE]}),
              "csv/t.csv"),
        Figure("f", f"figure {evil}", b"\x89PNG", "csv/f.csv"),
        Code(f"hwqnn search --out {SCRIPT} ```"))
    markdown = render_markdown(doc)
    assert_inert(markdown)
    assert_tables_keep_their_columns(markdown)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown and "a\\|b" in markdown
    assert f"`code {SCRIPT}`" in markdown, "a code span shows its content literally"
    assert "**bold &lt;script&gt;" in markdown, "the Document's own bold markup survives"
    assert f"````\nhwqnn search --out {SCRIPT} ```\n````" in markdown, "the fence outgrows the backticks inside"


def test_stray_backticks_and_pipes_are_escaped_and_code_spans_outgrow_their_backticks():
    doc = Document("t")
    doc.section("s").add("file `a`b|c`", Table("t", "cap", pd.DataFrame({"x": [1]}), "csv/odd`name.csv"))
    markdown = render_markdown(doc)
    assert_inert(markdown)
    assert "`a`b\\|c\\`" in markdown  # the markup closes at the second backtick; the rest is text
    assert "``csv/odd`name.csv``" in markdown


@pytest.fixture
def evil_groups(tmp_path):
    """Two targets whose model, point and layer names carry HTML, a pipe and link syntax."""
    run = tmp_path / "run"
    run.mkdir()
    layers = {name: {"w_scheme": "uniform", "w_bits": 4, "a_scheme": "uniform", "a_bits": 8}
              for name in (SCRIPT, PIPE, LINK)}
    (run / "policy.yaml").write_text(yaml.safe_dump({"layers": layers}))
    meta = {"model": f"{SCRIPT} {PIPE}", "sweep": "size=0.5x:0.8x:2", "command": f"hwqnn search --model '{SCRIPT}'"}

    def group(target, rows, fixed=""):
        frame = points_frame([{"name": n, "kind": k, "status": "ok", "target": target, "accuracy": a,
                               "budget": (f"size={f}x" + (f",{fixed}" if fixed else "")) if k == "search" else "",
                               **{c: f * v for c, v in W8A8.items()}, **{f"w8a8_{c}": v for c, v in W8A8.items()}}
                              for n, k, a, f in rows])
        return TargetRuns(target, mark_fronts(frame), metas=[meta])

    bitfusion = group("bitfusion", [(f"01-{PIPE}", "search", 80.0, 0.8), (f"02-{SCRIPT}", "search", 78.0, 0.5),
                                    ("w8a8", "uniform", 82.0, 1.0)], fixed="latency=0.7x")
    bitfusion.run_dirs[f"02-{SCRIPT}"] = run
    jetson = group("jetson-orin-nano", [(LINK, "search", 70.0, 0.5), ("w8a8", "uniform", 82.0, 1.0)])
    return [bitfusion, jetson]


def test_report_from_evil_names_is_inert_in_both_formats(evil_groups):
    doc, _ = assemble(evil_groups, command=f"hwqnn report --title '{SCRIPT}'")
    markdown, page = render_markdown(doc), render_html(doc)
    assert_inert(markdown)
    assert_tables_keep_their_columns(markdown)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert markdown.count("&lt;script&gt;") >= 3  # the title, a point and a layer name at least


def test_both_formats_state_the_recommended_point_of_each_target(evil_groups):
    doc, raw = assemble(evil_groups)
    assert doc.sections[0].title == "Recommended policy per target"
    recommended = raw["recommended"].set_index("target")
    # bitfusion: every searched point was held to latency=0.7x; only 02 (0.5x) meets it.
    assert recommended.loc["bitfusion", "recommended point"] == f"02-{SCRIPT}"
    assert "meeting latency=0.7x" in recommended.loc["bitfusion", "rule"]
    # jetson: a single searched point with size=0.5x, the budget it was held to; w8a8 (1x) is over it.
    assert recommended.loc["jetson-orin-nano", "recommended point"] == LINK
    markdown, page = render_markdown(doc), render_html(doc)
    assert "**bitfusion**: `02-<script>alert(1)</script>` (search), 78.00 % top-1" in markdown
    assert "<strong>bitfusion</strong>: <code>02-&lt;script&gt;alert(1)&lt;/script&gt;</code> (search)" in page
    for text in (markdown, page):
        assert "Recommended policy per target" in text and "knee" in text
        assert "0.50x w8a8" in text


def test_a_sweep_without_common_budgets_recommends_the_knee():
    rows = [("01-size-0.8x", "search", 80.0, 0.8), ("02-size-0.5x", "search", 78.0, 0.5),
            ("03-size-0.2x", "search", 30.0, 0.2), ("w8a8", "uniform", 82.0, 1.0)]
    frame = points_frame([{"name": n, "kind": k, "status": "ok", "target": "bitfusion", "accuracy": a,
                           "budget": f"size={f}x" if k == "search" else "", **{c: f * v for c, v in W8A8.items()},
                           **{f"w8a8_{c}": v for c, v in W8A8.items()}} for n, k, a, f in rows])
    group = TargetRuns("bitfusion", mark_fronts(frame), metas=[{"sweep": "size=0.2x:0.8x:3"}])
    _, raw = assemble([group])
    row = raw["recommended"].iloc[0]
    # scaled (error, size) on the front: 03 (1, 0), 02 (0.077, 0.375), 01 (0.038, 0.75), w8a8 (0, 1)
    assert row["recommended point"] == "02-size-0.5x" and "knee of the accuracy/size front" in row["rule"]
