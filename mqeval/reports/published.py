"""The published rows of the paper's tables, read from results/paper/*.csv and labelled as the table specs say."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mqeval.errors import DataIntegrityError
from mqeval.paths import PAPER_RESULTS_DIR
from mqeval.reports.specs import TABLES, TableSpec


@dataclass(frozen=True)
class PublishedRow:
    label: str  # what model cards name in `paper: [{table, row}]`
    title: str
    cells: dict[str, str]  # CSV column -> text exactly as in the CSV ("" where the paper had "-")

    def number(self, column: str) -> Optional[float]:
        text = self.cells.get(column, "")
        return float(text) if text.strip() else None


def read_csv(spec: TableSpec, paper_dir: Path = PAPER_RESULTS_DIR) -> list[dict[str, str]]:
    path = paper_dir / spec.csv
    if not path.is_file():
        raise DataIntegrityError(f"Published table {spec.number} not found at {path}")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def published_rows(spec: TableSpec, paper_dir: Path = PAPER_RESULTS_DIR) -> list[PublishedRow]:
    """Every CSV row, in CSV order, with its label; each declared row must match exactly one CSV row."""
    lines = read_csv(spec, paper_dir)
    if not spec.rows:
        return [PublishedRow(line[spec.label_column], line[spec.label_column], line) for line in lines]
    out = []
    for line in lines:
        hits = [row for row in spec.rows if all(line.get(col) == value for col, value in row.match)]
        if len(hits) != 1:
            raise DataIntegrityError(
                f"{spec.csv}: row {line} matches {len(hits)} declared rows of table {spec.number} (expected 1)"
            )
        out.append(PublishedRow(hits[0].label, hits[0].title or hits[0].label, line))
    if len(out) != len(spec.rows):
        raise DataIntegrityError(f"{spec.csv}: {len(out)} rows for {len(spec.rows)} declared rows")
    return out


def row_labels(paper_dir: Path = PAPER_RESULTS_DIR) -> dict[int, list[str]]:
    """Table number -> its row labels (what cards may name)."""
    return {spec.number: [row.label for row in published_rows(spec, paper_dir)] for spec in TABLES}
