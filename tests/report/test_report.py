"""The report from real run and sweep directories: self-contained HTML, Markdown twin, CSVs, content."""

import base64
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

import cost_models
from hwqnn.errors import RunDirError
from hwqnn.report import Code, Document, Figure, Table, build_report, collect_targets, render_html
from hwqnn.report._tables import profile_rows, representative_point


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.links, self.open = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs)
        for key in ("src", "href"):
            if key in attrs and tag != "img":
                self.links.append(attrs[key])
        if tag not in ("meta", "img", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()


@pytest.fixture(scope="module")
def report(run_dirs, sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    page = build_report([*run_dirs, sweep[0]], out, command="hwqnn report --from ... (test)")
    return out, page


def test_html_parses_and_embeds_every_figure(report):
    out, page = report
    text = page.read_text()
    parser = _Collector()
    parser.feed(text)
    parser.close()
    assert parser.open == []  # every element closed, properly nested
    assert "script" not in parser.tags and "link" not in parser.tags
    assert len(parser.images) == 3  # fronts, bit heatmaps, layer costs
    for image in parser.images:
        assert image["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.get("alt")
    assert all(link.startswith("#") for link in parser.links), parser.links  # in-page anchors only
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|file:|[\w./-]+\.(png|svg|csv|css|js))", text)


def test_markdown_twin_and_csvs_exist_for_everything_referenced(report):
    out, _ = report
    markdown = (out / "report.md").read_text()
    figures = re.findall(r"\]\((figures/[\w.-]+\.png)\)", markdown)
    assert len(figures) == 3
    for path in figures:
        assert (out / path).read_bytes()[:4] == b"\x89PNG"
    csvs = set(re.findall(r"`(csv/[\w.-]+\.csv)`", markdown))
    assert {"csv/fronts.csv", "csv/policies.csv", "csv/layer_costs.csv", "csv/profiles.csv",
            "csv/best_at_budgets.csv", "csv/sweep_cost.csv"} <= csvs
    for path in csvs:
        assert not pd.read_csv(out / path).empty, path


def test_content_covers_the_six_parts(report):
    out, page = report
    text = page.read_text()
    for title in ("Summary per target", "Pareto fronts, all targets", "Per-layer policies",
                  "Per-layer cost breakdown", "Hardware profiles used", "Reproduction", "Searched vs uniform",
                  "Sweep cost"):
        assert title in text, title
    best = pd.read_csv(out / "csv/best_at_budgets.csv")
    assert set(best["target"]) == {"bitfusion", "jetson-orin-nano"}
    assert (best.dropna(subset=["speedup_vs_w8a8"])["speedup_vs_w8a8"] > 0).all()
    fronts = pd.read_csv(out / "csv/fronts.csv")
    assert {"on_front", "on_front_latency", "on_front_size"} <= set(fronts.columns)
    layers = pd.read_csv(out / "csv/layer_costs.csv")
    assert set(layers["bound"]) <= {"compute", "memory"}
    assert (layers["overhead_s"] >= 0).all()
    profiles = pd.read_csv(out / "csv/profiles.csv")
    assert "Horowitz" in " ".join(profiles["source"].dropna())
    assert "hwqnn report --from ... (test)" in text
    assert "torch" in text and "Seed(s): 0" in text


def test_run_dirs_and_sweeps_group_by_target(run_dirs, sweep):
    groups = {g.target: g for g in collect_targets([*run_dirs, sweep[0]])}
    assert set(groups) == {"bitfusion", "jetson-orin-nano"}
    bitfusion = groups["bitfusion"]
    assert len(bitfusion.points) == 1 + len(sweep[1].points)
    assert representative_point(bitfusion) == "01-size-0.5x"  # the tightest searched budget with a policy
    assert list(groups["jetson-orin-nano"].points["name"]) == ["w4a4"]


def test_every_profile_number_has_a_source():
    rows = profile_rows(cost_models.load_profile("jetson-orin-nano"))
    numbers = rows[~rows["field"].isin(["type", "fallback"])]
    assert not numbers.empty
    assert (numbers["source"].str.len() > 0).all(), numbers[numbers["source"] == ""]


def test_html_escapes_text_and_keeps_figures_inline():
    doc = Document("t <b>", "sub")
    doc.section("s & s").add("a <script>alert(1)</script> `code` **bold**",
                             Table("x", "cap", pd.DataFrame({"a<": ["<i>"]})), Code("<pre>"),
                             Figure("f", "fig", b"\x89PNG fake"))
    text = render_html(doc)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<code>code</code>" in text and "<strong>bold</strong>" in text
    assert "&lt;i&gt;" in text and "s &amp; s" in text
    assert 'src="data:image/png;base64,' in text


def test_empty_or_unknown_sources_fail_clearly(tmp_path):
    with pytest.raises(RunDirError, match="is empty"):
        collect_targets([tmp_path])
    with pytest.raises(RunDirError, match="no such directory"):
        collect_targets([tmp_path / "missing"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(RunDirError, match="holds no sweep.json or metrics.json"):
        collect_targets([tmp_path])
    with pytest.raises(RunDirError, match="is a file"):
        collect_targets([tmp_path / "notes.txt"])
