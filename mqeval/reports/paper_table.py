"""One paper table as a pandas report: published number, measured number (+95% CI) and their difference per cell.

Rows are the published rows; a row's runs are those of the model cards that name it in their `paper` field. Runs
whose benchmark version, data, prompt set or scorer differ never share a column: each such variant gets its own
measured column and a note says why.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from mqeval.paths import MODEL_ZOO_DIR, PAPER_RESULTS_DIR
from mqeval.reports.intervals import IntervalCache
from mqeval.reports.published import PublishedRow, published_rows
from mqeval.reports.runs import CompatKey, Run
from mqeval.reports.specs import SMALL_SCALE_NOTE, ColumnSpec, TableSpec

NOT_RUN = "not run"
NO_CARD = "—"  # a row of another method: published numbers only
NOT_COMPARABLE = "n/c"
WARNED = " !"  # appended to a measured cell whose run recorded warnings
MISSING = "-"  # the paper printed no number


@dataclass
class TableReport:
    title: str
    frame: "object"  # pandas.DataFrame of display strings
    data: "object"  # pandas.DataFrame, tidy: one line per (row, column, variant)
    notes: list[str] = field(default_factory=list)
    name: str = ""  # file-name stem of pictures written for this table
    figures: list[Path] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)  # the runs whose numbers the table shows


TWIN_TAG = "small-scale-of:"  # a card tagged "small-scale-of:<table>/<row>" is that row's small-scale twin


@dataclass(frozen=True)
class ZooIndex:
    paper: dict[tuple[int, str], list[str]]  # (table, row label) -> the cards that reproduce it
    twins: dict[tuple[int, str], str]  # (table, row label) -> the card tagged as its small-scale twin


def zoo_index(zoo_dir: Path = MODEL_ZOO_DIR) -> ZooIndex:
    """Read every card once: which paper rows it reproduces, which row it is the small-scale twin of."""
    from mqeval.errors import ConfigError
    from mqeval.zoo import card_names, load_card

    paper: dict[tuple[int, str], list[str]] = defaultdict(list)
    twins: dict[tuple[int, str], str] = {}
    for name in card_names(zoo_dir):
        card = load_card(name, zoo_dir)
        for row in card.paper:
            paper[(row.table, row.row)].append(name)
        for tag in card.tags:
            if tag.startswith(TWIN_TAG):
                table, _, row = tag[len(TWIN_TAG):].partition("/")
                key = (int(table), row)
                if key in twins and twins[key] != name:
                    raise ConfigError(f"model_zoo: both {twins[key]} and {name} are tagged {tag}")
                twins[key] = name
    return ZooIndex(dict(paper), twins)


def required_prompt_set(column: ColumnSpec, row: Optional[PublishedRow]) -> str:
    rule = column.prompt_set or "original"
    if rule.startswith("flag:"):
        flag = row.cells.get(rule[len("flag:"):], "").strip().lower() if row else ""
        return "rewritten" if flag == "true" else "original"
    return rule


def fmt(value: Optional[float], decimals: int, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _variant_labels(keys: list[CompatKey]) -> dict[CompatKey, str]:
    if len(keys) <= 1:
        return {k: "" for k in keys}
    fields = [f for f in CompatKey.__dataclass_fields__ if len({getattr(k, f) for k in keys}) > 1]
    names = {"version": "v", "prompt_set": "", "scorer_version": "scorer ", "data_sha256": "data ", "scorer_weights": "weights "}
    labels = {}
    for key in keys:
        parts = []
        for f in fields:
            value = str(getattr(key, f))
            value = value[:8] if f in ("data_sha256", "scorer_weights") else value
            if f == "prompt_set":
                parts.append(f"{value} prompts")
            elif f == "limit":
                parts.append("all samples" if value == "all" else f"first {value} samples")
            else:
                parts.append(f"{names.get(f, '')}{value}")
        labels[key] = ", ".join(parts)
    return labels


@dataclass
class _ColumnResult:
    names: list[str]
    cells: dict[str, dict[str, str]]  # display column -> row label -> text
    records: list[dict]
    notes: list[str]
    chosen: dict[tuple[str, str], Run] = field(default_factory=dict)  # (variant label, row label) -> run


def measure_column(
    column: ColumnSpec,
    row_runs: dict[str, list[Run]],
    cache: IntervalCache,
    published: Optional[dict[str, PublishedRow]] = None,
    rows_with_cards: Optional[set[str]] = None,
) -> _ColumnResult:
    """Measured (and, with `published`, paper and difference) display columns of one column spec."""
    labels = list(row_runs)
    arrow = "↑" if column.higher_is_better else "↓"
    head = f"{column.title} {arrow}"
    rows_with_cards = set(labels) if rows_with_cards is None else rows_with_cards
    notes: list[str] = []
    by_key: dict[CompatKey, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for label, runs in row_runs.items():
        for run in runs:
            by_key[run.compat_key][label].append(run)
    keys = sorted(by_key, key=lambda k: (-sum(len(v) for v in by_key[k].values()), k.short()))
    variant = _variant_labels(keys)
    if len(keys) > 1:
        reasons = "; ".join(keys[0].describe_difference(k) for k in keys[1:])
        notes.append(f"{column.title}: measured runs differ ({reasons}); shown in {len(keys)} separate columns, never one.")
    result = _ColumnResult([], defaultdict(dict), [], notes)
    if published is not None:
        name = f"{head} paper"
        result.names.append(name)
        for label in labels:
            text = published[label].cells.get(column.key, "").strip()
            result.cells[name][label] = text or MISSING
    for key in keys or [None]:
        suffix = f" [{variant[key]}]" if key is not None and variant[key] else ""
        ours, delta = f"{head} ours{suffix}", f"{head} Δ{suffix}"
        result.names.append(ours)
        if published is not None:
            result.names.append(delta)
        for label in labels:
            runs = by_key[key].get(label, []) if key is not None else []
            if label not in rows_with_cards or not runs:
                result.cells[ours][label] = NOT_RUN if label in rows_with_cards else NO_CARD
                result.cells[delta][label] = ""
                continue
            run = max(runs, key=lambda r: (r.created, r.run_id))
            if len(runs) > 1:
                notes.append(
                    f"{column.title}, {label}: {len(runs)} compatible runs; showing the latest ({run.run_id})."
                )
            result.chosen[(variant[key], label)] = run
            value = run.metrics[column.metric] * column.scale
            intervals, why = cache.get(run)
            interval = intervals.get(column.metric)
            text = fmt(value, column.decimals)
            if interval is not None:
                lo, hi = interval.low * column.scale, interval.high * column.scale
                text += f" [{fmt(lo, column.decimals)}, {fmt(hi, column.decimals)}]"
            elif why:
                notes.append(f"{column.title} ({run.run_id}): {why}.")
            if run.warnings:
                text += WARNED
                warned = f"!: run {run.run_id} ({run.card}) is not the protocol's: {'; '.join(run.warnings)}"
                if warned not in notes:
                    notes.append(warned)
            result.cells[ours][label] = text
            record = {
                "row": label,
                "column": column.key,
                "title": column.title,
                "higher_is_better": column.higher_is_better,
                "variant": variant[key],
                "measured": value,
                "ci_low": interval.low * column.scale if interval else None,
                "ci_high": interval.high * column.scale if interval else None,
                "run_id": run.run_id,
                "card": run.card,
                "benchmark": key.benchmark,
                "benchmark_version": key.version,
                "prompt_set": key.prompt_set,
                "scorer": f"{key.scorer} {key.scorer_version}".strip(),
                "status": "measured",
                "warnings": "; ".join(run.warnings),
            }
            if published is not None:
                pub = published[label].number(column.key)
                need = required_prompt_set(column, published[label])
                record.update(published=pub, published_prompt_set=need, difference=None)
                if pub is None:
                    result.cells[delta][label] = ""
                elif key.prompt_set != need:
                    result.cells[delta][label] = NOT_COMPARABLE
                    notes.append(
                        f"{column.title}, {label}: published with {need} prompts, run {run.run_id} used "
                        f"{key.prompt_set} prompts: no difference computed ({NOT_COMPARABLE})."
                    )
                else:
                    record["difference"] = round(value - pub, 10)
                    result.cells[delta][label] = fmt(record["difference"], column.decimals, signed=True)
            result.records.append(record)
    measured = {label for _, label in result.chosen}
    for label in labels:  # published-only lines of the tidy data
        if label not in measured:
            status = NOT_RUN if label in rows_with_cards else "no card"
            result.records.append(_empty_record(column, label, status, published))
    return result


def add_paired_columns(result: _ColumnResult, column: ColumnSpec, reference: str, cache: IntervalCache) -> None:
    """Each measured row against the reference row's run of the same variant: paired bootstrap over the shared
    samples (A = the row, B = the reference), so a small difference comes with whether it is real."""
    from mqeval.reports.intervals import resolve_aggregate
    from mqeval.reports.stats import PairingError, paired_bootstrap

    head = f"{column.title} {'↑' if column.higher_is_better else '↓'}"
    for variant in dict.fromkeys(v for v, _ in result.chosen):
        ref = result.chosen.get((variant, reference))
        others = [(label, run) for (v, label), run in result.chosen.items() if v == variant and label != reference]
        if ref is None or not others:
            continue
        name = f"{head} vs {reference}" + (f" [{variant}]" if variant else "")
        result.names.append(name)
        result.cells[name][reference] = "(reference)"
        aggregate, why = resolve_aggregate(ref, cache.lookup)
        for label, run in others:
            if aggregate is None or not cache.options.enabled:
                result.cells[name][label] = "no CI"
                continue
            try:
                paired = paired_bootstrap(run.per_sample(), ref.per_sample(), aggregate,
                                          {column.metric: column.higher_is_better}, [column.metric],
                                          cache.options.n_resamples, cache.options.level, cache.options.seed)[column.metric]
            except PairingError as exc:
                result.cells[name][label] = "unpaired"
                result.notes.append(f"{column.title}, {label} vs {reference}: not paired ({exc}).")
                continue
            d, k = paired.difference, column.scale
            result.cells[name][label] = (
                f"{fmt(d.point * k, column.decimals, True)} [{fmt(d.low * k, column.decimals, True)}, "
                f"{fmt(d.high * k, column.decimals, True)}] P={paired.prob_a_better:.2f}"
            )
            for record in result.records:
                if record.get("row") == label and record.get("variant") == variant and record.get("status") == "measured":
                    record.update(paired_reference=reference, paired_difference=d.point * k, paired_low=d.low * k,
                                  paired_high=d.high * k, prob_better_than_reference=paired.prob_a_better)
        note = (f"{head.split(' ')[0]} vs {reference}: row minus reference, paired bootstrap over the same samples "
                "(95% CI); P = probability the row beats the reference.")
        if note not in result.notes:
            result.notes.append(note)


def _empty_record(column: ColumnSpec, label: str, status: str, published: Optional[dict[str, PublishedRow]]) -> dict:
    record = {"row": label, "column": column.key, "title": column.title, "higher_is_better": column.higher_is_better}
    record["status"] = status
    if published is not None:
        record["published"] = published[label].number(column.key)
        record["published_prompt_set"] = required_prompt_set(column, published[label])
    return record


def _runs_for(cards: list[str], column: ColumnSpec, runs: list[Run], named: frozenset[str] = frozenset()) -> list[Run]:
    """Runs of these cards on the column's benchmark or on a variant of it that no other column of the table names."""
    return [
        run
        for run in runs
        if run.card in cards
        and (run.benchmark_name == column.benchmark or (run.variant_of == column.benchmark and run.benchmark_name not in named))
        and isinstance(run.metrics.get(column.metric), (int, float))
        and (column.decoder is None or run.decoder_family == column.decoder)
    ]


def _assemble(title, name, index, first: dict[str, dict[str, str]], results: list[_ColumnResult], notes) -> TableReport:
    import pandas as pd

    columns: dict[str, dict[str, str]] = dict(first)
    records, all_notes, shown = [], list(notes), {}
    for result in results:
        shown.update({str(run.path): run for run in result.chosen.values()})
        for col in result.names:
            columns[col] = result.cells[col]
        records += result.records
        all_notes += [n for n in result.notes if n not in all_notes]
    frame = pd.DataFrame({col: [cells.get(label, "") for label in index] for col, cells in columns.items()}, index=index)
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
    spec: TableSpec, runs: list[Run], cache: IntervalCache, twins: Optional[dict[tuple[int, str], str]] = None
) -> Optional[TableReport]:
    """The ablation table measured on its small-scale twins; None when the spec has none or no twin has a run.

    Twins come from the spec's `small_scale` mapping; a card tagged `small-scale-of:<table>/<row>` overrides it."""
    if not spec.small_scale:
        return None
    twins = zoo_index().twins if twins is None else twins
    mapping = dict(spec.small_scale)
    mapping.update({row: card for (table, row), card in twins.items() if table == spec.number and row in mapping})
    if not any(run.card in mapping.values() for run in runs):
        return None
    labels = list(mapping)
    titles = {row.label: row.title for row in published_rows(spec)}
    first = {"method": {label: titles.get(label, label) for label in labels}, "card": mapping}
    results = []
    for column in spec.small_scale_columns:
        row_runs = {label: _runs_for([mapping[label]], column, runs) for label in labels}
        result = measure_column(column, row_runs, cache)
        if spec.reference_row:
            add_paired_columns(result, column, spec.reference_row, cache)
        results.append(result)
    title = f"Table {spec.number} (small-scale twin, NOT the paper's setting): {spec.title}"
    report = _assemble(title, f"table{spec.number}_small_scale", labels, first, results, [SMALL_SCALE_NOTE])
    if len(report.data):
        report.data.insert(0, "table", f"{spec.number}-small-scale")
    return report
