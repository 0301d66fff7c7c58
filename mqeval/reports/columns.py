"""The display columns of one table column: published, measured (+CI), difference, and paired vs a reference row.

Runs whose benchmark version, data, prompt set, --limit or scorer differ never share a column: each such variant
gets its own measured column and a note says why.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

from mqeval.reports.intervals import IntervalCache
from mqeval.reports.published import PublishedRow
from mqeval.results.compat import CompatKey
from mqeval.results.run import Run
from mqeval.reports.specs import ColumnSpec

NOT_RUN = "not run"
NO_CARD = "—"  # a row of another method: published numbers only
NOT_COMPARABLE = "n/c"
WARNED = " !"  # appended to a measured cell whose run recorded warnings
MISSING = "-"  # the paper printed no number


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
    names = {"version": "v", "prompt_set": "", "scorer_version": "scorer ", "data_sha256": "data ",
             "scorer_weights": "weights "}
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
class ColumnResult:
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
) -> ColumnResult:
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
        notes.append(f"{column.title}: measured runs differ ({reasons}); "
                     f"shown in {len(keys)} separate columns, never one.")
    result = ColumnResult([], defaultdict(dict), [], notes)
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
                "checkpoint": run.checkpoint,
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


def add_paired_columns(result: ColumnResult, column: ColumnSpec, reference: str, cache: IntervalCache) -> None:
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
                                          cache.options.n_resamples, cache.options.level, cache.options.seed)
            except PairingError as exc:
                result.cells[name][label] = "unpaired"
                result.notes.append(f"{column.title}, {label} vs {reference}: not paired ({exc}).")
                continue
            if column.metric not in paired:
                result.cells[name][label] = "no CI"
                continue
            paired = paired[column.metric]
            d, k = paired.difference, column.scale
            result.cells[name][label] = (
                f"{fmt(d.point * k, column.decimals, True)} [{fmt(d.low * k, column.decimals, True)}, "
                f"{fmt(d.high * k, column.decimals, True)}] P={paired.prob_a_better:.2f}"
            )
            for record in result.records:
                if (record.get("row") == label and record.get("variant") == variant
                        and record.get("status") == "measured"):
                    record.update(paired_reference=reference, paired_difference=d.point * k, paired_low=d.low * k,
                                  paired_high=d.high * k, prob_better_than_reference=paired.prob_a_better)
        note = (f"{column.title} vs {reference}: row minus reference, paired bootstrap over the same samples "
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
