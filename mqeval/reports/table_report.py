"""A rendered-to-be table: display strings, tidy data, notes, pictures and the runs it shows."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mqeval.results.run import Run

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class TableReport:
    title: str
    frame: "pd.DataFrame"  # display strings
    data: "pd.DataFrame"  # tidy: one line per (row, column, variant)
    notes: list[str] = field(default_factory=list)
    name: str = ""  # file-name stem of pictures written for this table
    figures: list[Path] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)  # the runs whose numbers the table shows
