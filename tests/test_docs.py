"""The README fits a screen's worth of reading and its figures are the measured ones: each row of its
benchmark table is a row of docs/benchmarks.md, where the command and date of every result live; every
relative link in the README and docs/ leads to a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MAX_README_LINES = 200


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| ---")]


def test_the_readme_is_at_most_200_lines():
    assert len(README.read_text().splitlines()) <= MAX_README_LINES


def test_every_benchmark_figure_in_the_readme_is_a_row_of_docs_benchmarks():
    readme = README.read_text()
    section = readme.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    rows = table_rows(section)[1:]  # the header apart
    assert len(rows) >= 3
    measured = set(table_rows((REPO / "docs" / "benchmarks.md").read_text()))
    assert [row for row in rows if row not in measured] == []


def test_relative_links_in_the_readme_and_docs_lead_to_files():
    broken = []
    for page in [README, *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert broken == []
