"""One paper table as a pandas report: published number, measured number (+95% CI) and their difference per cell.

Rows are the published rows; a row's runs are those of the model cards that name it in their `paper` field
(zoo_index). The small-scale twin of an ablation table measures the same rows on cards trained on `shapes`.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from mqeval.extras import require
from mqeval.paths import MODEL_ZOO_DIR, PAPER_RESULTS_DIR
from mqeval.reports.columns import (
    MISSING,
    NO_CARD,
    NOT_RUN,
    ColumnResult,
    add_paired_columns,
    measure_column,
)
from mqeval.reports.intervals import IntervalCache
from mqeval.reports.published import published_rows
from mqeval.results.run import Run
from mqeval.reports.specs import SMALL_SCALE_NOTE, ColumnSpec, TableSpec
from mqeval.reports.table_report import TableReport

__all__ = ["TableReport", "ZooIndex", "zoo_index", "build_paper_table", "build_small_scale_table"]


TWIN_TAG = "small-scale-of:"  # a card tagged "small-scale-of:<table>/<row>" is that row's small-scale twin


@dataclass(frozen=True)
class ZooIndex:
    paper: dict[tuple[int, str], list[str]]  # (table, row label) -> the cards that reproduce it
    twins: dict[tuple[int, str], str]  # (table, row label) -> the card tagged as its small-scale twin
    settings: dict[str, str] = field(default_factory=dict)  # card -> one-line summary of what the ablations vary


def zoo_index(zoo_dir: Path = MODEL_ZOO_DIR) -> ZooIndex:
    """Read every card once: which paper rows it reproduces, which row it is the small-scale twin of."""
    from mqeval.errors import ConfigError
    from mqeval.zoo import card_names, load_card

    paper: dict[tuple[int, str], list[str]] = defaultdict(list)
    twins: dict[tuple[int, str], str] = {}
    settings: dict[str, str] = {}
    for name in card_names(zoo_dir):
        card = load_card(name, zoo_dir)
        settings[name] = card_setting(card)
        for row in card.paper:
            paper[(row.table, row.row)].append(name)
        for tag in card.tags:
            if tag.startswith(TWIN_TAG):
                table, _, row = tag[len(TWIN_TAG):].partition("/")
                key = (int(table), row)
                if key in twins and twins[key] != name:
                    raise ConfigError(f"model_zoo: both {twins[key]} and {name} are tagged {tag}")
                twins[key] = name
    return ZooIndex(dict(paper), twins, settings)


def card_setting(card) -> str:
    """What Tables 1-3 and 7 vary, in one line (the card's kind says it)."""
    from mqeval.model.kinds import kind_of

    return kind_of(card).summary(card)


def _runs_for(cards: list[str], column: ColumnSpec, runs: list[Run], named: frozenset[str] = frozenset()) -> list[Run]:
    """Runs of these cards on the column's benchmark or on a variant of it that no other column of the table names."""
    return [
        run
        for run in runs
        if run.card in cards
        and (
            run.benchmark_name == column.benchmark
            or (run.variant_of == column.benchmark and run.benchmark_name not in named)
        )
        and isinstance(run.metrics.get(column.metric), (int, float))
        and (column.decoder is None or run.decoder_family in (None, column.decoder))
    ]


def _assemble(title, name, index, first: dict[str, dict[str, str]], results: list[ColumnResult], notes) -> TableReport:
    pd = require("pandas", "reports", "The paper tables")

    columns: dict[str, dict[str, str]] = dict(first)
    records, all_notes, shown = [], list(notes), {}
    for result in results:
        shown.update({str(run.path): run for run in result.chosen.values()})
        for col in result.names:
            columns[col] = result.cells[col]
        records += result.records
        all_notes += [n for n in result.notes if n not in all_notes]
    frame = pd.DataFrame({col: [cells.get(label, "") for label in index] for col, cells in columns.items()},
                         index=index)
    frame.index.name = "row"
    data = pd.DataFrame.from_records(records)
    return TableReport(title, frame, data, all_notes, name, runs=list(shown.values()))


def build_paper_table(
    spec: TableSpec,
    runs: list[Run],
    cache: IntervalCache,
    cards: Optional[dict[tuple[int, str], list[str]]] = None,
    paper_dir: Path = PAPER_RESULTS_DIR,
) -> TableReport:
    cards = zoo_index().paper if cards is None else cards
    rows = published_rows(spec, paper_dir)
    by_label = {row.label: row for row in rows}
    labels = [row.label for row in rows]
    with_cards = {label for label in labels if cards.get((spec.number, label))}
    first = {"method": {row.label: row.title for row in rows}}
    for info in spec.info_columns:
        first[info] = {row.label: row.cells.get(info, "") or MISSING for row in rows}
    results = []
    named = frozenset(c.benchmark for c in spec.columns)
    for column in spec.columns:
        row_runs = {label: _runs_for(cards.get((spec.number, label), []), column, runs, named) for label in labels}
        result = measure_column(column, row_runs, cache, by_label, with_cards)
        if spec.reference_row:
            add_paired_columns(result, column, spec.reference_row, cache)
        results.append(result)
    notes = list(spec.notes)
    if len(with_cards) < len(labels):
        notes.append(f"{NO_CARD}: another method's row (published numbers only). {NOT_RUN}: no run in the runs folder.")
    title = f"Table {spec.number}: {spec.title}"
    report = _assemble(title, f"table{spec.number}", labels, first, results, notes)
    if len(report.data):
        report.data.insert(0, "table", spec.number)
    return report


def build_small_scale_table(
    spec: TableSpec, runs: list[Run], cache: IntervalCache, zoo: Optional[ZooIndex] = None
) -> Optional[TableReport]:
    """The ablation table measured on its small-scale twins; None when the spec has none or no twin has a run.

    Twins come from the spec's `small_scale` mapping; a card tagged `small-scale-of:<table>/<row>` overrides it."""
    if not spec.small_scale:
        return None
    zoo = zoo_index() if zoo is None else zoo
    mapping = dict(spec.small_scale)
    mapping.update({row: card for (table, row), card in zoo.twins.items() if table == spec.number and row in mapping})
    if not any(run.card in mapping.values() for run in runs):
        return None
    labels = list(mapping)
    titles = {row.label: row.title for row in published_rows(spec)}
    existing = {label for label in labels if mapping[label] in zoo.settings}
    first = {
        "method": {label: titles.get(label, label) for label in labels},
        "card": mapping,
        "setting": {label: zoo.settings.get(mapping[label], "no such card yet") for label in labels},
    }
    reference = spec.small_scale_reference or spec.reference_row
    results = []
    for column in spec.small_scale_columns:
        row_runs = {label: _runs_for([mapping[label]], column, runs) for label in labels}
        result = measure_column(column, row_runs, cache, rows_with_cards=existing)
        if reference:
            add_paired_columns(result, column, reference, cache)
        results.append(result)
    notes = [SMALL_SCALE_NOTE, *spec.small_scale_notes]
    if len(existing) < len(labels):
        notes.append(f"{NO_CARD}: the twin card is not in model_zoo yet.")
    title = f"Table {spec.number} (small-scale twin, NOT the paper's setting): {spec.title}"
    report = _assemble(title, f"table{spec.number}_small_scale", labels, first, results, notes)
    if len(report.data):
        report.data.insert(0, "table", f"{spec.number}-small-scale")
    return report
