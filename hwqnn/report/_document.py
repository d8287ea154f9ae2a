"""A report as plain data (sections of paragraphs, tables, figures, code), rendered to HTML and Markdown.

Keeping the content apart from the two renderers means the HTML page and its Markdown twin always
say the same thing, and tests can check the content without parsing either format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Figure:
    """A PNG figure; ``name`` is its file stem under ``figures/``, ``csv`` the table behind it."""

    name: str
    caption: str
    png: bytes
    csv: str | None = None


@dataclass
class Table:
    """A table shown as is (values already formatted for reading); ``csv`` names the file with raw values."""

    name: str
    caption: str
    frame: pd.DataFrame
    csv: str | None = None


@dataclass
class Code:
    text: str


@dataclass
class Section:
    title: str
    blocks: list[str | Figure | Table | Code] = field(default_factory=list)

    def add(self, *blocks: str | Figure | Table | Code) -> Section:
        self.blocks.extend(blocks)
        return self


@dataclass
class Document:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        section = Section(title)
        self.sections.append(section)
        return section

    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]

    def tables(self) -> list[Table]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Table)]
